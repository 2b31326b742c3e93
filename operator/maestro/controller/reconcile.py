"""One reconcile pass of a MicroserviceApp: level-triggered and idempotent.

    1. validate      api.validate_app; a spec Maestro cannot carry out -> phase Invalid, nothing touched
    2. desired       render the children of every service (with its config hash)
    3. observe       the app's owned children, from the child index (children.py), or listed from the API
                     server by the safety and resume passes; a desired name taken by an object the app does
                     not own -> phase Invalid (NameConflict), nothing touched
    4. gate + apply  in dependency order: a service whose children differ from the desired ones is applied
                     only when every dependency's Deployment is Available at its current generation
    5. prune         delete owned children that are no longer desired
    6. status        rebuild the status from what was observed and applied (status.py)
    7. write         patch .status only when it changed, holding back a rollout's steps (statushold.py); post
                     an Event only on meaningful transitions

Any pass may be interrupted: the next one starts from the cluster again and completes it. Every trigger
(the app's own events, its children's events, config changes, the periodic safety pass) queues a pass
(workqueue.py), which calls `reconcile`.

Who calls it: handlers.py.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from maestro import metrics, render
from maestro.api import graph
from maestro.api import models as api
from maestro.controller import precheck, status
from maestro.controller.stores import Stores
from maestro.kube import client as kube
from maestro.render import confighash

log = logging.getLogger(__name__)

# The hash of what Maestro last applied to a child: tells "this service needs a rollout" (gated by its
# dependencies) from "this service is in place" (re-applied freely, which also undoes edits made by hand).
APPLIED_HASH_ANNOTATION = f"{api.GROUP}/applied-hash"


@dataclass
class Outcome:
    """What one pass did (for logs and handlers)."""

    phase: str | None = None
    errors: list[tuple[str, str]] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    writes: int = 0  # apply requests sent
    status_written: bool = False
    recheck_after: float | None = None  # a status held back (statushold.py): pass again after this long

    @property
    def invalid(self) -> bool:
        return self.phase == "Invalid"


def child_hash(child: Mapping[str, Any]) -> str:
    """A stable hash of a rendered child (without the hash annotation itself)."""
    return hashlib.sha256(json.dumps(child, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:20]


def with_hash(child: Mapping[str, Any]) -> dict[str, Any]:
    """The child with its applied-hash annotation."""
    result = dict(child)
    meta = dict(result["metadata"])
    meta["annotations"] = {**(meta.get("annotations") or {}), APPLIED_HASH_ANNOTATION: child_hash(child)}
    result["metadata"] = meta
    return result


def up_to_date(desired: Mapping[str, Any], observed: Mapping[str, Any] | None) -> bool:
    """Whether the observed child was last applied from exactly this desired child."""
    if observed is None:
        return False
    annotations = (observed.get("metadata") or {}).get("annotations") or {}
    wanted = (desired["metadata"].get("annotations") or {}).get(APPLIED_HASH_ANNOTATION)
    return wanted is not None and annotations.get(APPLIED_HASH_ANNOTATION) == wanted


def contains(observed: Any, desired: Any, *, quantities: bool = False) -> bool:
    """Whether every field of `desired` is in `observed` with the same value (lists item by item, same
    length). Fields the API server or other managers added are ignored; anything else means "apply".
    Resource quantities compare by value: the API server stores "0.5" as "500m" (else every pass re-applied
    such a Deployment; found by tests/faults/test_fuzz.py). A field the API server leaves out because its value
    is the zero value (`readOnly: false`, `value: ""`: Go's omitempty) counts as present."""
    if isinstance(desired, Mapping):
        return isinstance(observed, Mapping) and all(
            contains(observed[key], value, quantities=quantities or key in _QUANTITY_MAPS)
            if key in observed
            else _omitted_when_empty(value)
            for key, value in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(observed, list)
            and len(observed) == len(desired)
            and all(contains(o, d) for o, d in zip(observed, desired, strict=True))
        )
    if quantities and observed != desired:
        if isinstance(desired, Mapping | list) or isinstance(observed, Mapping | list):
            return False
        value = api.parse_quantity(desired)
        return value is not None and value == api.parse_quantity(observed)
    return bool(observed == desired)


_QUANTITY_MAPS = frozenset({"requests", "limits"})


def _omitted_when_empty(value: Any) -> bool:
    """Whether the API server may store nothing for this value: Go's zero values, which omitempty leaves out
    (found by tests/faults/test_fuzz.py: a `readOnly: false` volumeMount looked edited on every pass)."""
    return value is None or value is False or value in ("", 0) or value == [] or value == {}


def in_place(desired: Mapping[str, Any], observed: Mapping[str, Any] | None) -> bool:
    """Whether applying `desired` would change nothing: last applied from the same desired object, and
    every desired field still has its value (nobody edited or removed it by hand)."""
    return observed is not None and up_to_date(desired, observed) and contains(observed, desired)


def config_hashes(app: Mapping[str, Any], services: Mapping[str, api.ServiceSpec]) -> dict[str, str]:
    """Service name -> the hash of the ConfigMaps and Secrets in its configFrom (only services that have)."""
    namespace = app["metadata"]["namespace"]
    cache: dict[str, dict[str, Any] | None] = {}
    hashes: dict[str, str] = {}
    for name, service in services.items():
        if not service.config_from:
            continue
        sources: dict[str, dict[str, Any] | None] = {}
        for source in service.config_from:
            kind, ref = ("ConfigMap", source.config_map) if source.config_map else ("Secret", source.secret)
            key = confighash.source_key(kind, str(ref))
            if key not in cache:
                cache[key] = kube.source_data(kind, namespace, str(ref))
            sources[key] = cache[key]
        hashes[name] = confighash.config_hash(sources)
    return hashes


def referenced_sources(app: Mapping[str, Any]) -> set[str]:
    """The source keys (configmap/<name>, secret/<name>) the app's services use in configFrom."""
    keys: set[str] = set()
    spec = app.get("spec") or {}
    services = list(spec.get("services") or [])
    for item in [spec.get("defaults") or {}, *services]:
        for source in (item or {}).get("configFrom") or []:
            if source.get("configMap"):
                keys.add(confighash.source_key("ConfigMap", source["configMap"]))
            if source.get("secret"):
                keys.add(confighash.source_key("Secret", source["secret"]))
    return keys


def refused(error: kube.ApiError) -> bool:
    """Whether the API server refused the child itself (retrying cannot help). A wrong type inside a
    free-form field (a probe's `tcpSocket: true`) fails server-side apply with a 500, not a 422: retried, the
    app never got a status (found by tests/faults/test_fuzz.py). So does a value the API server cannot convert
    to the typed object (a malformed quantity in a free-form field: "failed to convert new object ... unable to
    convert unstructured object"; found by the full fuzz run)."""
    return error.status in (400, 422) or (
        error.status == 500 and any(marker in error.message for marker in _REFUSAL_MARKERS_500)
    )


# Messages of the 500s the API server answers for a child it cannot type (not a server fault: retrying cannot help).
_REFUSAL_MARKERS_500 = ("failed to create typed patch object", "unable to convert unstructured object")


def _label(child: Mapping[str, Any]) -> str:
    return f"{child['kind']}/{child['metadata']['name']}"


class ChildRejected(Exception):
    """The API server refused a rendered child: the app is Invalid, `field` names the service at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _apply_child(child: Mapping[str, Any], field: str, *, dry_run: bool = False) -> dict[str, Any]:
    try:
        return kube.apply(child, dry_run=dry_run)
    except kube.ApiError as error:
        if refused(error):
            raise ChildRejected(field, f"the API server rejected {_label(child)}: {error.message}") from error
        raise


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
    # may have written the status since. The safety and resume passes read it from the API server.
    fresh = None if live else stores.apps.get(meta["namespace"], meta["name"])
    if fresh is None or meta.get("uid") not in (None, fresh["metadata"].get("uid")):
        fresh = kube.get(api.KIND, meta["namespace"], meta["name"])
        if fresh is not None:
            stores.apps.record(fresh)
    if fresh is None or meta.get("uid") not in (None, fresh["metadata"].get("uid")):
        return Outcome()
    if fresh["metadata"].get("deletionTimestamp"):
        return Outcome()  # the garbage collector removes the children
    outcome = _reconcile(fresh, stores, live=live)
    log.debug(
        "pass done: %s/%s phase=%s applied=%s writes=%d pruned=%s status_written=%s",
        meta["namespace"],
        meta["name"],
        outcome.phase,
        ",".join(outcome.applied) or "-",
        outcome.writes,
        ",".join(outcome.pruned) or "-",
        outcome.status_written,
    )
    return outcome


def _reconcile(app: Mapping[str, Any], stores: Stores, *, live: bool) -> Outcome:
    meta = app["metadata"]
    name, namespace, uid = meta["name"], meta["namespace"], meta.get("uid")
    previous = dict(app.get("status") or {})

    # 1. validate
    try:
        spec = api.validate_app(name, app.get("spec"))
    except api.SpecError as error:
        return _invalid(app, stores, previous, error.errors, "InvalidSpec")

    # 2. desired
    merged = {service.name: service for service in render.effective_services(spec)}
    deps = api.dependency_graph(spec)
    order = graph.topological_order(deps)
    index = {service.name: i for i, service in enumerate(spec.services)}
    hashes = config_hashes(app, merged)
    desired = {
        service: [
            with_hash(child)
            for child in render.render_service(app, merged[service], merged, config_hash=hashes.get(service))
        ]
        for service in order
    }

    # 3. observe, and refuse to take over objects the app does not own
    if live:
        owned = kube.owned_children(app)
        stores.children.replace(str(uid), owned.values())
    else:
        owned = stores.children.children(str(uid))
    conflicts: list[tuple[str, str]] = []
    for service in order:
        for child in desired[service]:
            key = (child["kind"], child["metadata"]["name"])
            if key in owned:
                continue
            if not live and not stores.children.taken(namespace, *key):
                continue  # nobody holds the name: the watches have listed every object of the child kinds
            existing = kube.get(child["kind"], namespace, child["metadata"]["name"])
            if existing is not None and kube.controller_uid(existing) == uid:
                owned[key] = existing  # ours, but not yet in the index: its watch event is on its way
                stores.children.record(existing)
            elif existing is not None:
                conflicts.append(
                    (
                        f"spec.services[{index[service]}].name",
                        f"{child['kind']} {child['metadata']['name']} already exists and is not owned by "
                        f"{api.KIND} {name}; rename the service or remove that object",
                    )
                )
    if conflicts:
        return _invalid(app, stores, previous, conflicts, "NameConflict")

    # 4a. a child the API server would reject makes the app Invalid before anything is written: free-form
    # fields (probes, tolerations, podSpecPatch) are only validated there. Only new renderings of services
    # with such fields are checked (precheck.py): one applied before was accepted, and the models check the
    # rest (found by tests/faults/test_fuzz.py: services applied, then Invalid).
    for service in order:
        if not precheck.needs_dry_run(merged[service]):
            continue
        for child in desired[service]:
            if up_to_date(child, owned.get((child["kind"], child["metadata"]["name"]))):
                continue
            try:
                _apply_child(child, f"spec.services[{index[service]}]", dry_run=True)
            except ChildRejected as rejected:
                return _invalid(app, stores, previous, [(rejected.field, rejected.message)], "ChildRejected")

    # 4. gate and apply, dependencies first
    outcome = Outcome()
    created: list[str] = []
    updated: list[str] = []
    available: set[str] = set()
    waiting: dict[str, list[str]] = {}
    for service in order:
        deployment_key = ("Deployment", render.child_name(name, service))
        needs_rollout = not all(
            up_to_date(child, owned.get((child["kind"], child["metadata"]["name"])))
            for child in desired[service]
        )
        blocked = graph.rollout_allowed(deps, service, available)
        if blocked and needs_rollout:
            waiting[service] = blocked
            continue
        for child in desired[service]:
            key = (child["kind"], child["metadata"]["name"])
            before = owned.get(key)
            if in_place(child, before):
                continue  # nothing to write: a steady pass sends no write request at all
            outcome.writes += 1
            try:
                result = _apply_child(child, f"spec.services[{index[service]}]")
            except ChildRejected as rejected:
                return _invalid(app, stores, previous, [(rejected.field, rejected.message)], "ChildRejected")
            owned[key] = result
            stores.children.record(result)  # its watch event, the echo of this apply, starts no pass
            if before is None:
                created.append(_label(child))
            elif not up_to_date(child, before) or _generation(before) != _generation(result):
                updated.append(_label(child))  # a new spec, or an edit by hand undone
        outcome.applied.append(service)
        if status.deployment_available(owned.get(deployment_key)):
            available.add(service)

    # 5. prune what is no longer desired (only objects this app controls; by uid, so never a newcomer)
    wanted = {
        (child["kind"], child["metadata"]["name"]) for children in desired.values() for child in children
    }
    for key, obj in list(owned.items()):
        if key not in wanted:
            kube.delete(key[0], namespace, key[1], obj["metadata"].get("uid"))
            stores.children.discard(obj)  # so that the next pass does not prune it again
            outcome.pruned.append(f"{key[0]}/{key[1]}")
            del owned[key]

    # 6. status
    services = [
        status.service_status(
            app,
            merged[service.name],
            owned.get(("Deployment", render.child_name(name, service.name))),
            waiting_for=waiting.get(service.name, ()),
        )
        for service in spec.services
    ]
    new = status.app_status(app, services, previous=previous)
    outcome.phase = new.phase

    # 7. write, and tell
    _write(app, stores, previous, new, outcome)
    if created:
        _event(app, "Normal", "Created", "created " + ", ".join(created))
    if updated:
        _event(app, "Normal", "Updated", "updated " + ", ".join(updated))
    if outcome.pruned:
        _event(app, "Normal", "Pruned", "deleted " + ", ".join(outcome.pruned))
    before_waiting = {s.get("name") for s in previous.get("services") or [] if s.get("phase") == "Waiting"}
    for service, blocked in waiting.items():
        if service not in before_waiting:
            _event(app, "Normal", "WaitingForDependency", f"{service} waits for {', '.join(blocked)}")
    if outcome.status_written and (
        new.phase != previous.get("phase") or previous.get("observedGeneration") != new.observed_generation
    ):
        if new.phase == "Ready":  # ready at this generation: also after a rollout whose steps were held back
            _event(app, "Normal", "Ready", f"all {len(services)} services are ready")
        elif new.phase == "Degraded" and new.phase != previous.get("phase"):
            message = next((c.message for c in new.conditions or [] if c.type == status.DEGRADED), "")
            _event(app, "Warning", "RolloutFailed", message)
    return outcome


def _generation(obj: Mapping[str, Any]) -> Any:
    return obj["metadata"].get("generation")


def _invalid(
    app: Mapping[str, Any],
    stores: Stores,
    previous: Mapping[str, Any],
    errors: list[tuple[str, str]],
    reason: str,
) -> Outcome:
    new = status.invalid_status(app, errors, reason=reason, previous=previous)
    outcome = Outcome(phase="Invalid", errors=list(errors))
    _write(app, stores, previous, new, outcome)
    message = "; ".join(f"{path}: {msg}" for path, msg in errors)
    old_message = next(
        (c.get("message") for c in previous.get("conditions") or [] if c.get("type") == status.READY), None
    )
    if previous.get("phase") != "Invalid" or old_message != message:
        _event(app, "Warning", reason, message)
    return outcome


def _write(
    app: Mapping[str, Any],
    stores: Stores,
    previous: Mapping[str, Any],
    new: api.MicroserviceAppStatus,
    outcome: Outcome,
) -> None:
    body = status.to_dict(new)
    key = (app["metadata"]["namespace"], app["metadata"]["name"])
    if not status.changed(previous, body):
        stores.held.settled(key)
        return
    wait = stores.held.delay(key, previous, body)
    if wait > 0:
        outcome.recheck_after = wait
        return
    stores.apps.record(kube.patch_status(app, status.status_patch(previous, body)))
    outcome.status_written = True


def _event(app: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
    log.info(
        "%s/%s: %s %s: %s", app["metadata"]["namespace"], app["metadata"]["name"], type_, reason, message
    )
    try:
        kube.post_event(app, type_, reason, message)
    except kube.ApiError as error:  # an event is worth a log line, never a failed pass
        log.warning("could not post event %s: %s", reason, error.reason)
