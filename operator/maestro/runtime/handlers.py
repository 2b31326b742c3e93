"""kopf registrations: every trigger ends in a pass of `reconcile.py` over the app concerned.

- the app's watch events: a pass when its status lags its generation, and for every app at startup;
- events of owned children (Deployments, Services, HPAs, PDBs labelled managed-by=maestro; watched by
  childwatch.py, not kopf), mapped to their app through the instance label: a child changed or deleted by
  hand is put back at once;
- changes of ConfigMaps and Secrets, mapped to the apps whose configFrom names them (config rollouts);
- a slow periodic pass over every app (a background task): the safety net for anything a watch missed.

Who calls it: kopf, after `maestro run` imports this module; childwatch.py's threads call `on_child`.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from typing import Any

import kopf

from maestro import metrics, render
from maestro.api import models as api
from maestro.controller import reconcile, statushold
from maestro.controller.stores import Stores
from maestro.kube import client as kube
from maestro.render import confighash, kinds
from maestro.runtime import appcache, children, childwatch, leadership, relevance, workqueue
from maestro.runtime import settings as _settings  # also registers the startup handler

log = logging.getLogger(__name__)

# Seconds between safety passes over all apps (MAESTRO_SAFETY_INTERVAL overrides it, e.g. in tests).
SAFETY_INTERVAL = float(os.environ.get("MAESTRO_SAFETY_INTERVAL", "60"))


def run_pass(app: Mapping[str, Any]) -> None:
    """One pass (the work queue's work); a status held back (statushold.py) brings the app back when due."""
    meta = app["metadata"]
    try:
        outcome = reconcile.reconcile(app, STORES)
    except Exception:
        # Its retry reads the app from the API server: the failure may be the app's absence (a 404 on its status).
        appcache.APPS.forget(meta["namespace"], meta["name"])
        raise
    if outcome.recheck_after is not None:
        PASSES.add_after((meta["namespace"], meta["name"]), {**app, "live": False}, outcome.recheck_after)


# What the passes read and keep: the runtime's caches.
STORES = Stores(apps=appcache.APPS, children=children.INDEX, held=statushold.HELD)

# Every trigger only queues a pass (returns at once); the queue's workers run them, one app at a time each.
PASSES: workqueue.WorkQueue[dict[str, Any]] = workqueue.WorkQueue(
    run_pass,
    workers=_settings.MAX_WORKERS,
    describe=reconcile.describe_failure,
    # A live read asked for stays asked for when an event queues the same app before its pass has run.
    merge=lambda queued, new: {**new, "live": bool(queued.get("live") or new.get("live"))},
)


def request(app: Mapping[str, Any], *, live: bool = False, urgent: bool = False) -> None:
    """Queue a pass over the app (name, namespace and uid are all it needs). `live`: the pass reads the app's
    children from the API server, not from the child index (the safety and resume passes: children.py).
    `urgent`: a spec not yet acted on, run before status refreshes (workqueue.py)."""
    meta = app["metadata"]
    PASSES.add((meta["namespace"], meta["name"]), {**_ref(app), "live": live}, urgent=urgent)


@kopf.on.event(api.GROUP, api.VERSION, api.PLURAL)
async def on_app(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
    """The app's own events. A watch handler rather than kopf's on.create/update/resume: those keep a copy of
    the last handled spec in the app (one more write per change, and memory per app), while "the status has
    not caught up with the generation" is all a pass needs to know (relevance.py). Retries after API errors
    are the work queue's."""
    appcache.APPS.observe(event.get("type"), event.get("object") or body)
    if event.get("type") == "DELETED":  # it leaves maestro_apps at once, and holds no status back
        metrics.record_phase(body["metadata"]["namespace"], body["metadata"]["name"], None)
        statushold.HELD.settled((body["metadata"]["namespace"], body["metadata"]["name"]))
    if relevance.app_event_needs_pass(event.get("type"), body):
        # The resume after a restart reads live; a new spec goes before the status refreshes of other apps.
        request(body, live=event.get("type") is None, urgent=relevance.spec_unobserved(body))


# The safety pass is a plain background task, not a kopf timer: kopf puts a finalizer on every object that
# has a timer or daemon, and the app must stay deletable while the operator is down.
WATCHED_NAMESPACES: list[str] | None = None  # set by `maestro run`; None means all namespaces
_safety_task: asyncio.Task[None] | None = None


def safety_pass() -> None:
    """Reconcile every app in the watched namespaces once; a failing app does not stop the others."""
    if not leadership.acting():  # kopf pauses a standby's watches, not this task: it must skip here
        return
    # A page at a time, keeping only each app's name and uid: with thousands of apps one listing is tens of
    # MiB of parsed JSON, and the process would keep that high-water mark.
    scopes: list[str | None] = [*WATCHED_NAMESPACES] if WATCHED_NAMESPACES is not None else [None]
    apps = [_ref(app) for scope in scopes for app in kube.list_pages(api.KIND, scope)]
    present = [(a["metadata"]["namespace"], a["metadata"]["name"]) for a in apps]
    metrics.forget_missing(present)
    appcache.APPS.retain(present)
    # One listing of the namespace's children, compared with the child index: only an app whose children
    # disagree (a deletion a watch gap lost, say) gets a live pass. A live pass for every app listed each
    # app's children, four LISTs that each scan the namespace: with 500 apps in one namespace they slowed
    # convergence by half (benchmarks/convergence.py).
    stale: set[str] = set()
    for namespace in sorted({app["metadata"]["namespace"] for app in apps}):
        listings = (
            kube.list_pages(kind, namespace, {render.LABEL_MANAGED_BY: render.MANAGED_BY})
            for kind in kinds.WATCHED
        )
        stale |= children.INDEX.disagreeing(namespace, listings)
    for app in apps:
        request(app, live=app["metadata"].get("uid") in stale)


def safety_pass_due(queued: int, waited: float) -> bool:
    """Whether the safety pass runs now, `waited` seconds after it was due. It is a net for what a watch
    missed, not urgent: while passes are queued (a burst of new apps, say), its listings and its pass over
    every app would compete with them for the API server, so it waits for the queue to empty, for at most
    one more interval (benchmarks/convergence.py)."""
    return queued == 0 or waited >= SAFETY_INTERVAL


async def _safety_loop() -> None:
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(SAFETY_INTERVAL)
        due = loop.time()
        while not safety_pass_due(PASSES.depth(), loop.time() - due):
            await asyncio.sleep(min(1.0, SAFETY_INTERVAL))
        try:
            await loop.run_in_executor(None, safety_pass)
        except (kube.ApiError, OSError) as error:
            log.warning("safety pass failed: %s", error)


_child_watches: childwatch.ChildWatches | None = None


def report_deleted_meanwhile(kind: str, namespace: str | None, listed: set[str]) -> None:
    """A child watch listed again after a gap: what the index knew of that kind and is no longer listed was
    deleted during the gap (a child deleted while the API server restarted, say): put it back now."""
    for obj in children.INDEX.absent(kind, namespace, listed):
        on_child("DELETED", obj)


def retry_failed_passes() -> None:
    """A child watch is open again after failing: the API server is back, so the passes that failed while it
    was away run now rather than after their back-off."""
    retried = PASSES.retry_now()
    if retried:
        log.info("the API server is reachable again: retrying %d failed passes now", retried)


@kopf.on.startup()
async def start_background_work(**_: Any) -> None:
    """List every object of the child kinds, then watch them (childwatch.py), before kopf's own watches start:
    a pass must never take a name held by an object it does not know of yet (children.py). Then the safety
    pass's loop."""
    global _child_watches, _safety_task
    scopes: list[str | None] = [*WATCHED_NAMESPACES] if WATCHED_NAMESPACES else [None]  # None: all
    _child_watches = childwatch.ChildWatches(
        kinds.WATCHED, scopes, on_child, retry_failed_passes, report_deleted_meanwhile
    )
    await asyncio.get_running_loop().run_in_executor(None, _child_watches.start)
    _safety_task = asyncio.create_task(_safety_loop())


@kopf.on.cleanup()
async def stop_background_work(**_: Any) -> None:
    if _child_watches is not None:
        _child_watches.stop()
    if _safety_task is not None:
        _safety_task.cancel()


def _ref(body: Mapping[str, Any]) -> dict[str, Any]:
    meta = body["metadata"]
    return {"metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta.get("uid")}}


def on_child(event_type: str | None, obj: Mapping[str, Any]) -> None:
    """An event of the child kinds (from childwatch.py's threads) updates the child index (of other objects,
    only their names: children.py). A Maestro child's event starts a pass over its app (found by the instance
    label) only when it can change what that pass does: a status-only update by a controller, or the echo of
    Maestro's own apply, does not. A standby replica keeps its index current, and starts no pass."""
    if not children.INDEX.observe(event_type, obj) or not leadership.known_acting():
        return
    meta = obj.get("metadata") or {}
    name = (meta.get("labels") or {}).get(render.LABEL_INSTANCE)
    namespace = meta.get("namespace")
    if name and namespace:
        if event_type == "DELETED":
            # Deleted by hand, or by the garbage collector because the app is gone: the pass reads the app
            # from the API server, not from a cached copy that a watch gap may have left behind (appcache.py).
            appcache.APPS.forget(namespace, name)
        request({"metadata": {"name": name, "namespace": namespace, "uid": kube.controller_uid(obj)}})


@kopf.on.event("", "v1", "configmaps")
@kopf.on.event("", "v1", "secrets")
def on_config_source(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
    """A ConfigMap or Secret changed: a pass over every app in its namespace whose configFrom names it."""
    meta = body.get("metadata") or {}
    namespace = meta.get("namespace")
    if event.get("type") is None or not namespace:  # the initial listing: the apps' own listing covers it
        return
    key = confighash.source_key(str(body.get("kind")), meta.get("name", ""))
    try:
        apps = kube.list_apps(namespace)
    except (kube.ApiError, OSError) as error:  # the safety pass completes it
        log.warning("could not list the apps of %s after a change of %s: %s", namespace, key, error)
        return
    for app in apps:
        if key in reconcile.referenced_sources(app):
            request(app)
