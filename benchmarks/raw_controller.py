"""The latency baseline: the work the operator does for a spec change, done by a raw client with no framework,
no index and no safety net. It watches the apps of its own namespace (one list+watch, the operator's own
`KindWatch`), and for an app whose status lags its generation: renders it (`maestro.render.render_app`),
server-side-applies the children that changed since its last apply (kept in memory), follows each Deployment
it applied until it is rolled out (a GET every 20 ms), and writes the status the latency wait reads (in sync,
Ready, each service's image). One app at a time, in one thread.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Mapping
from typing import Any

from maestro import render
from maestro.api import models as api
from maestro.kube import client as kube
from maestro.runtime import childwatch

POLL = 0.02


def in_sync(app: Mapping[str, Any]) -> bool:
    return bool((app.get("status") or {}).get("observedGeneration") == app["metadata"].get("generation"))


def rolled_out(deployment: Mapping[str, Any], generation: int) -> bool:
    status = deployment.get("status") or {}
    replicas = status.get("replicas", 0)
    return bool(
        status.get("observedGeneration", 0) >= generation
        and status.get("updatedReplicas", 0) == replicas
        and status.get("availableReplicas", 0) == replicas
    )


class RawController:
    """`with RawController(namespace):` reconciles the apps of that namespace until the block ends."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.todo: queue.Queue[dict[str, Any]] = queue.Queue()
        self.applied: dict[tuple[str, str], dict[str, Any]] = {}
        self.stopping = threading.Event()
        self.watch = childwatch.KindWatch(api.KIND, namespace, self._take, self.stopping)

    def __enter__(self) -> RawController:
        self.watch.list()
        threading.Thread(target=self.watch.follow, name="raw-watch", daemon=True).start()
        threading.Thread(target=self._work, name="raw-worker", daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()

    def _take(self, event_type: str | None, app: Mapping[str, Any]) -> None:
        if event_type != "DELETED" and not in_sync(app):
            self.todo.put(dict(app))

    def _work(self) -> None:
        while not self.stopping.is_set():
            try:
                app = self.todo.get(timeout=0.5)
            except queue.Empty:
                continue
            self.reconcile(app)

    def reconcile(self, app: Mapping[str, Any]) -> None:
        rollouts: list[tuple[str, int]] = []
        for child in render.render_app(app):
            key = (child["kind"], child["metadata"]["name"])
            if self.applied.get(key) == child:
                continue
            result = kube.apply(child)
            self.applied[key] = child
            if child["kind"] == "Deployment":
                rollouts.append((key[1], int(result["metadata"]["generation"])))
        for name, generation in rollouts:
            while not self.stopping.is_set():
                deployment = kube.get("Deployment", self.namespace, name)
                if deployment is not None and rolled_out(deployment, generation):
                    break
                time.sleep(POLL)
        services = (app.get("spec") or {}).get("services") or []
        kube.patch_status(
            app,
            {
                "observedGeneration": app["metadata"]["generation"],
                "phase": "Ready",
                "services": [{"name": s["name"], "image": s["image"], "phase": "Ready"} for s in services],
            },
        )
