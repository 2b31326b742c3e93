"""Case 1: the operator is SIGKILLed at random points while the apps converge, and restarted each time.

Each trial gives every app a new spec (a rollout of api, then of web once api is Available: a dependency gate
mid-flight), waits a random 0.3-3 s, kills the operator (no graceful stop), restarts it, and measures the time
from the kill until the whole-cluster check passes.
"""

from __future__ import annotations

import random
import time

import pytest

from tests.e2e.operator_process import OperatorProcess
from tests.faults import figures, fleet, invariants, scale
from tests.faults.client import Client

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(scale.CASE_TIMEOUT)]


def not_converged(client: Client, namespace: str) -> int:
    """Apps whose current spec is not yet observed and Ready (a cheap look: the apps only)."""
    return sum(
        1
        for app in client.list("MicroserviceApp", namespace)
        if (app.get("status") or {}).get("observedGeneration") != app["metadata"]["generation"]
        or (app.get("status") or {}).get("phase") != "Ready"
    )


def test_sigkill_while_apps_converge(client: Client, namespace: str, op: OperatorProcess) -> None:
    rng = random.Random(scale.SEED)
    apps = fleet.names("crash", scale.CRASH_APPS)
    fleet.create_fleet(client, namespace, apps)
    recoveries: list[float] = []
    kill_points: list[float] = []
    in_flight: list[int] = []
    failures = 0
    try:
        for trial in range(scale.CRASH_KILLS):
            if trial:  # trial 0 kills during the initial creation
                fleet.set_version(client, namespace, apps, trial + 1)
            # Within the first seconds of the fleet's rollout: since the child index (children.py) 30 apps
            # converge in under 9 s here, and a kill after that would test nothing (asserted below).
            kill_points.append(round(rng.uniform(0.3, 3.0), 1))
            time.sleep(kill_points[-1])
            in_flight.append(not_converged(client, namespace))
            killed = time.monotonic()
            op.kill()
            op.start()
            try:
                invariants.wait_converged(
                    client, namespace, timeout=scale.CONVERGE_TIMEOUT, what=f"after kill {trial + 1}"
                )
            except AssertionError:
                failures += 1
                raise
            recoveries.append(time.monotonic() - killed)
    finally:
        figures.record(
            "operator-sigkill",
            apps=len(apps),
            trials=len(kill_points),
            failures=failures,
            seed=scale.SEED,
            kill_after_s=kill_points,
            apps_unconverged_at_kill=in_flight,
            recovery_s=[round(r, 1) for r in recoveries],
            recovery_summary_s=figures.summary(recoveries),
        )
    assert op.alive()
    # Every trial really hit the operator mid-work (else the case would test nothing).
    assert all(in_flight), f"some kills found every app converged already: {in_flight}"
