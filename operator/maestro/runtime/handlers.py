"""kopf registrations (at import); each handler is handed the one `Operator` (operator.py) as its `memo`, and every
trigger ends in a pass of `reconcile.py` over the app concerned:

- changes of ConfigMaps and Secrets, mapped to the apps whose configFrom names them (config rollouts);
- at startup, kopf's settings, then the operator's own watches of the children and the apps, and its safety
  pass (operator.py: the other triggers), stopped at cleanup.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from maestro.kube import client as kube
from maestro.render import confighash
from maestro.runtime.operator import Operator

log = logging.getLogger(__name__)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: Operator, **_: Any) -> None:
    """kopf's settings, each with the reason for it (registered first: it sets up the API client)."""
    # The API client (kube/client.py) is loaded by `maestro run`, which begins the start's listings before kopf.
    # Post Kubernetes Events from kopf's own logs only for warnings and errors: Maestro posts the meaningful
    # Normal events itself (created, ready, ...), and one event per handler run would flood `kubectl describe`.
    settings.posting.level = logging.WARNING
    # kopf has no handler for the apps (the operator watches them itself: operator.py), so it writes nothing to
    # them: no handler progress, no last-handled spec, no kopf annotation on users' objects. No finalizers:
    # children are removed by the garbage collector through their ownerReferences, also while the operator is
    # down.
    # The work queue's threads bound the load on the API server. No per-kind worker limit (kopf's default): a
    # kopf worker keeps its slot for seconds after an object's last event, which capped the objects handled per
    # second of each kind (docs/benchmarks.md).
    settings.execution.max_workers = memo.settings.workers
    # Watch streams end server-side after this long and are reopened: a stuck watch cannot go unnoticed.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    # Peering (pausing all replicas but one) is on with `maestro run --peering`: cli/run.py and leadership.py.


@kopf.on.startup()
async def start_background_work(memo: Operator, **_: Any) -> None:
    """The child watches and the safety pass, before kopf's own watches start (Operator.start)."""
    await memo.start()


@kopf.on.cleanup()
async def stop_background_work(memo: Operator, **_: Any) -> None:
    memo.stop()


@kopf.on.event("", "v1", "configmaps")
@kopf.on.event("", "v1", "secrets")
def on_config_source(event: kopf.RawEvent, body: kopf.Body, memo: Operator, **_: Any) -> None:
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
        if key in confighash.app_sources(app):
            memo.request(app)
