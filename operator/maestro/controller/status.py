"""Compute a MicroserviceApp's status from what is observed in the cluster.

Conditions: Ready, Progressing, Degraded, and kstatus' Reconciling and Stalled (docs/gitops.md), each with the
app's observedGeneration.

Pure: plain dicts (the app, its observed Deployments, Jobs and CronJobs) in, an `api.MicroserviceAppStatus` out;
no Kubernetes client. The status is rebuilt on every pass; `changed` tells whether it differs from what the app already
shows, so the operator writes it only then. A condition keeps its lastTransitionTime while its status
(True/False/Unknown) stays the same, as metav1.Condition semantics require.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from maestro import render
from maestro.api import models as api
from maestro.api.timestamps import now
from maestro.controller import settledmark

READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"
# kstatus' "abnormal-true" conditions (what Flux, Helm 4's --wait and cli-utils read): Reconciling=True means
# InProgress, Stalled=True means Failed. Without Stalled, kstatus reads Ready=False as InProgress, so an Invalid or
# Degraded app would only ever time out a GitOps health check instead of failing it.
RECONCILING = "Reconciling"
STALLED = "Stalled"
CONDITION_TYPES = (READY, PROGRESSING, DEGRADED, RECONCILING, STALLED)

# Fields of .status that the operator does not compute (kopf's handler progress): left alone, never compared.
FOREIGN_FIELDS = frozenset({"kopf"})
# Nor is the settled mark compared: it describes the status rather than being part of it (settledmark.py).
_UNCOMPARED = FOREIGN_FIELDS | {settledmark.FIELD}


def _condition(obj: Mapping[str, Any] | None, kind: str) -> Mapping[str, Any] | None:
    for item in ((obj or {}).get("status") or {}).get("conditions") or []:
        if item.get("type") == kind:
            return item  # type: ignore[no-any-return]
    return None


def _spec_replicas(deployment: Mapping[str, Any]) -> int:
    replicas = (deployment.get("spec") or {}).get("replicas")
    return 1 if replicas is None else int(replicas)


def observed_current(deployment: Mapping[str, Any]) -> bool:
    """Whether the Deployment controller has seen the Deployment's current generation."""
    generation = (deployment.get("metadata") or {}).get("generation")
    observed = (deployment.get("status") or {}).get("observedGeneration")
    return generation is not None and observed is not None and observed >= generation


def deployment_available(deployment: Mapping[str, Any] | None) -> bool:
    """Available at its current generation: the controller observed the current spec, the Available
    condition is True, and every wanted pod runs the current template and is available."""
    if not deployment or not observed_current(deployment):
        return False
    available = _condition(deployment, "Available")
    if available is None or available.get("status") != "True":
        return False
    status = deployment.get("status") or {}
    wanted = _spec_replicas(deployment)
    return bool(
        status.get("updatedReplicas", 0) >= wanted
        and status.get("availableReplicas", 0) >= wanted
        and status.get("replicas", 0) <= wanted  # no old pods left from a rollout
    )


def deployment_failure(deployment: Mapping[str, Any] | None) -> str | None:
    """Why the Deployment's rollout failed (progress deadline exceeded, replica failure), or None.

    Only at the Deployment's current generation: right after a spec change (e.g. the fix of a stuck rollout),
    its conditions still describe the previous rollout, and a stale failure would mark the app Stalled, which
    makes GitOps tools that stop at kstatus Failed (Helm 4's --wait, Flux) give up on a rollout in progress.
    """
    if not deployment or not observed_current(deployment):
        return None
    progressing = _condition(deployment, "Progressing")
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        return str(progressing.get("message") or "progress deadline exceeded")
    failure = _condition(deployment, "ReplicaFailure")
    if failure is not None and failure.get("status") == "True":
        return str(failure.get("message") or "replica failure")
    return None


def _image(deployment: Mapping[str, Any]) -> str | None:
    containers = (((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers")
    return str(containers[0].get("image")) if containers else None


def urls(service: api.ServiceSpec) -> list[str] | None:
    """The external URLs of the service's route: https with a TLS Secret, else http; each host, each path."""
    http = service.expose.http if service.expose else None
    if http is None:
        return None
    scheme = "https" if http.tls_secret else "http"
    return [f"{scheme}://{host}{path}" for host in http.hosts or [] for path in http.paths or ["/"]]


def route_status(
    service: api.ServiceSpec, route: Mapping[str, Any] | None, observed: Mapping[str, Any] | None
) -> api.RouteStatus | None:
    """The route's acceptance as read back: an HTTPRoute's Accepted and ResolvedRefs conditions for its Gateway
    (Unknown while no gateway controller has answered), an Ingress's address. `route`: the desired route (None:
    the service has none); `observed`: the route in the cluster (None: not created yet)."""
    if route is None:
        return None
    kind, name = route["kind"], route["metadata"]["name"]
    if observed is None:
        return api.RouteStatus(kind=kind, name=name, accepted="Unknown", message=f"{kind} not created yet")
    if kind == "Ingress":
        addresses = [
            str(item.get("ip") or item.get("hostname"))
            for item in ((observed.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        ]
        if addresses:
            return api.RouteStatus(
                kind=kind, name=name, accepted="True", message=f"address {', '.join(addresses)}"
            )
        return api.RouteStatus(
            kind=kind,
            name=name,
            accepted="Unknown",
            message="no address yet: no ingress controller has answered",
        )
    wanted = route["spec"]["parentRefs"][0]
    namespace = wanted.get("namespace") or (route["metadata"].get("namespace"))
    gateway = f"{namespace}/{wanted['name']}" if namespace else wanted["name"]
    for parent in (observed.get("status") or {}).get("parents") or []:
        ref = parent.get("parentRef") or {}
        if ref.get("name") != wanted["name"] or (ref.get("namespace") or namespace) != namespace:
            continue
        accepted = _find(parent, "Accepted")
        resolved = _find(parent, "ResolvedRefs")
        rows = [c for c in (accepted, resolved) if c is not None and c.get("status") != "True"]
        message = "; ".join(
            f"{c.get('type')}: {c.get('reason')}: {c.get('message') or ''}".rstrip(": ") for c in rows
        )
        return api.RouteStatus(
            kind=kind,
            name=name,
            accepted=(accepted or {}).get("status", "Unknown"),
            resolved_refs=(resolved or {}).get("status", "Unknown"),
            message=message or f"accepted by Gateway {gateway}",
        )
    return api.RouteStatus(
        kind=kind,
        name=name,
        accepted="Unknown",
        resolved_refs="Unknown",
        message=f"not yet accepted: no controller of Gateway {gateway} has answered",
    )


def _find(parent: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    return next((c for c in parent.get("conditions") or [] if c.get("type") == kind), None)


def service_status(
    app: Mapping[str, Any],
    service: api.ServiceSpec,
    deployment: Mapping[str, Any] | None,
    *,
    waiting_for: Sequence[str] = (),
    route: api.RouteStatus | None = None,
    failure: str | None = None,
) -> api.ServiceStatus:
    """The status of one (merged) service from its observed Deployment (and its route's, `route_status`).

    `waiting_for`: the dependencies that held this pass's rollout of the service (its Deployment, if any,
    is not at the desired spec). `failure`: why the pods of its new ReplicaSet show its rollout failed
    (rollout.pods_failure), before its Deployment says so.
    """
    meta = app.get("metadata") or {}
    endpoint = render.endpoint(meta.get("name", ""), service, meta.get("namespace"))
    base: dict[str, Any] = {"name": service.name, "endpoint": endpoint, "urls": urls(service), "route": route}
    if deployment:
        status = deployment.get("status") or {}
        base.update(
            replicas=status.get("replicas", 0),
            ready_replicas=status.get("readyReplicas", 0),
            updated_replicas=status.get("updatedReplicas", 0),
            image=_image(deployment),
        )
    if waiting_for:
        names = ", ".join(waiting_for)
        return api.ServiceStatus(
            phase="Waiting",
            waiting_for=list(waiting_for),
            message=f"waiting for {names} to be available",
            **base,
        )
    if not deployment:
        return api.ServiceStatus(phase="Pending", message="Deployment not created yet", **base)
    # Available first: after a rollback to a ReplicaSet that is already available (the fix of a stuck
    # rollout), the controller keeps ProgressDeadlineExceeded until it next records progress, though the
    # Deployment is complete at its current generation.
    if deployment_available(deployment):
        return api.ServiceStatus(phase="Ready", **base)
    failure = deployment_failure(deployment) or failure
    if failure is not None:
        return api.ServiceStatus(phase="Degraded", message=failure, **base)
    wanted = _spec_replicas(deployment)
    return api.ServiceStatus(
        phase="Progressing",
        message=f"{base.get('ready_replicas', 0)}/{wanted} replicas ready, "
        f"{base.get('updated_replicas', 0)} updated",
        **base,
    )


# --------------------------------------------------------------------------------------------------- jobs


def job_succeeded(run: Mapping[str, Any] | None) -> bool:
    """Whether a run's Job has completed (its Complete condition): what lets the job's dependents through."""
    complete = _condition(run, "Complete")
    return complete is not None and complete.get("status") == "True"


def job_failure(run: Mapping[str, Any] | None) -> str | None:
    """Why a run's Job failed (its Failed condition: BackoffLimitExceeded, DeadlineExceeded, ...), or None."""
    failed = _condition(run, "Failed")
    if failed is None or failed.get("status") != "True":
        return None
    reason, message = failed.get("reason") or "Failed", failed.get("message") or ""
    return f"{reason}: {message}" if message else str(reason)


def job_active(run: Mapping[str, Any] | None) -> bool:
    """Whether a run is still going: neither complete nor failed (a run being created counts)."""
    return run is not None and not job_succeeded(run) and job_failure(run) is None


def pod_failure(pods: Sequence[Mapping[str, Any]]) -> str | None:
    """What the failed pods of a run say, from the newest: its name, the container's exit code and reason, and
    the termination message the container wrote (/dev/termination-log, or its last log lines with
    terminationMessagePolicy FallbackToLogsOnError). None when no pod has failed yet (or they are gone)."""
    failed = [p for p in pods if (p.get("status") or {}).get("phase") == "Failed"]
    for pod in sorted(
        failed, key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp")), reverse=True
    ):
        pod_status = pod.get("status") or {}
        for container in pod_status.get("containerStatuses") or []:
            ended = ((container.get("state") or {}).get("terminated")) or {}
            if ended.get("exitCode"):
                text = f"pod {pod['metadata'].get('name')}: exit code {ended['exitCode']}"
                if ended.get("reason"):
                    text += f" ({ended['reason']})"
                message = str(ended.get("message") or "").strip()
                return f"{text}: {message}" if message else text
        if pod_status.get("reason") or pod_status.get("message"):  # evicted, deadline: the pod's own reason
            detail = ": ".join(str(pod_status[k]) for k in ("reason", "message") if pod_status.get(k))
            return f"pod {pod['metadata'].get('name')}: {detail}"
    return None


def job_status(
    app: Mapping[str, Any],
    job: api.JobSpec,
    current: Mapping[str, Any] | None,
    *,
    waiting_for: Sequence[str] = (),
    failure_detail: str | None = None,
) -> api.JobStatus:
    """The status of one (merged) job from the child that carries its current rendering: the Job of its current
    run, or its CronJob (None: not created yet). `waiting_for`: the dependencies (or the previous run) that held
    it in this pass; `failure_detail`: what the failed run's pod said (pod_failure)."""
    meta = (current or {}).get("metadata") or {}
    labels = meta.get("labels") or {}
    base: dict[str, Any] = {
        "name": job.name,
        "run": meta.get("name"),
        "run_key": labels.get(render.RUN_KEY_LABEL),
    }
    observed = (current or {}).get("status") or {}
    if job.schedule is not None:
        return _scheduled_status(base, current, observed, waiting_for)
    if waiting_for:
        return api.JobStatus(
            phase="Waiting",
            waiting_for=list(waiting_for),
            message=f"waiting for {', '.join(waiting_for)}",
            **base,
        )
    if current is None:
        return api.JobStatus(phase="Pending", message="Job not created yet", **base)
    base.update(start_time=observed.get("startTime"))
    if job_succeeded(current):
        return api.JobStatus(phase="Succeeded", completion_time=observed.get("completionTime"), **base)
    failure = job_failure(current)
    if failure is not None:
        message = f"{failure}; {failure_detail}" if failure_detail else failure
        return api.JobStatus(phase="Failed", message=message, **base)
    failed = observed.get("failed") or 0
    active = observed.get("active") or 0
    message = f"{active} pod{'' if active == 1 else 's'} running" + (f", {failed} failed" if failed else "")
    return api.JobStatus(phase="Running", message=message, **base)


def _scheduled_status(
    base: dict[str, Any],
    cronjob: Mapping[str, Any] | None,
    observed: Mapping[str, Any],
    waiting_for: Sequence[str],
) -> api.JobStatus:
    base["run_key"] = None
    if waiting_for:
        names = ", ".join(waiting_for)
        return api.JobStatus(
            phase="Waiting", waiting_for=list(waiting_for), message=f"waiting for {names}", **base
        )
    if cronjob is None:
        return api.JobStatus(phase="Pending", message="CronJob not created yet", **base)
    scheduled, succeeded = observed.get("lastScheduleTime"), observed.get("lastSuccessfulTime")
    result: api.JobResult | None = None
    if observed.get("active"):
        result = "Running"
    elif scheduled is not None:
        # The CronJob keeps no result: its last run succeeded if it completed after it was scheduled.
        result = "Succeeded" if succeeded is not None and str(succeeded) >= str(scheduled) else "Failed"
    return api.JobStatus(
        phase="Scheduled",
        last_schedule_time=scheduled,
        last_successful_time=succeeded,
        last_result=result,
        message=f"schedule {(cronjob.get('spec') or {}).get('schedule')}",
        **base,
    )


# (status, reason, message) of one condition.
Row = tuple[api.ConditionStatus, str, str]
_AS_EXPECTED: Row = ("False", "AsExpected", "")


def _conditions(
    app: Mapping[str, Any],
    previous: Mapping[str, Any] | None,
    timestamp: str,
    *,
    ready: Row,
    progressing: Row,
    degraded: Row,
    stalled: Row,
) -> list[api.Condition]:
    """The five conditions, in CONDITION_TYPES order. kstatus' Reconciling says what Progressing says. A
    condition keeps its previous lastTransitionTime while its status stays the same."""
    rows = {
        READY: ready,
        PROGRESSING: progressing,
        DEGRADED: degraded,
        RECONCILING: progressing,
        STALLED: stalled,
    }
    before = {item.get("type", ""): item for item in (previous or {}).get("conditions") or []}
    conditions = []
    for kind in CONDITION_TYPES:
        status, reason, message = rows[kind]
        old = before.get(kind)
        keep = old is not None and old.get("status") == status and old.get("lastTransitionTime")
        conditions.append(
            api.Condition(
                type=kind,
                status=status,
                reason=reason,
                message=message,
                last_transition_time=str(old["lastTransitionTime"]) if keep and old else timestamp,
                observed_generation=_generation(app),
            )
        )
    return conditions


def _generation(app: Mapping[str, Any]) -> int | None:
    generation = (app.get("metadata") or {}).get("generation")
    return int(generation) if generation is not None else None


def invalid_status(
    app: Mapping[str, Any],
    errors: Sequence[tuple[str, str]],
    *,
    reason: str = "InvalidSpec",
    previous: Mapping[str, Any] | None = None,
    timestamp: str | None = None,
) -> api.MicroserviceAppStatus:
    """Phase Invalid: the spec cannot be carried out (`reason` InvalidSpec, NameConflict or ChildRejected);
    every condition names the offending fields, and only Stalled is True."""
    message = "; ".join(f"{path}: {msg}" for path, msg in errors)
    failed: Row = ("False", reason, message)
    return api.MicroserviceAppStatus(
        observed_generation=_generation(app),
        phase="Invalid",
        ready_services=(previous or {}).get("readyServices"),
        conditions=_conditions(
            app,
            previous,
            timestamp or now(),
            ready=failed,
            progressing=failed,
            degraded=failed,
            stalled=("True", reason, message),
        ),
        services=None,
        last_good_revision=(previous or {}).get("lastGoodRevision"),
    )


def app_status(
    app: Mapping[str, Any],
    services: Sequence[api.ServiceStatus],
    *,
    jobs: Sequence[api.JobStatus] = (),
    previous: Mapping[str, Any] | None = None,
    timestamp: str | None = None,
    failure: api.RolloutFailure | None = None,
    last_good: api.RevisionRef | None = None,
) -> api.MicroserviceAppStatus:
    """The app's status from its services' and jobs' statuses (in spec order), the failed rollout acted on
    (rollback.py) and the last Ready revision.

    Phase: Degraded when a rollout or a job's current run failed, Ready when every service is Ready and every
    job's current run Succeeded (a scheduled job only needs its CronJob), Pending when every service and job is
    Pending or Waiting, else Progressing.
    """
    ready = [s for s in services if s.phase == "Ready"]
    ready_services = f"{len(ready)}/{len(services)}"
    parts: list[api.ServiceStatus | api.JobStatus] = [*services, *jobs]
    failed_services = [s for s in services if s.phase == "Degraded"]
    failed_jobs = [j for j in jobs if j.phase == "Failed"]
    failed: list[api.ServiceStatus | api.JobStatus] = [*failed_services, *failed_jobs]
    waiting = [p for p in parts if p.phase == "Waiting"]
    not_ready = [p for p in parts if p.phase not in ("Ready", "Succeeded", "Scheduled")]
    details = "; ".join(f"{p.name}: {p.message or p.phase}" for p in not_ready)
    rows: dict[str, Row]
    if failure is not None:
        phase: api.Phase = "Degraded"
        reason = "RolledBack" if failure.action == "RolledBack" else "RolloutHeld"
        message = failure_message(failure)
        rows = {
            "ready": ("False", reason, message),
            "progressing": ("False", reason, message),
            "degraded": ("True", reason, message),
            "stalled": ("True", reason, message),
        }
    elif failed:
        held = [p.name for p in waiting if set(p.waiting_for or ()) & {f.name for f in failed}]
        message = "; ".join(f"{p.name}: {p.message}" for p in failed)
        if held:
            message += f"; holding {', '.join(held)}"
        # A service's failed rollout says more about the app than a job's failed run; a failed run alone is
        # JobFailed (issue 16's rollback must tell them apart: a failed job rolled nothing out).
        reason = "RolloutFailed" if failed_services else "JobFailed"
        phase = "Degraded"
        rows = {
            "ready": ("False", reason, details),
            "progressing": ("False", reason, message),
            "degraded": ("True", reason, message),
            "stalled": ("True", reason, message),
        }
    elif not not_ready:
        phase = "Ready"
        message = f"{ready_services} services ready"
        if jobs:
            message += f", {len(jobs)} job{'s' if len(jobs) > 1 else ''} done"
        rows = {
            "ready": ("True", "AllServicesReady", message),
            "progressing": ("False", "RolloutComplete", message),
            "degraded": _AS_EXPECTED,
            "stalled": _AS_EXPECTED,
        }
    else:
        phase = "Pending" if all(p.phase in ("Pending", "Waiting") for p in parts) else "Progressing"
        reason = "WaitingForDependencies" if waiting else "RollingOut"
        rows = {
            "ready": ("False", "ServicesNotReady", details),
            "progressing": ("True", reason, details),
            "degraded": _AS_EXPECTED,
            "stalled": _AS_EXPECTED,
        }
    return api.MicroserviceAppStatus(
        observed_generation=_generation(app),
        phase=phase,
        ready_services=ready_services,
        conditions=_conditions(app, previous, timestamp or now(), **rows),
        services=list(services),
        jobs=list(jobs) or None,
        last_good_revision=last_good,
        failed_generation=failure.generation if failure else None,
        rollout_failure=failure,
    )


def revision_text(revision: api.RevisionRef | None) -> str:
    if revision is None:
        return "the last revision"
    return f"revision {revision.revision} (generation {revision.generation})"


def failure_message(failure: api.RolloutFailure) -> str:
    """The conditions' message for a failed rollout acted on: the cause, then what was done."""
    cause = f"{failure.service}: {failure.cause}"
    if failure.action == "Held":
        return f"{cause}; held at generation {failure.generation}: nothing rolls back or further until the spec or its config changes"
    to = revision_text(failure.revision)
    if failure.returned is None:
        return f"{cause}; rolling back to {to}"
    return f"{cause}; rolled back {', '.join(failure.returned) or 'nothing'} to {to}"


def to_dict(status: api.MicroserviceAppStatus) -> dict[str, Any]:
    """The status as it is written to the API server (camelCase, no empty fields)."""
    return status.model_dump(by_alias=True, exclude_none=True)


def own(status: Mapping[str, Any] | None) -> dict[str, Any]:
    """The status as passes compare it: without kopf's fields and the settled mark."""
    return {key: value for key, value in (status or {}).items() if key not in _UNCOMPARED}


def changed(previous: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Whether `new` (a to_dict result) differs from the app's current .status (ignoring kopf's fields)."""
    return own(previous) != own(new)


def status_patch(previous: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch of .status that turns `previous` into `new`: fields gone from `new` are set to
    null; kopf's fields and the settled mark are left alone."""
    patch: dict[str, Any] = {key: None for key in own(previous) if key not in new}
    patch.update(new)
    return patch
