"""One reconcile pass of a MicroserviceApp: level-triggered and idempotent.

    1. read        the latest version of the app (appcache.py; from the API server for a live pass); none, or
                   being deleted -> nothing to do
    2. desire      validate the spec and render every service's children with its config hash (plan.py; the
                   ConfigMaps and Secrets are read by execute.py)
    3. observe     the app's owned children, from the child index (children.py) or listed by a live pass
                   (the safety pass's, for an app whose children disagree); the objects under desired names the index does not place; the dry runs of
                   new renderings the models cannot judge (precheck.py) (execute.py)
    4. plan        pure (plan.py): Invalid (InvalidSpec, NameConflict, ChildRejected), or the writes in
                   dependency order (a service needing a rollout waits until every dependency's Deployment is
                   Available at its current generation), the prunes, the services waiting
    5. carry out   apply, prune (by uid), rebuild the status from the children as the writes left them, write
                   it only when it changed (held back in a rollout: statushold.py), post the events only on
                   transitions (execute.py)

Any pass may be interrupted: the next one starts from the cluster again and completes it. Every trigger
(the app's own events, its children's events, config changes, the periodic safety pass) queues a pass
(workqueue.py), which calls `reconcile`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from maestro import metrics
from maestro.api import models as api
from maestro.controller import execute
from maestro.controller.execute import Outcome
from maestro.controller.stores import Stores
from maestro.kube import client as kube

log = logging.getLogger(__name__)


def describe_failure(error: BaseException) -> str | None:
    """One line for a pass that failed on the API (retried with back-off), None for anything else (a bug)."""
    if isinstance(error, kube.ApiError):
        return f"API error {error.status} {error.reason}: {error.message[:300]}"
    if isinstance(error, OSError):  # connection refused or reset, timeouts
        return f"API unreachable: {error}"
    return None


@metrics.instrumented
def reconcile(app: Mapping[str, Any], stores: Stores) -> Outcome:
    """One full pass over the app. Never two at once for one app: the work queue (workqueue.py) runs them.

    `app` needs only metadata.name and namespace (and uid, to skip a pass for an app deleted and created
    again under the same name): the pass reads the app itself. With `app["live"]` true it reads the app and
    lists its children from the API server rather than trusting the app cache and the child index
    (appcache.py, children.py), and corrects them.
    """
    meta = app["metadata"]
    live = bool(app.get("live"))
    # The latest version seen (appcache.py): the event that queued this pass may be older, and the last pass
    # may have written the status since. A live pass reads it from the API server.
    fresh = None if live else stores.apps.get(meta["namespace"], meta["name"])
    if fresh is None or meta.get("uid") not in (None, fresh["metadata"].get("uid")):
        fresh = kube.get(api.KIND, meta["namespace"], meta["name"])
        if fresh is not None:
            stores.apps.record(fresh)
    if fresh is None or meta.get("uid") not in (None, fresh["metadata"].get("uid")):
        return Outcome()
    if fresh["metadata"].get("deletionTimestamp"):
        return Outcome()  # the garbage collector removes the children
    outcome = execute.run(fresh, stores, live=live)
    log.debug(
        "pass done: %s/%s phase=%s applied=%s writes=%d pruned=%s status_written=%s mark_written=%s",
        meta["namespace"],
        meta["name"],
        outcome.phase,
        ",".join(outcome.applied) or "-",
        outcome.writes,
        ",".join(outcome.pruned) or "-",
        outcome.status_written,
        outcome.mark_written,
    )
    return outcome
