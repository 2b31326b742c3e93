"""The latency baseline: the work the operator does for a spec change, done by a raw client with no framework,
no index and no safety net. Its apps are `RawApp`s (bench.maestro.dev): the MicroserviceApp's schema under a
kind of their own, so that they live in the operator's namespace, among its apps and their children, without
the operator acting on them (the cluster's controllers look a pod's ReplicaSets, Services and PDBs up by
namespace: an app alone in a namespace of its own rolls out faster than one among 5000).

It watches the RawApps of its namespace (one list+watch, the operator's own `KindWatch`), and for an app whose
status lags its generation: renders it (`maestro.render.render_app`, its children then made the RawApp's and
labelled as not the operator's), server-side-applies the children that changed since its last apply (kept in
memory), follows each Deployment it applied until it is rolled out (a GET every 20 ms), and writes the status
the latency wait reads (in sync, Ready, each service's image). One app at a time, in one thread.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Mapping
from typing import Any

import common

from maestro import render
from maestro.api import crd
from maestro.kube import client as kube
from maestro.runtime import childwatch

POLL = 0.02
GROUP = "bench.maestro.dev"
API_VERSION = f"{GROUP}/v1alpha1"
KIND = "RawApp"
PLURAL = "rawapps"
MANAGED_BY = "maestro-bench-raw"  # not the operator's label: its child index ignores these children
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def install() -> None:
    """The RawApp CRD (the MicroserviceApp's, renamed) installed and served; RawApp known to the client."""
    definition = crd.crd()
    definition["metadata"] = {"name": f"{PLURAL}.{GROUP}"}
    definition["spec"]["group"] = GROUP
    definition["spec"]["names"] = {
        "kind": KIND,
        "listKind": f"{KIND}List",
        "plural": PLURAL,
        "singular": "rawapp",
    }
    kube.KINDS[KIND] = (f"/apis/{API_VERSION}", PLURAL)
    try:
        kube.request("POST", CRD_PATH, body=definition)
    except kube.ApiError as error:
        if error.status != 409:
            raise
    common.wait_until(
        f"{PLURAL}.{GROUP} to be served", lambda: common.listable(KIND), timeout=60, interval=0.5
    )


def app_body(app: Mapping[str, Any]) -> dict[str, Any]:
    """A MicroserviceApp's body as a RawApp."""
    return {**app, "apiVersion": API_VERSION, "kind": KIND}


def raw_child(child: dict[str, Any], app: Mapping[str, Any]) -> dict[str, Any]:
    """A rendered child made the RawApp's (its garbage collection follows the RawApp) and not the operator's."""
    meta = child["metadata"]
    meta["labels"] = {**meta.get("labels", {}), render.LABEL_MANAGED_BY: MANAGED_BY}
    if app["metadata"].get("uid"):
        meta["ownerReferences"] = [{**render.owner_reference(app), "apiVersion": API_VERSION, "kind": KIND}]
    return child


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
    """`with RawController(namespace):` reconciles the RawApps of that namespace until the block ends
    (`install()` first)."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.todo: queue.Queue[dict[str, Any]] = queue.Queue()
        self.applied: dict[tuple[str, str], dict[str, Any]] = {}
        self.stopping = threading.Event()
        self.watch = childwatch.KindWatch(KIND, namespace, self._take, self.stopping)

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
        for child in (raw_child(c, app) for c in render.render_app(app)):
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
        meta = app["metadata"]
        status = {
            "observedGeneration": meta["generation"],
            "phase": "Ready",
            "services": [{"name": s["name"], "image": s["image"], "phase": "Ready"} for s in services],
        }
        kube.request(
            "PATCH",
            kube._path(KIND, meta["namespace"], meta["name"], "status"),
            body={"status": status},
            content_type="application/merge-patch+json",
        )
