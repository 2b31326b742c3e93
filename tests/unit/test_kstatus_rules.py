"""kstatus' rules for custom resources, encoded from the library Flux uses, on the statuses Maestro writes.

github.com/fluxcd/cli-utils pkg/kstatus/status (status.go `Compute`, generic.go `checkGenericProperties` and
`checkGeneration`, status.go `checkReadyCondition`). The real library judges live objects in
tests/e2e/test_gitops.py (through Helm 4's --wait); this is the fast check of every phase status.py can write,
and of the hand-written objects of the Argo CD health check's tests.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from maestro.api import models as api
from maestro.controller import status
from tests import argocd_health

from .helpers import app, svc


def kstatus(obj: dict[str, Any]) -> str:
    """Current, InProgress, Failed or Terminating, as kstatus' Compute decides for a custom resource."""
    if obj.get("metadata", {}).get("deletionTimestamp"):
        return "Terminating"
    generation = obj.get("metadata", {}).get("generation")
    observed = (obj.get("status") or {}).get("observedGeneration")
    if generation is not None and observed is not None and observed != generation:
        return "InProgress"  # LatestGenerationNotObserved
    conditions = (obj.get("status") or {}).get("conditions") or []
    for condition in conditions:
        if condition.get("type") == "Reconciling" and condition.get("status") == "True":
            return "InProgress"
        if condition.get("type") == "Stalled" and condition.get("status") == "True":
            return "Failed"
    for condition in conditions:
        if condition.get("type") == "Ready":
            return "Current" if condition.get("status") == "True" else "InProgress"
    return "Current"  # no known condition: kstatus assumes Current (docs/gitops.md: the no-status gap)


def _services(phases: dict[str, str]) -> list[api.ServiceStatus]:
    return [
        api.ServiceStatus(name=name, phase=phase, message=None if phase == "Ready" else phase)
        for name, phase in phases.items()
    ]


def _written(result: api.MicroserviceAppStatus) -> dict[str, Any]:
    obj = app(svc("web"), svc("db"))
    obj["status"] = status.to_dict(result)
    return obj


@pytest.mark.parametrize(
    ("phases", "expected"),
    [
        ({"web": "Ready", "db": "Ready"}, "Current"),
        ({"web": "Progressing", "db": "Ready"}, "InProgress"),
        ({"web": "Waiting", "db": "Pending"}, "InProgress"),
        ({"web": "Waiting", "db": "Degraded"}, "Failed"),
    ],
)
def test_every_phase_reads_as_expected(phases: dict[str, str], expected: str) -> None:
    obj = app(svc("web"), svc("db"))
    assert kstatus(_written(status.app_status(obj, _services(phases)))) == expected


def test_invalid_is_failed_and_a_newer_spec_in_progress() -> None:
    obj = _written(status.invalid_status(app(svc("web")), [("spec.services", "bad")]))
    assert kstatus(obj) == "Failed"
    obj["metadata"]["generation"] += 1
    assert kstatus(obj) == "InProgress"


def test_a_rollout_failure_acted_on_is_failed_whatever_the_services_say() -> None:
    obj = app(svc("web"), svc("db"))
    failure = api.RolloutFailure(
        action="Held", service="web", cause="boom", generation=1, rendering="abc", time="2026-01-01T00:00:00Z"
    )
    held = status.app_status(obj, _services({"web": "Ready", "db": "Ready"}), failure=failure)
    assert (held.phase, kstatus(_written(held))) == ("Degraded", "Failed")


EXPECTED = {
    "no_status": "Current",  # the gap: no status yet (docs/gitops.md); Argo CD says Progressing
    "kopf_only_status": "Current",  # the same gap
    "stale_generation": "InProgress",
    "pending": "InProgress",
    "progressing": "InProgress",
    "ready": "Current",
    "degraded": "Failed",
    "job_failed": "Failed",  # a failed migration: Stalled, as a failed rollout
    "degraded_without_kstatus_conditions": "InProgress",  # why Stalled was added
    "invalid_spec": "Failed",
    "name_conflict": "Failed",
    "ready_unknown": "InProgress",
    "rolled_back": "Failed",  # every service Ready again, at the old revision: the spec's release failed
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_argocd_testdata_reads_as_documented(name: str) -> None:
    obj = yaml.safe_load((argocd_health.CUSTOMIZATION / "testdata" / f"{name}.yaml").read_text())
    assert kstatus(obj) == EXPECTED[name]


def test_expected_covers_every_testdata_file() -> None:
    assert {p.stem for p in (argocd_health.CUSTOMIZATION / "testdata").glob("*.yaml")} == set(EXPECTED)
