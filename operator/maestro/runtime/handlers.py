"""kopf registrations (at import); each handler is handed the one `Operator` (operator.py) as its `memo`, and every
trigger ends in a pass of `reconcile.py` over the app concerned:

- the app's watch events: a pass when its status lags its generation, and for every app at startup;
- changes of ConfigMaps and Secrets, mapped to the apps whose configFrom names them (config rollouts);
- at startup, kopf's settings, then the operator's child watches and safety pass (operator.py: the other
  triggers), stopped at cleanup.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from maestro import metrics
from maestro.api import models as api
from maestro.kube import client as kube
from maestro.render import confighash
from maestro.runtime import relevance
from maestro.runtime.operator import Operator

log = logging.getLogger(__name__)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: Operator, **_: Any) -> None:
    """kopf's settings, each with the reason for it (registered first: it sets up the API client)."""
    # The API client (kube/client.py): in-cluster service account, else the current kubeconfig (KUBECONFIG).
    kube.load_config()
    # Post Kubernetes Events from kopf's own logs only for warnings and errors: Maestro posts the meaningful
    # Normal events itself (created, ready, ...), and one event per handler run would flood `kubectl describe`.
    settings.posting.level = logging.WARNING
    # Only watch handlers are registered: kopf stores no handler progress and no last-handled spec on the apps,
    # so it writes nothing to them, and no kopf annotation appears on users' objects. No finalizers: no
    # on.delete handler is registered, so kopf adds none, and children are removed by the garbage collector
    # through their ownerReferences, also while the operator is down.
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


@kopf.on.event(api.GROUP, api.VERSION, api.PLURAL)
async def on_app(event: kopf.RawEvent, body: kopf.Body, memo: Operator, **_: Any) -> None:
    """The app's own events. A watch handler rather than kopf's on.create/update/resume: those keep a copy of
    the last handled spec in the app (one more write per change, and memory per app), while "the status has
    not caught up with the generation" is all a pass needs to know (relevance.py). Retries after API errors
    are the work queue's."""
    memo.apps.observe(event.get("type"), event.get("object") or body)
    if event.get("type") == "DELETED":  # it leaves maestro_apps at once, and holds no status back
        metrics.record_phase(body["metadata"]["namespace"], body["metadata"]["name"], None)
        memo.held.settled((body["metadata"]["namespace"], body["metadata"]["name"]))
    if relevance.app_event_needs_pass(event.get("type"), body):
        if event.get("type") is None and memo.settled_at_start(body):
            return  # its last pass left it as it is listed now: a pass would do nothing (settledmark.py)
        # A new spec goes before the status refreshes of other apps. The resume after a start reads the caches,
        # not live: the child watches listed every child before kopf's listing of the apps began
        # (Operator.start), and that listing gave the app cache this very version; a live read would return
        # the same, at a LIST per child kind per app (docs/benchmarks.md, stop 25).
        memo.request(body, urgent=relevance.spec_unobserved(body))


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
