"""kopf registrations: every trigger ends in a pass of `reconcile.py` over the app concerned.

- the app's create / update / resume (kopf's change detection, progress in .status.kopf);
- events of owned children (Deployments, Services, HPAs, PDBs labelled managed-by=maestro), mapped to
  their app through the instance label: a child changed or deleted by hand is put back at once;
- changes of ConfigMaps and Secrets, mapped to the apps whose configFrom names them (config rollouts);
- a slow periodic pass over every app (a background task): the safety net for anything a watch missed.

Who calls it: kopf, after `maestro run` imports this module.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from typing import Any

import kopf

from maestro import api, confighash, kube, leadership, metrics, reconcile, render
from maestro import settings as _settings  # noqa: F401  (registers the startup handler)

log = logging.getLogger(__name__)

# Seconds between safety passes over all apps (MAESTRO_SAFETY_INTERVAL overrides it, e.g. in tests).
SAFETY_INTERVAL = float(os.environ.get("MAESTRO_SAFETY_INTERVAL", "60"))
MANAGED = {render.LABEL_MANAGED_BY: render.MANAGED_BY}


def _run(app: Mapping[str, Any], *, retry: bool) -> reconcile.Outcome:
    """One pass. API errors (conflicts, 5xx, timeouts) become a retry with back-off where kopf retries."""
    try:
        return reconcile.reconcile(app)
    except kube.ApiError as error:
        if not retry:
            raise
        raise kopf.TemporaryError(f"API error {error.status} {error.reason}; retrying", delay=5) from error
    except OSError as error:  # connection refused/reset, timeouts
        if not retry:
            raise
        raise kopf.TemporaryError(f"API unreachable: {error}; retrying", delay=5) from error


@kopf.on.resume(api.GROUP, api.VERSION, api.PLURAL)
@kopf.on.create(api.GROUP, api.VERSION, api.PLURAL)
@kopf.on.update(api.GROUP, api.VERSION, api.PLURAL)
def on_app(body: kopf.Body, **_: Any) -> None:
    outcome = _run(_ref(body), retry=True)
    if outcome.invalid:
        # Reported in status and by a Warning event; retrying cannot help until the spec changes.
        raise kopf.PermanentError("; ".join(f"{path}: {message}" for path, message in outcome.errors))


# The safety pass is a plain background task, not a kopf timer: kopf puts a finalizer on every object that
# has a timer or daemon, and the app must stay deletable while the operator is down.
WATCHED_NAMESPACES: list[str] | None = None  # set by `maestro run`; None means all namespaces
_safety_task: asyncio.Task[None] | None = None


def safety_pass() -> None:
    """Reconcile every app in the watched namespaces once; a failing app does not stop the others."""
    if not leadership.acting():  # kopf pauses a standby's watches, not this task: it must skip here
        return
    namespaces = WATCHED_NAMESPACES
    apps = (
        [app for ns in namespaces for app in kube.list_apps(ns)]
        if namespaces is not None
        else kube.list_all_apps()
    )
    metrics.forget_missing((a["metadata"]["namespace"], a["metadata"]["name"]) for a in apps)
    for app in apps:
        try:
            reconcile.request(_ref(app))
        except (kube.ApiError, OSError) as error:
            log.warning("safety pass of %s failed: %s", app["metadata"].get("name"), error)


async def _safety_loop() -> None:
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(SAFETY_INTERVAL)
        try:
            await loop.run_in_executor(None, safety_pass)
        except (kube.ApiError, OSError) as error:
            log.warning("safety pass failed: %s", error)


@kopf.on.startup()
async def start_safety_pass(**_: Any) -> None:
    global _safety_task
    _safety_task = asyncio.create_task(_safety_loop())


@kopf.on.cleanup()
async def stop_safety_pass(**_: Any) -> None:
    if _safety_task is not None:
        _safety_task.cancel()


def _ref(body: Mapping[str, Any]) -> dict[str, Any]:
    meta = body["metadata"]
    return {"metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta.get("uid")}}


def _child_event(event: Mapping[str, Any], body: Mapping[str, Any]) -> None:
    if event.get("type") is None:  # the initial listing: the apps' resume handlers cover it
        return
    meta = body.get("metadata") or {}
    name = (meta.get("labels") or {}).get(render.LABEL_INSTANCE)
    namespace = meta.get("namespace")
    if not name or not namespace:
        return
    app = {"metadata": {"name": name, "namespace": namespace, "uid": kube.controller_uid(body)}}
    try:
        reconcile.request(app)
    except kube.ApiError as error:  # the next event or the safety pass completes it
        log.warning("pass for %s/%s after a child event failed: %s", namespace, name, error.reason)


@kopf.on.event("apps", "v1", "deployments", labels=MANAGED)
def on_deployment(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
    _child_event(event, body)


@kopf.on.event("", "v1", "services", labels=MANAGED)
def on_service(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
    _child_event(event, body)


@kopf.on.event("autoscaling", "v2", "horizontalpodautoscalers", labels=MANAGED)
def on_hpa(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
    _child_event(event, body)


@kopf.on.event("policy", "v1", "poddisruptionbudgets", labels=MANAGED)
def on_pdb(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
    _child_event(event, body)


def _config_event(kind: str, event: Mapping[str, Any], body: Mapping[str, Any]) -> None:
    if event.get("type") is None:
        return
    meta = body.get("metadata") or {}
    namespace = meta.get("namespace")
    if not namespace:
        return
    key = confighash.source_key(kind, meta.get("name", ""))
    for app in kube.list_apps(namespace):
        if key in reconcile.referenced_sources(app):
            try:
                reconcile.request(app)
            except kube.ApiError as error:
                log.warning(
                    "pass for %s/%s after a %s change failed: %s",
                    namespace,
                    app["metadata"]["name"],
                    kind,
                    error,
                )


@kopf.on.event("", "v1", "configmaps")
def on_configmap(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
    _config_event("ConfigMap", event, body)


@kopf.on.event("", "v1", "secrets")
def on_secret(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
    _config_event("Secret", event, body)
