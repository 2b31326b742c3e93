"""The decisions of one reconcile pass, pure: what the app asks for (`Desired`) and what the pass observed
(`Observed`) in; what to write, prune and hold back, and what to tell (`Plan`), or why the app cannot be carried
out (`Invalid`), out. No I/O and no clock: the executor (execute.py) observes, hands in the time, and carries
the plan out.

Two facts are only known once the plan is carried out, so the plan states them as functions: the status is
rebuilt from the children as the writes leave them (`Plan.report`), and the Ready and RolloutFailed events are
told only when the status write goes out (`Report.if_written`: statushold.py may hold it back).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from maestro import render
from maestro.api import graph
from maestro.api import models as api
from maestro.controller import precheck, revisions, rollback, rollout, status
from maestro.controller.compare import (
    ChildKey,
    generation,
    in_place,
    keeps_generation,
    key_of,
    label,
    up_to_date,
    with_hash,
)
from maestro.render import snapshot

FieldError = tuple[str, str]  # (the spec's field, what is wrong with it)
Change = Literal["create", "update", "repair"]  # a new child, a new desired child, an edit by hand undone


# ------------------------------------------------------------------------------------------------ the inputs


@dataclass(frozen=True)
class Desired:
    """What the app asks for: its services and jobs (defaults merged), in dependency order, each with its rendered
    children (applied-hash annotated; a job's is the Job of its current run, or its CronJob), or the errors of a
    spec Maestro cannot carry out. Names are unique across services and jobs."""

    app: Mapping[str, Any]
    errors: tuple[FieldError, ...] = ()
    services: Mapping[str, api.ServiceSpec] = field(default_factory=dict)  # in spec order
    deps: Mapping[str, list[str]] = field(default_factory=dict)
    order: tuple[str, ...] = ()
    children: Mapping[str, tuple[dict[str, Any], ...]] = field(default_factory=dict)
    jobs: Mapping[str, api.JobSpec] = field(default_factory=dict)  # in spec order
    # The config snapshots the rendering loads (render/snapshot.py), by (kind, name): created before the first
    # write of a child whose pods load them.
    copies: Mapping[ChildKey, dict[str, Any]] = field(default_factory=dict)
    # The hash of the services' rendering (spec and config, revisions.rendering): what a revision records and a
    # failed rollout names. Computed once, here, for the three places a pass asks for it.
    rendering: str = ""

    def field(self, name: str) -> str:
        """The spec's path of a service or job (errors name it)."""
        if name in self.jobs:
            return f"spec.jobs[{list(self.jobs).index(name)}]"
        return f"spec.services[{list(self.services).index(name)}]"

    def keys(self) -> set[ChildKey]:
        return {key_of(child) for children in self.children.values() for child in children}

    def component(self, name: str) -> render.Component:
        """The merged service or job of that name."""
        return self.jobs[name] if name in self.jobs else self.services[name]

    def route(self, service: str) -> dict[str, Any] | None:
        """The service's HTTPRoute or Ingress (None: it has no expose.http)."""
        return next(
            (c for c in self.children.get(service, ()) if c["kind"] in ("HTTPRoute", "Ingress")), None
        )

    def run(self, job: str) -> dict[str, Any] | None:
        """The Job of a job's current run (None for a scheduled job)."""
        return next((c for c in self.children.get(job, ()) if c["kind"] == "Job"), None)


def validated(app: Mapping[str, Any]) -> api.MicroserviceAppSpec | tuple[FieldError, ...]:
    """The app's spec, or its errors."""
    try:
        return api.validate_app(app["metadata"]["name"], app.get("spec"))
    except api.SpecError as error:
        return tuple(error.errors)


def merged_services(spec: api.MicroserviceAppSpec) -> dict[str, api.ServiceSpec]:
    """Every service with the app's defaults merged under it, by name, in spec order."""
    return {service.name: service for service in render.effective_services(spec)}


def merged_components(spec: api.MicroserviceAppSpec) -> dict[str, render.Component]:
    """Every service, then every job, with the app's defaults merged under it, by name, in spec order."""
    return render.effective_components(spec)


def desire(
    app: Mapping[str, Any],
    spec: api.MicroserviceAppSpec | Sequence[FieldError],
    config_hashes: Mapping[str, str],
    copies: Mapping[str, dict[str, Any]] | None = None,
) -> Desired:
    """Render the app's children from its validated spec, its services' config hashes and the copies of its
    snapshot sources (source key -> the copy, render/snapshot.py), all observed."""
    if not isinstance(spec, api.MicroserviceAppSpec):
        return Desired(app, errors=tuple(spec))
    copies = copies or {}
    snapshots = {key: copy["metadata"]["name"] for key, copy in copies.items()}
    components = merged_components(spec)
    deps = api.dependency_graph(spec)
    order = tuple(graph.topological_order(deps))
    children = {
        name: tuple(
            with_hash(child)
            for child in render.render_component(
                app, components[name], components, config_hash=config_hashes.get(name), snapshots=snapshots
            )
        )
        for name in order
    }
    services = {n: c for n, c in components.items() if isinstance(c, api.ServiceSpec)}
    jobs = {n: c for n, c in components.items() if isinstance(c, api.JobSpec)}
    by_key = {(copy["kind"], copy["metadata"]["name"]): copy for copy in copies.values()}
    rendering = revisions.rendering({name: children[name] for name in services})
    return Desired(
        app,
        services=services,
        deps=deps,
        order=order,
        children=children,
        jobs=jobs,
        copies=by_key,
        rendering=rendering,
    )


@dataclass(frozen=True)
class Observed:
    """What the pass found: the app's .status, the children it controls, the objects under desired names that it
    does not control, the first child the API server refused in a dry run, the time, what the pods of the
    failed runs said (run name -> status.pod_failure; only for those `unexplained_failures` names), and the pods
    of the new ReplicaSet of each service rolling out (service -> pods; only for those `inspected` names; None:
    not read yet, rollout.pods_due)."""

    timestamp: str
    previous: Mapping[str, Any] = field(default_factory=dict)
    children: Mapping[ChildKey, Mapping[str, Any]] = field(default_factory=dict)
    foreign: Mapping[ChildKey, Mapping[str, Any]] = field(default_factory=dict)
    refusal: FieldError | None = None
    pod_failures: Mapping[str, str] = field(default_factory=dict)
    rollout_pods: Mapping[str, Sequence[Mapping[str, Any]] | None] = field(default_factory=dict)
    # The revision a rollback returns to (read only while the app's status records one: `rollback_revision`).
    revision: revisions.Revision | None = None


def rollback_revision(desired: Desired, previous: Mapping[str, Any]) -> str | None:
    """The name of the ControllerRevision the executor reads for this pass: the one a rollback in force returns
    to (none in any other state)."""
    if desired.errors:
        return None
    failure = rollback.active(previous, desired.rendering)
    if failure is None or failure.revision is None:
        return None
    return failure.revision.name


def last_good(previous: Mapping[str, Any]) -> api.RevisionRef | None:
    recorded = previous.get("lastGoodRevision")
    return api.RevisionRef.model_validate(recorded) if recorded else None


def unexplained_failures(
    desired: Desired, children: Mapping[ChildKey, Mapping[str, Any]], previous: Mapping[str, Any]
) -> list[str]:
    """The current runs that failed and whose pods' word is not in the app's status yet: the executor reads
    their pods (once per failed run, not on every pass)."""
    told = {
        (job.get("name"), job.get("run"))
        for job in previous.get("jobs") or []
        if job.get("phase") == "Failed"
    }
    return [
        run["metadata"]["name"]
        for name in desired.jobs
        if (run := desired.run(name)) is not None
        and status.job_failure(children.get(key_of(run))) is not None
        and (name, run["metadata"]["name"]) not in told
    ]


def inspected(
    desired: Desired, children: Mapping[ChildKey, Mapping[str, Any]], previous: Mapping[str, Any]
) -> list[str]:
    """The services whose Deployment is in the middle of a rollout (rollout.rolling_out): the executor reads the
    pods of their new ReplicaSet, which tell a failed rollout long before its progress deadline. None in a
    steady app, and none while a failure is acted on (rollback.py: decided already)."""
    name = desired.app["metadata"]["name"]
    if rollback.active(previous, desired.rendering) is not None:
        return []
    return [
        service
        for service in desired.services
        if rollout.rolling_out(children.get(("Deployment", render.child_name(name, service))))
    ]


def dry_runs(
    desired: Desired, children: Mapping[ChildKey, Mapping[str, Any]]
) -> list[tuple[str, dict[str, Any]]]:
    """(field, child) for each child the API server must judge before anything is written: free-form fields are
    only validated there, and a refusal half-way through the services would leave some of them applied. Only new
    renderings of services with such fields (precheck.py): one applied before was accepted, the models check
    the rest."""
    return [
        (desired.field(name), child)
        for name in desired.order
        if precheck.needs_dry_run(desired.component(name))
        for child in desired.children[name]
        if not up_to_date(child, children.get(key_of(child)))
    ]


# ----------------------------------------------------------------------------------------------- the outputs


@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True)
class Report:
    """What the pass tells: the app's new status, the events to post whatever happens to the status write, and
    those to post only when it goes out (a rollout's end is told once, when it is written)."""

    status: api.MicroserviceAppStatus
    events: tuple[Event, ...] = ()
    if_written: tuple[Event, ...] = ()


@dataclass(frozen=True)
class Invalid:
    """A spec Maestro cannot carry out (InvalidSpec), a desired name held by another object (NameConflict), or
    a child the API server refused (ChildRejected): nothing is written but the status."""

    reason: str
    errors: tuple[FieldError, ...]
    report: Report


@dataclass(frozen=True)
class Write:
    """One child to apply, and why."""

    service: str
    field: str  # the service's spec path, for a refusal
    child: dict[str, Any]
    change: Change

    @property
    def key(self) -> ChildKey:
        return key_of(self.child)


@dataclass(frozen=True)
class Prune:
    """An owned child that is no longer desired: deleted by uid, so never a newcomer under its name."""

    child: Mapping[str, Any]

    @property
    def key(self) -> ChildKey:
        return key_of(self.child)

    @property
    def uid(self) -> str | None:
        return self.child["metadata"].get("uid")  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Plan:
    """The writes in order (dependencies first), the prunes, the services held back and by whom, and the
    services not held back (`applied`). The status and events come from `report`, once the writes are done."""

    desired: Desired
    observed: Observed
    writes: tuple[Write, ...]
    prunes: tuple[Prune, ...]
    waiting: Mapping[str, tuple[str, ...]]
    applied: tuple[str, ...]
    # Services whose rollout their new pods show failed (rollout.pods_failure), and why; and those whose rollout
    # is still undecided and worth another look (rollout.watch_again): the executor passes again after
    # rollout.RECHECK_SECONDS.
    failures: Mapping[str, str] = field(default_factory=dict)
    watching: tuple[str, ...] = ()
    # A failed rollout and what is done about it (rollback.py): decided in this pass (`decided`: nothing else
    # is written before the decision is in the status), or in force since an earlier one.
    failure: api.RolloutFailure | None = None
    decided: bool = False
    rendering: str = ""

    @property
    def copies(self) -> tuple[dict[str, Any], ...]:
        """The config snapshots the pods of this pass's writes load (render/snapshot.py), to create first."""
        needed = snapshot.referenced_copies(w.child for w in self.writes)
        return tuple(copy for key, copy in self.desired.copies.items() if key in needed)

    def report(self, written: Mapping[ChildKey, Mapping[str, Any]] | None = None) -> Report:
        """The status and events, from the children as the writes left them (`written`: what each write
        returned; by default `as_written`'s prediction of it)."""
        if written is None:
            written = {w.key: as_written(w.child, self.observed.children.get(w.key)) for w in self.writes}
        return _report(self, written)

    def held_by_failures(self) -> dict[str, tuple[str, ...]]:
        """The services and jobs held back by a dependency that failed (a job whose current run failed, a
        service whose rollout failed), with those dependencies. They never received this revision: still at
        the last one that went through, they are what an automatic rollback (issue 16) must leave alone, and a
        failed migration rolled nothing out at all (docs/api.md, "Jobs and rollbacks")."""
        owned = self.observed.children
        name = self.desired.app["metadata"]["name"]

        def failed(dependency: str) -> bool:
            run = self.desired.run(dependency)
            if run is not None:
                return status.job_failure(owned.get(key_of(run))) is not None
            return dependency in self.failures or (
                status.deployment_failure(owned.get(("Deployment", render.child_name(name, dependency))))
                is not None
            )

        held = {item: tuple(dep for dep in deps if failed(dep)) for item, deps in self.waiting.items()}
        return {item: deps for item, deps in held.items() if deps}


def as_written(child: Mapping[str, Any], before: Mapping[str, Any] | None) -> dict[str, Any]:
    """The child as the API server answers its apply over `before`, as far as a pass reads it: the desired
    fields over the observed ones, at a new generation unless the write keeps it (see `keeps_generation`)."""
    result: dict[str, Any] = {**(before or {}), **child}
    meta = {**(before or {}).get("metadata", {}), **child["metadata"]}
    if not keeps_generation(child, before):
        meta["generation"] = int(generation(before or {}) or 0) + 1
    result["metadata"] = meta
    return result


def plan(desired: Desired, observed: Observed) -> Plan | Invalid:
    """The decisions of one pass over the app."""
    app, previous, stamp = desired.app, observed.previous, observed.timestamp
    if desired.errors:
        return invalid(app, previous, desired.errors, "InvalidSpec", stamp)
    conflicts = [
        (
            f"{desired.field(service)}.name",
            f"{child['kind']} {child['metadata']['name']} already exists and is not owned by "
            f"{api.KIND} {app['metadata']['name']}; rename the service or remove that object",
        )
        for service in desired.order
        for child in desired.children[service]
        if key_of(child) in observed.foreign
    ]
    if conflicts:
        return invalid(app, previous, conflicts, "NameConflict", stamp)
    if observed.refusal is not None:
        return invalid(app, previous, [observed.refusal], "ChildRejected", stamp)

    rendering = desired.rendering
    in_force = rollback.active(previous, rendering)
    if in_force is not None:
        return _plan_failed(desired, observed, in_force, rendering)

    owned = observed.children
    writes: list[Write] = []
    applied: list[str] = []
    available: set[str] = set()  # services Available, jobs whose current run succeeded
    waiting: dict[str, tuple[str, ...]] = {}
    for name in desired.order:
        children = desired.children[name]
        blocked = graph.rollout_allowed(desired.deps, name, available)
        if blocked and not all(up_to_date(child, owned.get(key_of(child))) for child in children):
            waiting[name] = tuple(blocked)
            continue
        run = desired.run(name)
        if run is not None and key_of(run) not in owned:
            # A new run waits for the job's runs still going (two migrations at once could collide).
            going = [r["metadata"]["name"] for r in _runs(desired, owned, name) if status.job_active(r)]
            if going:
                waiting[name] = tuple(going)
                continue
        for child in children:
            before = owned.get(key_of(child))
            if in_place(child, before):
                continue  # nothing to write: a steady pass sends no write request at all
            change: Change = (
                "create" if before is None else "update" if not up_to_date(child, before) else "repair"
            )
            writes.append(Write(name, desired.field(name), child, change))
        applied.append(name)
        if run is not None:
            # A run created in this pass has not run yet; one that exists is judged as observed.
            if status.job_succeeded(owned.get(key_of(run))):
                available.add(name)
            continue
        key = ("Deployment", render.child_name(app["metadata"]["name"], name))
        deployment = next((child for child in children if key_of(child) == key), None)
        # A Deployment written with a new spec or annotations gets a new generation, which its controller has not
        # observed yet (the write's answer shows the old observedGeneration): it is not Available in this pass.
        if status.deployment_available(owned.get(key)) and (
            deployment is None or keeps_generation(deployment, owned.get(key))
        ):
            available.add(name)

    wanted = desired.keys() | _history(desired, owned)
    prunes = tuple(Prune(obj) for key, obj in owned.items() if key not in wanted)
    failures: dict[str, str] = {}
    watching: list[str] = []
    for service, pods in observed.rollout_pods.items():
        observed_deployment = owned.get(("Deployment", render.child_name(app["metadata"]["name"], service)))
        if observed_deployment is None or any(w.key == key_of(observed_deployment) for w in writes):
            continue  # rewritten in this pass: a new rollout, which those pods are not of
        if pods is None:
            watching.append(service)  # not read yet: looked at when the pass comes back
            continue
        cause = rollout.pods_failure(pods, stamp)
        if cause is not None:
            failures[service] = cause
        elif rollout.watch_again(observed_deployment, pods, stamp):
            watching.append(service)
    failed = rollback.failing(
        app["metadata"]["name"], {s: desired.children[s] for s in desired.services}, owned, failures
    )
    rendered = {s: desired.children[s] for s in desired.services}
    decision = rollback.decide(
        desired.services,
        failed,
        last_good(previous),
        rendering,
        int(generation(app) or 0),
        stamp,
        rollback.reached(app["metadata"]["name"], rendered, owned),
    )
    if decision is not None:
        # Decided, and written to the status before anything else: the next pass carries it out.
        return Plan(desired, observed, (), (), {}, (), failures, (), decision, True, rendering)
    return Plan(
        desired, observed, tuple(writes), prunes, waiting, tuple(applied), failures, tuple(watching),
        rendering=rendering,
    )  # fmt: skip


def _plan_failed(desired: Desired, observed: Observed, failure: api.RolloutFailure, rendering: str) -> Plan:
    """The writes while a failure is in force: the rolled-back services' children from the revision,
    dependents first, and the children they had only in the failed rendering pruned; nothing for the rest."""
    owned = observed.children
    revision = observed.revision if failure.action == "RolledBack" else None
    if failure.action == "RolledBack" and revision is None:
        gone = failure.revision.name if failure.revision else "the last Ready revision"
        failure = failure.model_copy(
            update={
                "action": "Held",
                "cause": f"{failure.cause} (held: {gone} no longer exists)",
                "revision": None,
            }
        )
    returned = rollback.target(desired.order, desired.services, desired.children, revision, failure.reached)
    writes: list[Write] = []
    for name in returned.order:
        path = desired.field(name) if name in desired.services else "spec.services"
        for child in returned.children[name]:
            before = owned.get(key_of(child))
            if in_place(child, before):
                continue
            change: Change = (
                "create" if before is None else "update" if not up_to_date(child, before) else "repair"
            )
            writes.append(Write(name, path, child, change))
    kept = {key_of(c) for name in returned.rolled_back for c in returned.children[name]}
    prunes = tuple(
        Prune(obj)
        for key, obj in owned.items()
        if key not in kept
        and ((obj.get("metadata") or {}).get("labels") or {}).get(render.LABEL_COMPONENT)
        in returned.rolled_back
    )
    if revision is not None and failure.returned is None:
        failure = failure.model_copy(update={"returned": list(returned.rolled_back)})
    return Plan(
        desired, observed, tuple(writes), prunes, {}, returned.order, {}, (), failure, False, rendering
    )


def _runs(desired: Desired, owned: Mapping[ChildKey, Mapping[str, Any]], job: str) -> list[Mapping[str, Any]]:
    """The job's runs in the cluster other than the current one, newest first (by creation, then name)."""
    current = desired.run(job)
    runs = [
        obj
        for key, obj in owned.items()
        if key[0] == "Job"
        and ((obj.get("metadata") or {}).get("labels") or {}).get(render.LABEL_COMPONENT) == job
        and (current is None or key != key_of(current))
    ]
    return sorted(
        runs,
        key=lambda r: (str(r["metadata"].get("creationTimestamp") or ""), r["metadata"]["name"]),
        reverse=True,
    )


def _history(desired: Desired, owned: Mapping[ChildKey, Mapping[str, Any]]) -> set[ChildKey]:
    """The earlier runs kept for their logs: per job, the newest up to its history limit (the current run
    counts), and every run still going (never cut short; a new run waits for it). A job that left the spec, or
    that now has a schedule, keeps none."""
    kept: set[ChildKey] = set()
    for name, job in desired.jobs.items():
        if job.schedule is not None:
            continue
        limit = (job.history_limit or render.DEFAULT_HISTORY_LIMIT) - 1
        for index, run in enumerate(_runs(desired, owned, name)):
            if index < limit or status.job_active(run):
                kept.add(key_of(run))
    return kept


def invalid(
    app: Mapping[str, Any],
    previous: Mapping[str, Any],
    errors: Sequence[FieldError],
    reason: str,
    timestamp: str,
) -> Invalid:
    """Phase Invalid, every condition naming the fields at fault; a Warning when that is news."""
    new = status.invalid_status(app, errors, reason=reason, previous=previous, timestamp=timestamp)
    message = "; ".join(f"{path}: {msg}" for path, msg in errors)
    old_message = next(
        (c.get("message") for c in previous.get("conditions") or [] if c.get("type") == status.READY), None
    )
    news = previous.get("phase") != "Invalid" or old_message != message
    events = (Event("Warning", reason, message),) if news else ()
    return Invalid(reason, tuple(errors), Report(new, events))


def _report(decided: Plan, written: Mapping[ChildKey, Mapping[str, Any]]) -> Report:
    desired, observed = decided.desired, decided.observed
    app, previous = desired.app, observed.previous
    name = app["metadata"]["name"]
    after = {**observed.children, **written}
    services = [
        status.service_status(
            app,
            service,
            after.get(("Deployment", render.child_name(name, service.name))),
            waiting_for=decided.waiting.get(service.name, ()),
            route=status.route_status(service, route, None if route is None else after.get(key_of(route))),
            failure=decided.failures.get(service.name),
        )
        for service in desired.services.values()
        for route in [desired.route(service.name)]
    ]
    jobs = [_job_status(decided, after, job) for job in desired.jobs.values()]
    new = status.app_status(
        app,
        services,
        jobs=jobs,
        previous=previous,
        timestamp=observed.timestamp,
        failure=decided.failure,
        last_good=last_good(previous),
    )

    events: list[Event] = []
    created = [label(w.child) for w in decided.writes if w.change == "create"]
    # An edit by hand undone is an update when it changed the child's spec (a new generation).
    updated = [
        label(w.child)
        for w in decided.writes
        if w.change == "update"
        or (
            w.change == "repair"
            and w.key in written
            and generation(observed.children[w.key]) != generation(written[w.key])
        )
    ]
    pruned = [label(p.child) for p in decided.prunes]
    if created:
        events.append(Event("Normal", "Created", "created " + ", ".join(created)))
    if updated:
        events.append(Event("Normal", "Updated", "updated " + ", ".join(updated)))
    if pruned:
        events.append(Event("Normal", "Pruned", "deleted " + ", ".join(pruned)))
    before_waiting = {
        s.get("name")
        for s in [*(previous.get("services") or []), *(previous.get("jobs") or [])]
        if s.get("phase") == "Waiting"
    }
    events += [
        Event("Normal", "WaitingForDependency", f"{item} waits for {', '.join(blocked)}")
        for item, blocked in decided.waiting.items()
        if item not in before_waiting
    ]

    if_written: list[Event] = list(_failure_events(decided, previous))
    # A run's end is told once, when the status that says it goes out.
    told = {(j.get("name"), j.get("run")): j.get("phase") for j in previous.get("jobs") or []}
    for job in jobs:
        if job.phase in ("Succeeded", "Failed") and told.get((job.name, job.run)) != job.phase:
            if job.phase == "Succeeded":
                if_written.append(Event("Normal", "JobSucceeded", f"{job.name}: run {job.run} succeeded"))
            else:
                if_written.append(
                    Event("Warning", "JobFailed", f"{job.name}: run {job.run} failed: {job.message}")
                )
    if new.phase != previous.get("phase") or previous.get("observedGeneration") != new.observed_generation:
        if new.phase == "Ready":  # ready at this generation: also after a rollout whose steps were held back
            done = f", {len(jobs)} job{'s' if len(jobs) > 1 else ''} done" if jobs else ""
            if_written.append(Event("Normal", "Ready", f"all {len(services)} services are ready{done}"))
        elif new.phase == "Degraded" and new.phase != previous.get("phase"):
            degraded = next((c for c in new.conditions or [] if c.type == status.DEGRADED), None)
            # A failed run alone has said it (JobFailed) with the job's words.
            if degraded is not None and degraded.reason == "RolloutFailed":
                if_written.append(Event("Warning", "RolloutFailed", degraded.message))
    return Report(new, tuple(events), tuple(if_written))


def _failure_events(decided: Plan, previous: Mapping[str, Any]) -> list[Event]:
    """RolloutFailed once when a failure is decided, then RolledBack once the rollback is written (or
    RolloutHeld with the decision)."""
    failure = decided.failure
    if failure is None:
        return []
    before = previous.get("rolloutFailure") or {}
    events: list[Event] = []
    cause = f"{failure.service}: {failure.cause}"
    if decided.decided:
        events.append(Event("Warning", "RolloutFailed", cause))
    if failure.action == "Held" and (decided.decided or before.get("action") != "Held"):
        events.append(
            Event(
                "Warning",
                "RolloutHeld",
                f"nothing rolls back or further until the spec or its config changes: {cause}",
            )
        )
    if failure.action == "RolledBack" and failure.returned is not None and before.get("returned") is None:
        to = status.revision_text(failure.revision)
        events.append(
            Event(
                "Warning",
                "RolledBack",
                f"rolled back {', '.join(failure.returned) or 'nothing'} to {to}: {cause}",
            )
        )
    return events


def _job_status(
    decided: Plan, after: Mapping[ChildKey, Mapping[str, Any]], job: api.JobSpec
) -> api.JobStatus:
    """A job's status from the child of its current rendering (the current run's Job, or its CronJob)."""
    desired, observed = decided.desired, decided.observed
    child = desired.children[job.name][0]
    current = after.get(key_of(child))
    waiting = decided.waiting.get(job.name, ())
    result = status.job_status(
        desired.app,
        job,
        current,
        waiting_for=waiting,
        failure_detail=observed.pod_failures.get(child["metadata"]["name"]),
    )
    if current is None:
        # Not created yet: the status still names the run it is for.
        labels = child["metadata"].get("labels") or {}
        result = result.model_copy(
            update={"run": child["metadata"]["name"], "run_key": labels.get(render.RUN_KEY_LABEL)}
        )
    if result.phase == "Failed" and child["metadata"]["name"] not in observed.pod_failures:
        # The pods were read once, when the run failed (unexplained_failures): their word is in the status.
        before: Mapping[str, Any] = next(
            (j for j in observed.previous.get("jobs") or [] if j.get("name") == job.name), {}
        )
        if before.get("run") == result.run and before.get("phase") == "Failed" and before.get("message"):
            result = result.model_copy(update={"message": before["message"]})
    return result
