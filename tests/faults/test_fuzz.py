"""Case 5: generated specs, valid and invalid, applied to the real API server. Each is rejected by the API server
with a message, or reconciled: to Ready when `api.validate_app` accepts what the API server stored, to Invalid
(with nothing created) when it does not. The operator never crashes and never loops: after each batch it
goes quiet and the apps' resourceVersions stand."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest

from maestro.api import models as api
from tests.e2e.operator_process import OperatorProcess
from tests.faults import figures, fuzz_specs, invariants, scale
from tests.faults.client import ApiFailure, Client
from tests.faults.quiet import wait_quiet

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(scale.CASE_TIMEOUT)]


def app_versions(client: Client, namespace: str) -> dict[str, str]:
    """Each app's resourceVersion, but for apps with a scheduled job: each time its CronJob fires, the app's
    status.jobs (lastScheduleTime, lastResult) rightly changes, which is no loop."""
    return {
        a["metadata"]["name"]: a["metadata"]["resourceVersion"]
        for a in client.list("MicroserviceApp", namespace)
        if not any("schedule" in job for job in (a.get("spec") or {}).get("jobs") or [])
    }


def settle(client: Client, namespace: str, op: OperatorProcess, batch: list[str]) -> float:
    """Wait for the whole-cluster check, then for quiet: no pass and no app write for 5 s."""
    took = invariants.wait_converged(
        client, namespace, timeout=scale.CONVERGE_TIMEOUT, what=f"batch {batch[:3]}..."
    )
    wait_quiet(op, timeout=120)
    before = app_versions(client, namespace)
    time.sleep(5)
    assert app_versions(client, namespace) == before, "apps are still being written: a loop"
    assert op.alive(), "the operator exited"
    return took


def test_fuzzed_specs(client: Client, namespace: str, op: OperatorProcess) -> None:
    # The names the valid strategy uses in configFrom (`opt` stays absent: it is optional).
    client.create(
        namespace, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"a": "1"}}
    )
    client.create(
        namespace,
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sec"}, "stringData": {"b": "2"}},
    )
    generated = fuzz_specs.draw_apps(scale.FUZZ_SPECS, scale.SEED)
    outcomes: Counter[str] = Counter()
    labels: Counter[str] = Counter()
    settle_times: list[float] = []
    failures: list[str] = []
    batch: list[str] = []
    try:
        for index, (label, manifest) in enumerate(generated):
            labels[label.split(":")[0]] += 1
            manifest = dict(manifest, metadata={"name": f"fz{index:04d}{manifest['metadata']['name'][2:]}"})
            try:
                stored: dict[str, Any] = client.create(namespace, manifest)
            except ApiFailure as failure:
                if failure.status not in (400, 422) or not failure.message.strip():
                    failures.append(f"{label}: rejected without a clear message: {failure}")
                outcomes["rejected by the API server"] += 1
                continue
            try:
                api.validate_app(stored["metadata"]["name"], stored.get("spec"))
                outcomes["accepted, expected Ready"] += 1
            except api.SpecError:
                outcomes["accepted, expected Invalid"] += 1
            batch.append(stored["metadata"]["name"])
            if len(batch) >= scale.FUZZ_BATCH or index == len(generated) - 1:
                settle_times.append(settle(client, namespace, op, batch))
                if index < len(generated) - 1:  # the last batch stays for the final check
                    for name in batch:
                        client.delete("MicroserviceApp", namespace, name)
                batch = []
        if batch:
            settle_times.append(settle(client, namespace, op, batch))
    except AssertionError as error:
        failures.append(str(error)[:2000])
        raise
    finally:
        figures.record(
            "fuzz",
            trials=len(generated),
            failures=len(failures),
            seed=scale.SEED,
            drawn=dict(labels),
            outcomes=dict(outcomes),
            batch_settle_s=figures.summary(settle_times),
        )
    assert not failures, failures
    assert outcomes["rejected by the API server"] and outcomes["accepted, expected Ready"], outcomes
