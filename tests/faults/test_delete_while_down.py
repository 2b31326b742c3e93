"""Case 4: apps deleted while the operator is down (killed). They go at once (no finalizer waits for the
operator), the garbage collector removes their children, and the operator, back, catches up with the rest
(edited while it was down) and recreates nothing of the deleted ones."""

from __future__ import annotations

import random
import time

import pytest

from tests.e2e.operator_process import OperatorProcess
from tests.e2e.waits import wait_until
from tests.faults import figures, fleet, invariants, scale
from tests.faults.client import CHILD_KINDS, Client

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(scale.CASE_TIMEOUT)]


def children_of(client: Client, namespace: str, apps: set[str]) -> list[str]:
    found = []
    for kind in CHILD_KINDS:
        for child in client.list(kind, namespace, invariants.MANAGED):
            if child["metadata"]["labels"].get("app.kubernetes.io/instance") in apps:
                found.append(f"{kind}/{child['metadata']['name']}")
    return found


def test_apps_deleted_while_the_operator_is_down(client: Client, namespace: str, op: OperatorProcess) -> None:
    rng = random.Random(scale.SEED)
    apps = fleet.names("down", scale.DOWN_APPS)
    fleet.create_fleet(client, namespace, apps)
    invariants.wait_converged(client, namespace, timeout=scale.CONVERGE_TIMEOUT, what="the initial fleet")
    op.kill()

    deleted = set(rng.sample(apps, len(apps) // 2))
    edited = [a for a in apps if a not in deleted][: max(1, len(apps) // 10)]
    assert children_of(client, namespace, deleted)
    started = time.monotonic()
    fleet.parallel(lambda app: client.delete("MicroserviceApp", namespace, app), sorted(deleted))
    fleet.set_version(client, namespace, edited, 2)
    wait_until(
        "the deleted apps to be gone (no finalizer holds them)",
        lambda: not deleted & {a["metadata"]["name"] for a in client.list("MicroserviceApp", namespace)},
        timeout=60,
    )
    apps_gone = time.monotonic() - started
    wait_until(
        "the garbage collector to remove the deleted apps' children",
        lambda: not children_of(client, namespace, deleted),
        timeout=scale.CONVERGE_TIMEOUT,
    )
    collected = time.monotonic() - started
    assert invariants.problems(client, namespace), "the check does not see the edits made while down"
    op.start()
    failures = 0
    try:
        caught_up = invariants.wait_converged(
            client, namespace, timeout=scale.CONVERGE_TIMEOUT, what="after the restart"
        )
    except AssertionError:
        failures = 1
        raise
    finally:
        figures.record(
            "delete-while-down",
            apps=len(apps),
            trials=len(deleted),
            failures=failures,
            seed=scale.SEED,
            edited_while_down=len(edited),
            apps_gone_s=round(apps_gone, 1),
            children_collected_s=round(collected, 1),
            catch_up_after_start_s=round(caught_up, 1) if not failures else None,
        )
    assert not children_of(client, namespace, deleted), "the operator recreated children of deleted apps"
