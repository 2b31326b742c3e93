"""kopf registrations: every trigger ends in one `reconcile.reconcile(app)` call.

- the app's create / update / resume (kopf's change detection, progress in .status.kopf);
- events of owned children (Deployments, Services, HPAs, PDBs labelled managed-by=maestro), mapped to
  their app through the instance label: a child changed or deleted by hand is put back at once;
- changes of ConfigMaps and Secrets, mapped to the apps whose configFrom names them (config rollouts);
- a slow timer per app: the safety net for anything a watch missed.

Who calls it: kopf, after `maestro run` imports this module.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import kopf

from maestro import api, confighash, kube, reconcile, render
from maestro import settings as _settings  # noqa: F401  (registers the startup handler)

log = logging.getLogger(__name__)

SAFETY_INTERVAL = 60.0  # seconds between safety passes of an app with no other activity
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


@kopf.timer(api.GROUP, api.VERSION, api.PLURAL, interval=SAFETY_INTERVAL, idle=SAFETY_INTERVAL)
def safety_pass(body: kopf.Body, **_: Any) -> None:
    _run(_ref(body), retry=False)


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
        reconcile.reconcile(app)
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
                reconcile.reconcile(app)
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
