"""status.py: the app's status from observed Deployments, as plain dicts; and reconcile's pure helpers."""

from __future__ import annotations

import copy
from typing import Any

from maestro import render
from maestro.api import models as api
from maestro.controller import compare, execute, status
from maestro.kube import client as kube
from maestro.render import confighash

from .helpers import app, svc

T0 = "2026-01-01T00:00:00Z"
T1 = "2026-01-01T00:05:00Z"


def deployment(
    *,
    replicas: int = 2,
    ready: int = 2,
    updated: int = 2,
    available: int | None = None,
    total: int | None = None,
    generation: int = 3,
    observed: int = 3,
    conditions: list[dict[str, Any]] | None = None,
    image: str = "registry.example.com/web:1.0.0",
) -> dict[str, Any]:
    available = ready if available is None else available
    if conditions is None:
        conditions = [
            {"type": "Available", "status": "True" if available >= replicas else "False"},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
        ]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "shop-web", "generation": generation},
        "spec": {
            "replicas": replicas,
            "template": {"spec": {"containers": [{"name": "web", "image": image}]}},
        },
        "status": {
            "observedGeneration": observed,
            "replicas": replicas if total is None else total,
            "readyReplicas": ready,
            "updatedReplicas": updated,
            "availableReplicas": available,
            "conditions": conditions,
        },
    }


def merged(obj: dict[str, Any]) -> dict[str, api.ServiceSpec]:
    spec = api.validate_app(obj["metadata"]["name"], obj["spec"])
    return {s.name: s for s in render.effective_services(spec)}


def conditions(result: api.MicroserviceAppStatus) -> dict[str, api.Condition]:
    return {c.type: c for c in result.conditions or []}


# ------------------------------------------------------------------------------------------ deployments


def test_available_needs_current_generation_and_all_pods_updated() -> None:
    assert status.deployment_available(deployment())
    assert not status.deployment_available(None)
    assert not status.deployment_available(deployment(observed=2))  # controller has not seen the new spec
    assert not status.deployment_available(deployment(updated=1))  # rollout halfway
    assert not status.deployment_available(deployment(total=3))  # an old pod is still there
    assert not status.deployment_available(deployment(ready=1))


def test_failure_from_progress_deadline_or_replica_failure() -> None:
    stuck = deployment(
        ready=0,
        conditions=[
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": "slow",
            }
        ],
    )
    assert status.deployment_failure(stuck) == "slow"
    quota = deployment(conditions=[{"type": "ReplicaFailure", "status": "True", "message": "quota"}])
    assert status.deployment_failure(quota) == "quota"
    assert status.deployment_failure(deployment()) is None
    # A new spec (e.g. the fix) not yet seen by the Deployment controller: the old failure does not count.
    stuck["metadata"]["generation"] = 4
    assert status.deployment_failure(stuck) is None


# --------------------------------------------------------------------------------------------- services


def test_service_phases() -> None:
    obj = app(svc("web"))
    web = merged(obj)["web"]
    ready = status.service_status(obj, web, deployment())
    assert ready.phase == "Ready"
    assert (ready.replicas, ready.ready_replicas, ready.updated_replicas) == (2, 2, 2)
    assert ready.image == "registry.example.com/web:1.0.0"
    assert ready.endpoint == "http://shop-web.prod.svc:80"
    assert status.service_status(obj, web, None).phase == "Pending"
    rolling = status.service_status(obj, web, deployment(ready=1, updated=1))
    assert rolling.phase == "Progressing"
    assert rolling.message == "1/2 replicas ready, 1 updated"
    waiting = status.service_status(obj, web, None, waiting_for=["db"])
    assert (waiting.phase, waiting.waiting_for) == ("Waiting", ["db"])
    assert waiting.message == "waiting for db to be available"
    deadline = [
        {"type": "Available", "status": "True"},
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "slow"},
    ]
    # Stuck: the new pod is not available, the old one still runs.
    stuck = status.service_status(
        obj, web, deployment(replicas=1, ready=1, updated=1, total=2, conditions=deadline)
    )
    assert (stuck.phase, stuck.message) == ("Degraded", "slow")
    # Rolled back to the available ReplicaSet: complete, though the controller's deadline reason lingers.
    back = status.service_status(obj, web, deployment(replicas=1, ready=1, updated=1, conditions=deadline))
    assert back.phase == "Ready"


# -------------------------------------------------------------------------------------------------- app


def _services(phases: dict[str, str]) -> list[api.ServiceStatus]:
    return [
        api.ServiceStatus(
            name=name,
            phase=phase,
            waiting_for=["db"] if phase == "Waiting" else None,
            message=None if phase == "Ready" else f"{name} is {phase}",
        )
        for name, phase in phases.items()
    ]


def test_all_ready() -> None:
    obj = app(svc("web"), svc("db"))
    result = status.app_status(obj, _services({"db": "Ready", "web": "Ready"}), timestamp=T0)
    assert result.phase == "Ready"
    assert result.ready_services == "2/2"
    assert result.observed_generation == 1
    got = conditions(result)
    assert (got["Ready"].status, got["Ready"].reason) == ("True", "AllServicesReady")
    assert (got["Progressing"].status, got["Degraded"].status) == ("False", "False")
    assert all(c.observed_generation == 1 and c.last_transition_time == T0 for c in got.values())


def test_waiting_is_pending_then_progressing() -> None:
    obj = app(svc("web"), svc("db"))
    pending = status.app_status(obj, _services({"db": "Pending", "web": "Waiting"}), timestamp=T0)
    assert pending.phase == "Pending"
    assert conditions(pending)["Progressing"].reason == "WaitingForDependencies"
    rolling = status.app_status(obj, _services({"db": "Progressing", "web": "Waiting"}), timestamp=T0)
    assert rolling.phase == "Progressing"
    ready = conditions(rolling)["Ready"]
    assert (ready.status, ready.reason) == ("False", "ServicesNotReady")
    assert "web: web is Waiting" in ready.message


def test_failed_dependency_degrades_and_names_who_it_holds() -> None:
    obj = app(svc("web"), svc("db"))
    result = status.app_status(obj, _services({"db": "Degraded", "web": "Waiting"}), timestamp=T0)
    assert result.phase == "Degraded"
    degraded = conditions(result)["Degraded"]
    assert (degraded.status, degraded.reason) == ("True", "RolloutFailed")
    assert degraded.message == "db: db is Degraded; holding web"


def test_name_conflict_is_invalid() -> None:
    obj = app(svc("web"))
    errors = [("spec.services[0].name", "Deployment shop-web already exists")]
    result = status.invalid_status(obj, errors, reason="NameConflict", timestamp=T0)
    assert result.phase == "Invalid"
    assert {c.reason for c in conditions(result).values()} == {"NameConflict"}


def test_invalid_names_the_field() -> None:
    obj = app(svc("web"))
    errors = [("spec.services[0].dependsOn", "dependency cycle: web -> web")]
    result = status.invalid_status(obj, errors, timestamp=T0)
    assert result.phase == "Invalid"
    ready = conditions(result)["Ready"]
    assert (ready.status, ready.reason) == ("False", "InvalidSpec")
    assert ready.message == "spec.services[0].dependsOn: dependency cycle: web -> web"


def _kstatus(result: api.MicroserviceAppStatus) -> tuple[str, str]:
    got = conditions(result)
    return got["Reconciling"].status, got["Stalled"].status


def test_kstatus_conditions_follow_the_phase() -> None:
    # kstatus (Flux, Helm 4 --wait): Reconciling=True is InProgress, Stalled=True is Failed.
    obj = app(svc("web"), svc("db"))
    ready = status.app_status(obj, _services({"db": "Ready", "web": "Ready"}), timestamp=T0)
    assert _kstatus(ready) == ("False", "False")
    rolling = status.app_status(obj, _services({"db": "Progressing", "web": "Waiting"}), timestamp=T0)
    assert _kstatus(rolling) == ("True", "False")
    assert conditions(rolling)["Reconciling"].reason == "WaitingForDependencies"
    failed = status.app_status(obj, _services({"db": "Degraded", "web": "Waiting"}), timestamp=T0)
    assert _kstatus(failed) == ("False", "True")
    assert conditions(failed)["Stalled"].message == "db: db is Degraded; holding web"
    conflict = status.invalid_status(obj, [("spec.services[1].name", "taken")], reason="NameConflict")
    assert _kstatus(conflict) == ("False", "True")
    invalid = status.invalid_status(obj, [("spec.services", "bad")], timestamp=T0)
    assert _kstatus(invalid) == ("False", "True")
    stalled = conditions(invalid)["Stalled"]
    assert (stalled.reason, stalled.message, stalled.observed_generation) == (
        "InvalidSpec",
        "spec.services: bad",
        1,
    )
    for result in (ready, rolling, failed, conflict, invalid):
        assert [c.type for c in result.conditions or []] == list(status.CONDITION_TYPES)


def test_transition_time_kept_while_status_unchanged() -> None:
    obj = app(svc("web"))
    first = status.to_dict(status.app_status(obj, _services({"web": "Progressing"}), timestamp=T0))
    # Same statuses later (even with another message): times are kept and nothing is to be written.
    again = status.to_dict(
        status.app_status(obj, _services({"web": "Progressing"}), previous=first, timestamp=T1)
    )
    assert again == first
    assert not status.changed(first, again)
    # Ready flips: its time moves; Degraded stays False and keeps its time.
    done = status.app_status(obj, _services({"web": "Ready"}), previous=first, timestamp=T1)
    got = conditions(done)
    assert got["Ready"].last_transition_time == T1
    assert got["Progressing"].last_transition_time == T1
    assert got["Degraded"].last_transition_time == T0
    assert status.changed(first, status.to_dict(done))


def test_changed_ignores_kopf_and_patch_clears_removed_fields() -> None:
    new = {"phase": "Invalid", "observedGeneration": 2}
    old = {"phase": "Invalid", "observedGeneration": 2, "kopf": {"progress": {}}}
    assert not status.changed(old, new)
    before = {"phase": "Ready", "services": [{"name": "web"}], "kopf": {"x": 1}}
    assert status.status_patch(before, new) == {"services": None, "phase": "Invalid", "observedGeneration": 2}


def test_dump_is_camel_case() -> None:
    obj = app(svc("web"))
    web = merged(obj)["web"]
    result = status.app_status(obj, [status.service_status(obj, web, deployment())], timestamp=T0)
    dumped = status.to_dict(result)
    assert dumped["readyServices"] == "1/1"
    assert dumped["services"][0]["readyReplicas"] == 2
    assert dumped["conditions"][0]["lastTransitionTime"] == T0


# ------------------------------------------------------------------------------------ reconcile helpers


def test_applied_hash_tells_changed_children() -> None:
    obj = app(svc("web"))
    child = render.render_app(obj)[0]
    stamped = compare.with_hash(child)
    assert compare.up_to_date(stamped, stamped)
    assert not compare.up_to_date(stamped, None)
    other = dict(child, spec={**child["spec"], "replicas": 5})
    assert not compare.up_to_date(compare.with_hash(other), stamped)
    assert compare.child_hash(child) == compare.child_hash(dict(child))


def test_referenced_sources() -> None:
    obj = app(
        svc("web", configFrom=[{"configMap": "web-config"}]),
        svc("db", configFrom=[{"secret": "db-pass"}]),
        defaults={"configFrom": [{"configMap": "common"}]},
    )
    assert confighash.app_sources(obj) == {"configmap/web-config", "secret/db-pass", "configmap/common"}


def test_referenced_sources_include_mounted_ones() -> None:
    projected = {
        "sources": [{"configMap": {"name": "ca"}}, {"secret": {"name": "token"}}, {"downwardAPI": {}}]
    }
    obj = app(
        svc(
            "web", volumes=[{"name": "a", "configMap": {"name": "web-files"}}, {"name": "b", "emptyDir": {}}]
        ),
        svc("db", volumes=[{"name": "tls", "secret": {"secretName": "db-tls"}}]),
        defaults={"volumes": [{"name": "p", "projected": projected}]},
    )
    assert confighash.app_sources(obj) == {
        "configmap/web-files",
        "secret/db-tls",
        "configmap/ca",
        "secret/token",
    }


def test_in_place_means_nothing_to_write() -> None:
    obj = app(svc("web"))
    desired = compare.with_hash(render.render_app(obj)[0])
    observed = copy.deepcopy(desired)
    observed["metadata"]["resourceVersion"] = "7"  # the server's additions do not count
    observed["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"] = "/dev/termination-log"
    observed["status"] = {"replicas": 1}
    assert compare.in_place(desired, observed)
    edited = copy.deepcopy(observed)
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = "evil:1"  # an edit by hand
    assert not compare.in_place(desired, edited)
    removed = copy.deepcopy(observed)
    del removed["metadata"]["labels"]["app.kubernetes.io/part-of"]  # a field removed by hand
    assert not compare.in_place(desired, removed)
    longer = copy.deepcopy(observed)
    longer["spec"]["template"]["spec"]["containers"].append({"name": "sidecar"})
    assert not compare.in_place(desired, longer)
    assert not compare.in_place(desired, None)


def test_resource_quantities_compare_by_value() -> None:
    # The API server stores "0.5" as "500m" and 1 as "1": such a child is in place, not re-applied each pass.
    observed = {"resources": {"requests": {"memory": "500m", "cpu": "1"}, "limits": {"memory": "1Gi"}}}
    desired = {"resources": {"requests": {"memory": "0.5", "cpu": 1}, "limits": {"memory": "1024Mi"}}}
    assert compare.contains(observed, desired)
    assert not compare.contains(observed, {"resources": {"requests": {"memory": "0.6"}}})
    # Only under requests/limits: elsewhere a string is a string.
    assert not compare.contains(
        {"env": [{"name": "A", "value": "500m"}]}, {"env": [{"name": "A", "value": "0.5"}]}
    )


def test_zero_values_the_api_server_leaves_out_count_as_present() -> None:
    # Go's omitempty: the API server stores no `readOnly: false`, no `value: ""`.
    desired = {
        "volumeMounts": [{"name": "data", "mountPath": "/d", "readOnly": False}],
        "env": [{"name": "A", "value": ""}],
    }
    observed = {"volumeMounts": [{"name": "data", "mountPath": "/d"}], "env": [{"name": "A"}]}
    assert compare.contains(observed, desired)
    # A value that is not the zero value must be there.
    assert not compare.contains(
        observed, {"volumeMounts": [{"name": "data", "mountPath": "/d", "readOnly": True}]}
    )
    assert not compare.contains({"env": [{"name": "A"}]}, {"env": [{"name": "A", "value": "x"}]})


def test_children_the_api_server_cannot_type_are_refusals_not_outages() -> None:
    # Both are 500s from server-side apply for a child it cannot type; retrying cannot help (found by fuzzing).
    typed = "failed to create typed patch object (ns/a; apps/v1, Kind=Deployment): .spec.x: expected map"
    convert = (
        "failed to convert new object (ns/a; apps/v1, Kind=Deployment) to proper version: unable to convert "
        "unstructured object to apps/v1, Kind=Deployment: quantities must match the regular expression"
    )
    assert execute.refused(kube.ApiError(500, "InternalError", typed))
    assert execute.refused(kube.ApiError(500, "InternalError", convert))
    assert execute.refused(kube.ApiError(422, "Invalid", "spec.replicas: Invalid value"))
    # A plain server fault is retried.
    assert not execute.refused(kube.ApiError(500, "InternalError", "etcdserver: request timed out"))
    assert not execute.refused(kube.ApiError(503, "ServiceUnavailable", ""))
