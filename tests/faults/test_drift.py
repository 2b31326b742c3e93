"""Case 3: drift at scale. Children of many apps are deleted or edited by hand at once (the operator frozen
meanwhile, so that the drift is all there when it wakes): every one is restored, with exactly one apply each,
and nothing of the untouched apps is written (their resourceVersions stand)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.operator_process import OperatorProcess
from tests.faults import figures, fleet, invariants, scale
from tests.faults.client import CHILD_KINDS, Client
from tests.faults.quiet import wait_quiet, writes_since

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(scale.CASE_TIMEOUT)]

Fault = Callable[[Client, str, str], Any]

# What a person (or another controller) might do to a child; each needs exactly one apply to undo.
FAULTS: dict[str, Fault] = {
    "delete api Deployment": lambda c, ns, app: c.delete("Deployment", ns, f"{app}-api"),
    "delete web Service": lambda c, ns, app: c.delete("Service", ns, f"{app}-web"),
    "delete api HPA": lambda c, ns, app: c.delete("HorizontalPodAutoscaler", ns, f"{app}-api"),
    "edit web image": lambda c, ns, app: c.merge_patch(
        "Deployment",
        ns,
        f"{app}-web",
        {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "evil.example.com/x:6"}]}}}},
        strategic=True,
    ),
    "edit api Service targetPort": lambda c, ns, app: c.merge_patch(
        "Service", ns, f"{app}-api", {"spec": {"ports": [{"port": 80, "targetPort": 9999}]}}, strategic=True
    ),
    "edit api HPA maxReplicas": lambda c, ns, app: c.merge_patch(
        "HorizontalPodAutoscaler", ns, f"{app}-api", {"spec": {"maxReplicas": 9}}
    ),
}


def versions(client: Client, namespace: str) -> dict[tuple[str, str], str]:
    """(kind, name) -> resourceVersion of every app and managed child."""
    objects = client.list("MicroserviceApp", namespace) + [
        c for kind in CHILD_KINDS for c in client.list(kind, namespace, invariants.MANAGED)
    ]
    return {(o["kind"], o["metadata"]["name"]): o["metadata"]["resourceVersion"] for o in objects}


def test_drifted_children_are_restored_and_nothing_else_written(
    client: Client, namespace: str, op: OperatorProcess
) -> None:
    rng = random.Random(scale.SEED)
    apps = fleet.names("drift", scale.DRIFT_APPS)
    fleet.create_fleet(client, namespace, apps)
    invariants.wait_converged(client, namespace, timeout=scale.CONVERGE_TIMEOUT, what="the initial fleet")
    wait_quiet(op)
    time.sleep(3)  # the controllers' last status writes (HPA conditions, Deployment status)
    before = versions(client, namespace)
    passes = op.passes()

    targets = rng.sample(apps, max(1, int(len(apps) * scale.DRIFT_FRACTION)))
    chosen = {app: rng.choice(sorted(FAULTS)) for app in targets}
    # Frozen while the drift is made, so that the check below sees it: running, the operator restores some
    # children before the check has looked (the watches deliver the drift within milliseconds).
    op.freeze()
    try:
        fleet.parallel(lambda app: FAULTS[chosen[app]](client, namespace, app), targets)
        assert invariants.problems(client, namespace), "the check does not see the drift"
    finally:
        op.thaw()
    drifted = time.monotonic()
    failures = 0
    try:
        restored = invariants.wait_converged(
            client, namespace, timeout=scale.CONVERGE_TIMEOUT, what="the drifted children"
        )
    except AssertionError:
        failures = 1
        raise
    finally:
        figures.record(
            "drift",
            apps=len(apps),
            trials=len(targets),
            failures=failures,
            seed=scale.SEED,
            faults={name: list(chosen.values()).count(name) for name in sorted(FAULTS)},
            restore_all_s=round(time.monotonic() - drifted, 1) if not failures else None,
        )
    assert restored >= 0
    wait_quiet(op)
    writes = writes_since(op, passes)
    after = versions(client, namespace)
    untouched = {key for key in before if not any(key[1] == a or key[1].startswith(f"{a}-") for a in targets)}
    rewritten = sorted(key for key in untouched if after.get(key) != before[key])
    figures.record(
        "drift-writes",
        drifted_children=len(targets),
        operator_applies=writes,
        untouched_rewritten=len(rewritten),
    )
    assert writes == len(targets), f"{writes} applies for {len(targets)} drifted children"
    assert not rewritten, f"untouched objects were written: {rewritten[:20]}"
