"""Case 6: two clients edit the same apps while the operator reconciles them. One writes read-modify-write
with optimistic concurrency (PUT with resourceVersion, retried on 409), the other JSON-merge-patches the
services list (last writer wins). At the end every app's children match the last accepted spec: the stored
spec is the one of the highest generation either client was answered with, and the check renders from it."""

from __future__ import annotations

import copy
import random
import threading
import time
from typing import Any

import pytest

from tests.e2e.operator_process import OperatorProcess
from tests.faults import figures, fleet, invariants, scale
from tests.faults.client import ApiFailure, Client

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(scale.CASE_TIMEOUT)]


class Editor(threading.Thread):
    def __init__(self, client: Client, namespace: str, apps: list[str], style: str, seed: int) -> None:
        super().__init__(name=f"editor-{style}")
        self.client, self.namespace, self.apps, self.style = client, namespace, apps, style
        self.rng = random.Random(seed)
        self.accepted: dict[str, dict[str, Any]] = {}  # app -> the last response the API server gave us
        self.edits = 0
        self.conflicts = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for round_ in range(scale.CONCURRENT_ROUNDS):
                for app in self.rng.sample(self.apps, len(self.apps)):
                    self.edit(app, round_)
                    time.sleep(self.rng.uniform(0, 0.05))
        except BaseException as error:  # reported by the test, not lost in the thread
            self.error = error

    def edit(self, app: str, round_: int) -> None:
        while True:
            current = self.client.get("MicroserviceApp", self.namespace, app)
            assert current is not None
            services = copy.deepcopy(current["spec"]["services"])
            if self.style == "put":  # api's image
                services[0]["image"] = f"registry.example.com/api:put-{round_}"
                current["spec"]["services"] = services
                try:
                    result = self.client.replace(self.namespace, current)
                except ApiFailure as failure:
                    if failure.status == 409:
                        self.conflicts += 1
                        continue
                    raise
            else:  # web's image and replicas
                services[1]["image"] = f"registry.example.com/web:patch-{round_}"
                services[1]["replicas"] = self.rng.randint(1, 3)
                result = self.client.merge_patch(
                    "MicroserviceApp", self.namespace, app, {"spec": {"services": services}}
                )
            self.accepted[app] = result
            self.edits += 1
            return


def test_concurrent_edits_end_in_the_last_accepted_spec(
    client: Client, namespace: str, op: OperatorProcess
) -> None:
    apps = fleet.names("edit", scale.CONCURRENT_APPS)
    fleet.create_fleet(client, namespace, apps)
    editors = [
        Editor(client, namespace, apps, style, scale.SEED + i) for i, style in enumerate(("put", "patch"))
    ]
    for editor in editors:
        editor.start()
    for editor in editors:
        editor.join()
    last_edit = time.monotonic()
    for editor in editors:
        assert editor.error is None, f"{editor.name}: {editor.error!r}"
    failures = 0
    try:
        for app in apps:
            last = max((e.accepted[app] for e in editors), key=lambda r: r["metadata"]["generation"])
            stored = client.get("MicroserviceApp", namespace, app)
            assert stored is not None and stored["spec"] == last["spec"], f"{app}: not the last accepted spec"
        converged = invariants.wait_converged(
            client, namespace, timeout=scale.CONVERGE_TIMEOUT, what="after the edits"
        )
    except AssertionError:
        failures = 1
        raise
    finally:
        figures.record(
            "concurrent-edits",
            apps=len(apps),
            trials=sum(e.edits for e in editors),
            failures=failures,
            seed=scale.SEED,
            edits={e.style: e.edits for e in editors},
            put_conflicts_retried=editors[0].conflicts,
            converged_after_last_edit_s=round(time.monotonic() - last_edit, 1) if not failures else None,
        )
    assert converged >= 0
    assert editors[0].conflicts, "the two clients never collided: the case did not test concurrency"
