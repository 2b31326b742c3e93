"""Metrics and probes of a running operator: /metrics moves with the work it does (passes by result, applies by
kind, apps by phase, also when an app turns Invalid or is deleted); /healthz and /readyz answer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.kubectl import Kubectl
from tests.e2e.operator_process import OperatorProcess, running
from tests.e2e.test_operator import msa, svc, wait_ready
from tests.e2e.waits import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


@pytest.fixture
def op(
    request: pytest.FixtureRequest, test_cluster: object, crd: None, namespace: str, tmp_path: Path
) -> Iterator[OperatorProcess]:
    yield from running(request, namespace, tmp_path)


def test_probes_answer(op: OperatorProcess) -> None:
    assert op.get("/healthz") == (200, "ok\n")
    # Standalone (no --peering): always the acting replica, Ready once kopf's startup is done.
    wait_until("/readyz to say ok", lambda: op.get("/readyz") == (200, "ok: active\n"))
    assert op.metric("maestro_leader") == 1


def test_metrics_follow_the_work(op: OperatorProcess, kubectl: Kubectl) -> None:
    ok_before = op.metric("maestro_reconcile_total", result="ok")
    kubectl.apply(msa("shop", svc("web"), svc("api")))
    wait_ready(kubectl, "shop")

    # Passes were counted and timed; every child kind that was applied is counted by kind.
    wait_until("maestro_apps{phase=Ready} to be 1", lambda: op.metric("maestro_apps", phase="Ready") == 1)
    assert op.metric("maestro_reconcile_total", result="ok") > ok_before
    assert op.metric("maestro_reconcile_duration_seconds_count") >= op.metric(
        "maestro_reconcile_total", result="ok"
    )
    assert op.metric("maestro_apply_total", kind="Deployment") >= 2
    assert op.metric("maestro_apply_total", kind="Service") >= 2
    assert op.metric("maestro_reconciles_in_flight") >= 0
    assert op.metric("maestro_work_queue_depth") >= 0

    # A phase change moves the app from one series to the other.
    invalid_before = op.metric("maestro_reconcile_total", result="invalid")
    kubectl.apply(msa("shop", svc("web", dependsOn=["api"]), svc("api", dependsOn=["web"])))  # a cycle
    wait_until(
        "the app to count as Invalid",
        lambda: (
            op.metric("maestro_apps", phase="Invalid") == 1 and op.metric("maestro_apps", phase="Ready") == 0
        ),
    )
    assert op.metric("maestro_reconcile_total", result="invalid") > invalid_before

    # A deleted app leaves the gauge (its children's deletion triggers a pass that finds it gone).
    kubectl("delete", "msa", "shop", "--wait=true")
    wait_until("the deleted app to leave maestro_apps", lambda: op.metric("maestro_apps") == 0)
