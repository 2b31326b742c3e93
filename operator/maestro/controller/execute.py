"""Carrying out one pass: observe what plan.py needs, ask it, and do what it says. Every API request of a pass
is sent from here (kube/client.py), in this order: the config sources, the app's children (listed by a live
pass), the objects under desired names the child index does not know, the dry runs, the pods of a job run that
has just failed, the ReplicaSets and pods of a Deployment in the middle of a rollout, the applies, the prunes, the status write, the events. Nothing is decided here but what the API server's answers say.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from maestro import metrics, render
from maestro.api import models as api
from maestro.api import timestamps
from maestro.controller import compare, plan, revisions, rollout, settledmark, status
from maestro.controller.compare import ChildKey
from maestro.controller.plan import Desired, FieldError, Observed
from maestro.controller.stores import Stores
from maestro.kube import client as kube
from maestro.render import confighash, snapshot

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What one pass did (for logs and handlers)."""

    phase: str | None = None
    applied: list[str] = field(default_factory=list)  # the services not held back by a dependency
    pruned: list[str] = field(default_factory=list)
    writes: int = 0  # apply requests sent
    status_written: bool = False
    mark_written: bool = False  # the settled mark alone (settledmark.py)
    # A status held back (statushold.py), or a rollout still undecided (rollout.py): pass again after this long.
    recheck_after: float | None = None


class ChildRejected(Exception):
    """The API server refused a rendered child: the app is Invalid, `field` names the service at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def refused(error: kube.ApiError) -> bool:
    """Whether the API server refused the child itself (retrying cannot help): a 400 or 422, or the 500 it
    answers for a child it cannot type (a wrong type or an unconvertible value inside a free-form field)."""
    return error.status in (400, 422) or (
        error.status == 500 and any(marker in error.message for marker in _REFUSAL_MARKERS_500)
    )


# Messages of the 500s the API server answers for a child it cannot type (not a server fault: retrying cannot help).
_REFUSAL_MARKERS_500 = ("failed to create typed patch object", "unable to convert unstructured object")


def run(app: Mapping[str, Any], stores: Stores, *, live: bool) -> Outcome:
    """One pass over the app as read (`live`: list its children from the API server, not the child index)."""
    previous = dict(app.get("status") or {})
    timestamp = timestamps.now()  # the plan's only clock
    spec = plan.validated(app)
    if isinstance(spec, api.MicroserviceAppSpec):
        config = read_config(app, plan.merged_components(spec))
        desired = plan.desire(app, spec, config.hashes, config.copies)
        observed = observe(app, desired, stores, live=live, previous=previous, timestamp=timestamp)
    else:
        desired = plan.desire(app, spec, {})
        observed = Observed(timestamp, previous)  # nothing to observe for a spec that cannot be carried out
    return carry_out(app, stores, desired, observed)


# ------------------------------------------------------------------------------------------------ observation


@dataclass(frozen=True)
class Config:
    """What a pass reads of the ConfigMaps and Secrets the app uses: each service's (job's) config hash (only for
    those that use some), and the copy each existing snapshot source would have (by source key)."""

    hashes: dict[str, str]
    copies: dict[str, dict[str, Any]]


def read_config(app: Mapping[str, Any], components: Mapping[str, api.PodSettings]) -> Config:
    """Read each ConfigMap and Secret the components use (configFrom and mounted volumes) once."""
    namespace = app["metadata"]["namespace"]
    objects: dict[str, dict[str, Any] | None] = {}

    def read(kind: str, name: str) -> dict[str, Any] | None:
        key = confighash.source_key(kind, name)
        if key not in objects:
            objects[key] = kube.get(kind, namespace, name)
        return objects[key]

    hashes: dict[str, str] = {}
    for name, component in components.items():
        sources = {
            confighash.source_key(kind, ref): confighash.hashed_data(kind, read(kind, ref))
            for kind, ref in confighash.referenced(component)
        }
        if sources:
            hashes[name] = confighash.config_hash(sources)
    copies = {
        confighash.source_key(kind, ref): snapshot.render_copy(app, kind, source)
        for kind, ref in sorted(snapshot.snapshot_sources(components.values()))
        if (source := read(kind, ref)) is not None
    }
    return Config(hashes, copies)


def observe(
    app: Mapping[str, Any],
    desired: Desired,
    stores: Stores,
    *,
    live: bool,
    previous: Mapping[str, Any],
    timestamp: str,
) -> Observed:
    """The app's children (from the child index, or listed), who holds the desired names they do not cover,
    and, when no name is held by another object, the first refusal of a dry run."""
    meta = app["metadata"]
    namespace, uid = meta["namespace"], meta.get("uid")
    if live:
        owned = kube.owned_children(app)
        stores.children.replace(str(uid), owned.values())
    else:
        owned = stores.children.children(str(uid))
    foreign: dict[ChildKey, dict[str, Any]] = {}
    for service in desired.order:
        for child in desired.children[service]:
            key = compare.key_of(child)
            if key in owned:
                continue
            if not live and not stores.children.taken(namespace, *key):
                continue  # nobody holds the name: the watches have listed every object of the child kinds
            existing = kube.get(key[0], namespace, key[1])
            if existing is not None and kube.controller_uid(existing) == uid:
                owned[key] = existing  # ours, but not yet in the index: its watch event is on its way
                stores.children.record(existing)
            elif existing is not None:
                foreign[key] = existing
    refusal = None if foreign else _dry_run(desired, owned)
    # What the pods of a run that failed said: read once, when the run is seen failed (the status keeps it).
    pod_failures = {
        run: detail
        for run in plan.unexplained_failures(desired, owned, previous)
        if (detail := status.pod_failure(kube.run_pods(namespace, run))) is not None
    }
    read_pods = rollout.pods_due(app)
    rollout_pods = {
        service: new_pods(namespace, owned[("Deployment", render.child_name(meta["name"], service))])
        if read_pods
        else None
        for service in plan.inspected(desired, owned, previous)
    }
    revision_name = plan.rollback_revision(desired, previous)
    recorded = kube.get(revisions.KIND, namespace, revision_name) if revision_name else None
    revision = (
        revisions.read_revision(recorded)
        if recorded is not None and kube.controller_uid(recorded) == uid
        else None
    )
    return Observed(timestamp, previous, owned, foreign, refusal, pod_failures, rollout_pods, revision)


def new_pods(namespace: str, deployment: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The pods of a Deployment's new ReplicaSet (none before its controller has made it): two listings, by its
    pods' selector labels."""
    selector = dict(((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})
    if not selector:
        return []
    try:
        replicaset = rollout.new_replicaset(deployment, kube.replica_sets(namespace, selector))
        template_hash = rollout.template_hash(replicaset) if replicaset is not None else None
        if template_hash is None:
            return []
        return kube.pods(namespace, {**selector, rollout.TEMPLATE_HASH_LABEL: template_hash})
    except kube.ApiError as error:
        if error.status != 403:
            raise
        # A role from before this check (an operator upgraded without its chart): the rollout is judged by its
        # Deployment alone, as it was, rather than every pass of it failing.
        log.warning("cannot list the pods of a rollout (early failure detection is off): %s", error.message)
        return []


def _dry_run(desired: Desired, owned: Mapping[ChildKey, Mapping[str, Any]]) -> FieldError | None:
    for path, child in plan.dry_runs(desired, owned):
        try:
            _apply(child, path, dry_run=True)
        except ChildRejected as rejected:
            return (rejected.field, rejected.message)
    return None


def _apply(child: Mapping[str, Any], path: str, *, dry_run: bool = False) -> dict[str, Any]:
    try:
        return kube.apply(child, dry_run=dry_run)
    except kube.ApiError as error:
        message = rejection(child, error)
        if message is not None:
            raise ChildRejected(path, message) from error
        raise


def rejection(child: Mapping[str, Any], error: kube.ApiError) -> str | None:
    """Why applying the child cannot succeed however often it is tried (the API server refused it, or does not
    serve its kind: an optional kind whose CRDs are not installed), or None (retry)."""
    if refused(error):
        return f"the API server rejected {compare.label(child)}: {error.message}"
    if kube.not_served(child["kind"], error):
        return (
            f"{compare.label(child)}: this cluster does not serve {child['apiVersion']} {child['kind']} "
            "(install its CRDs, e.g. the Gateway API's; or route through an Ingress: expose.http.ingress)"
        )
    return None


# ---------------------------------------------------------------------------------------------------- action


def carry_out(app: Mapping[str, Any], stores: Stores, desired: Desired, observed: Observed) -> Outcome:
    """Plan the pass, then apply, prune, write the status and post the events."""
    decided = plan.plan(desired, observed)
    if isinstance(decided, plan.Invalid):
        return _finish(app, stores, observed.previous, decided.report, Outcome(phase="Invalid"))
    outcome = Outcome(applied=list(decided.applied))
    for copy in decided.copies:
        create_copy(copy)
    written: dict[ChildKey, Mapping[str, Any]] = {}
    for write in decided.writes:
        outcome.writes += 1
        try:
            answer = _apply(write.child, write.field)
        except ChildRejected as rejected:  # a child no dry run was needed for: refused all the same
            refusal = dataclasses.replace(observed, refusal=(rejected.field, rejected.message))
            invalid = plan.plan(desired, refusal)
            assert isinstance(invalid, plan.Invalid)
            return _finish(app, stores, observed.previous, invalid.report, Outcome(phase="Invalid"))
        written[write.key] = answer
        stores.children.record(answer)  # its watch event, the echo of this apply, starts no pass
    namespace = app["metadata"]["namespace"]
    for prune in decided.prunes:
        kube.delete(prune.key[0], namespace, prune.key[1], prune.uid)
        stores.children.discard(prune.child)  # so that the next pass does not prune it again
        outcome.pruned.append(compare.label(prune.child))
    report = decided.report(written)
    if revision_due(decided, report.status):
        report = dataclasses.replace(report, status=record_revision(app, decided, report.status))
    outcome.phase = report.status.phase
    mark = settled_mark(app, stores, decided, report.status)
    _finish(app, stores, observed.previous, report, outcome, mark)
    if outcome.status_written and any(e.reason == "RolloutFailed" for e in report.if_written):
        # Told once per failed rollout: acted on (RolledBack, Held), or only reported (no Ready revision yet).
        failure = decided.failure
        cause = (
            failure.cause
            if failure
            else next(e.message for e in report.if_written if e.reason == "RolloutFailed")
        )
        metrics.rollout_failed(rollout.failure_reason(cause), failure.action if failure else "Reported")
    if decided.decided and decided.failure is not None and decided.failure.action == "RolledBack":
        outcome.recheck_after = ROLLBACK_RECHECK_SECONDS  # carried out by the next pass, at once
    if decided.watching:  # crash-looping pods change nothing their Deployment's watch would report
        wait = rollout.RECHECK_SECONDS
        outcome.recheck_after = min(wait, outcome.recheck_after) if outcome.recheck_after else wait
    return outcome


ROLLBACK_RECHECK_SECONDS = 0.1


def create_copy(copy: Mapping[str, Any]) -> None:
    """Create a config snapshot; one that exists has the same data (its name is the data's hash)."""
    try:
        kube.create(copy)
    except kube.ApiError as error:
        if error.status != 409:
            raise


def settled_mark(
    app: Mapping[str, Any], stores: Stores, decided: plan.Plan, new: api.MicroserviceAppStatus
) -> str | None:
    """The mark of a settled pass (settledmark.py), written with its status; None for any other pass."""
    settled = (
        new.phase == "Ready"
        and not (decided.writes or decided.prunes or decided.copies or decided.watching)
        and decided.failure is None
        and not confighash.app_sources(app)
    )
    if not settled or stores.code_digest is None:
        return None
    body = status.to_dict(new)
    return settledmark.digest(stores.code_digest, app, body, decided.observed.children.values())


def revision_due(decided: plan.Plan, new: api.MicroserviceAppStatus) -> bool:
    """Whether the app is Ready at a rendering that is not its last Ready revision: record it."""
    recorded = new.last_good_revision
    name = revisions.revision_name(decided.desired.app["metadata"]["name"], decided.rendering)
    return new.phase == "Ready" and decided.failure is None and (recorded is None or recorded.name != name)


def record_revision(
    app: Mapping[str, Any], decided: plan.Plan, new: api.MicroserviceAppStatus
) -> api.MicroserviceAppStatus:
    """Record the Ready rendering as the app's newest revision (one create; a rendering recorded before is
    written again under the newest number; the revisions beyond the history limit deleted), and delete the
    config snapshots that neither it nor a kept revision loads: the status then names it."""
    desired = decided.desired
    services = dict(desired.services)
    revision = revisions.render_revision(
        app, 0, services, {name: desired.children[name] for name in services}, decided.observed.timestamp
    )
    spec = app.get("spec") or {}
    limit = spec.get("revisionHistoryLimit") or api.DEFAULT_REVISION_HISTORY_LIMIT
    existing = kube.revisions(app)
    step = revisions.recording(revision, existing, int(limit))
    namespace = app["metadata"]["namespace"]
    if step.create is not None:
        if step.replace:
            kube.delete(revisions.KIND, namespace, step.create["metadata"]["name"])
        kube.create(step.create)
    for name in step.delete:
        kube.delete(revisions.KIND, namespace, name)
    kept = [obj for obj in existing if obj["metadata"]["name"] not in step.delete] + [revision]
    for kind, name in snapshot.unused_copies(kube.snapshot_copies(app), kept, desired.children.values()):
        kube.delete(kind, namespace, name)
    log.info(
        "%s/%s: revision %d recorded (%s)",
        namespace,
        app["metadata"]["name"],
        step.ref.revision,
        step.ref.name,
    )
    return new.model_copy(update={"last_good_revision": step.ref})


def _finish(
    app: Mapping[str, Any],
    stores: Stores,
    previous: Mapping[str, Any],
    report: plan.Report,
    outcome: Outcome,
    mark: str | None = None,
) -> Outcome:
    _write(app, stores, previous, report.status, outcome, mark)
    for event in report.events + (report.if_written if outcome.status_written else ()):
        _tell(app, event)
    return outcome


def _write(
    app: Mapping[str, Any],
    stores: Stores,
    previous: Mapping[str, Any],
    new: api.MicroserviceAppStatus,
    outcome: Outcome,
    mark: str | None,
) -> None:
    """Patch .status when it changed, unless statushold.py holds it back (then pass again later). The settled
    mark goes with it (a mark left by an earlier pass is removed); alone only in place of another version's."""
    body = status.to_dict(new)
    key = (app["metadata"]["namespace"], app["metadata"]["name"])
    if not status.changed(previous, body):
        stores.held.settled(key)
        if mark is not None and not settledmark.same_code(previous.get(settledmark.FIELD), mark):
            # None yet, or an older operator's: written once, so that the next start can trust it.
            stores.apps.record(kube.patch_status(app, {settledmark.FIELD: mark}))
            outcome.mark_written = True
        return
    wait = stores.held.delay(key, previous, body)
    if wait > 0:
        outcome.recheck_after = wait
        return
    patch = status.status_patch(previous, body)
    if mark is not None or previous.get(settledmark.FIELD) is not None:
        patch[settledmark.FIELD] = mark
    stores.apps.record(kube.patch_status(app, patch))
    outcome.status_written = True


def _tell(app: Mapping[str, Any], event: plan.Event) -> None:
    meta = app["metadata"]
    log.info("%s/%s: %s %s: %s", meta["namespace"], meta["name"], event.type, event.reason, event.message)
    try:
        kube.post_event(app, event.type, event.reason, event.message)
    except kube.ApiError as error:  # an event is worth a log line, never a failed pass
        log.warning("could not post event %s: %s", event.reason, error.reason)
