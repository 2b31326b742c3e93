"""execute.py carries a plan out against an in-memory API server (fake_api.py): the requests it sends, in order,
what it records in the child index, and what it never lets fail a pass."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from maestro.controller import execute, reconcile, rollout
from maestro.controller.stores import Stores
from maestro.kube import client as kube
from tests.unit import fake_api
from tests.unit.helpers import app as make_app
from tests.unit.helpers import svc

CHAIN = make_app(svc("api", dependsOn=["db"]), svc("db"))
KEY = ("MicroserviceApp", "prod", "shop")


def cluster(monkeypatch: pytest.MonkeyPatch, app: dict[str, Any]) -> tuple[fake_api.FakeApi, Stores]:
    server = fake_api.FakeApi([app]).install(monkeypatch)
    return server, fake_api.stores(server)


def reconcile_pass(server: fake_api.FakeApi, stores: Stores, *, live: bool = False) -> execute.Outcome:
    server.requests.clear()
    server.events.clear()
    return reconcile.reconcile({**server.objects[KEY], "live": live}, stores)


def make_available(server: fake_api.FakeApi, stores: Stores, name: str) -> None:
    """The Deployment controller's work: the Deployment Available at its generation (seen by its watch)."""
    deployment = server.objects[("Deployment", "prod", name)]
    deployment["status"] = {
        "observedGeneration": deployment["metadata"]["generation"],
        "replicas": 1,
        "readyReplicas": 1,
        "updatedReplicas": 1,
        "availableReplicas": 1,
        "conditions": [{"type": "Available", "status": "True"}],
    }
    stores.children.record(copy.deepcopy(deployment))


def test_a_new_app_applies_what_is_not_held_back_then_writes_the_status_then_tells(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, stores = cluster(monkeypatch, CHAIN)
    outcome = reconcile_pass(server, stores)
    assert server.requests == [
        ("apply", "Deployment", "shop-db"),
        ("apply", "Service", "shop-db"),
        ("apply", "NetworkPolicy", "shop-db"),
        ("patch-status", "MicroserviceApp", "shop"),
        ("event", "Event", "Created"),
        ("event", "Event", "WaitingForDependency"),
    ]
    assert (outcome.phase, outcome.applied, outcome.writes, outcome.status_written) == (
        "Progressing",
        ["db"],
        3,
        True,
    )
    assert set(stores.children.children("0000-1111")) == {
        ("Deployment", "shop-db"),
        ("Service", "shop-db"),
        ("NetworkPolicy", "shop-db"),
    }
    assert server.objects[KEY]["status"]["services"][0]["phase"] == "Waiting"


def test_the_dependent_is_applied_once_its_dependency_is_available(monkeypatch: pytest.MonkeyPatch) -> None:
    server, stores = cluster(monkeypatch, CHAIN)
    reconcile_pass(server, stores)
    make_available(server, stores, "shop-db")
    reconcile_pass(server, stores)
    assert server.requests[:2] == [("apply", "Deployment", "shop-api"), ("apply", "Service", "shop-api")]


def test_a_pass_that_finds_everything_in_place_sends_no_request(monkeypatch: pytest.MonkeyPatch) -> None:
    server, stores = cluster(monkeypatch, CHAIN)
    reconcile_pass(server, stores)
    make_available(server, stores, "shop-db")
    reconcile_pass(server, stores)
    make_available(server, stores, "shop-api")
    outcome = reconcile_pass(server, stores)
    assert ("patch-status", "MicroserviceApp", "shop") in server.requests  # Ready
    assert ("event", "Event", "Ready") in server.requests
    # Ready at a new rendering: recorded as the app's first revision (revisions.py), named in the status.
    assert (
        "create",
        "ControllerRevision",
        server.objects[KEY]["status"]["lastGoodRevision"]["name"],
    ) in server.requests
    outcome = reconcile_pass(server, stores)
    assert server.requests == []
    assert (outcome.phase, outcome.writes, outcome.status_written) == ("Ready", 0, False)


def test_the_status_is_written_only_when_it_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    server, stores = cluster(monkeypatch, CHAIN)
    reconcile_pass(server, stores)
    outcome = reconcile_pass(server, stores)  # db not available yet: the same status
    assert server.requests == []
    assert not outcome.status_written


def test_a_removed_service_is_pruned_by_uid(monkeypatch: pytest.MonkeyPatch) -> None:
    server, stores = cluster(monkeypatch, make_app(svc("web"), svc("gone")))
    reconcile_pass(server, stores)
    uids = [
        server.objects[(kind, "prod", "shop-gone")]["metadata"]["uid"]
        for kind in ("Deployment", "Service", "NetworkPolicy")
    ]
    server.objects[KEY]["spec"]["services"] = [svc("web")]
    server.objects[KEY]["metadata"]["generation"] = 2
    stores.apps.record(server.objects[KEY])  # the app's watch event
    outcome = reconcile_pass(server, stores)
    assert [r for r in server.requests if r[0] == "delete"] == [
        ("delete", "Deployment", "shop-gone"),
        ("delete", "Service", "shop-gone"),
        ("delete", "NetworkPolicy", "shop-gone"),
    ]
    assert server.deleted_uids == uids  # the precondition: only these very objects
    assert outcome.pruned == ["Deployment/shop-gone", "Service/shop-gone", "NetworkPolicy/shop-gone"]
    assert set(stores.children.children("0000-1111")) == {
        ("Deployment", "shop-web"),
        ("Service", "shop-web"),
        ("NetworkPolicy", "shop-web"),
    }
    assert ("event", "Event", "Pruned") in server.requests


def test_an_event_that_cannot_be_posted_does_not_fail_the_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    server, stores = cluster(monkeypatch, CHAIN)
    server.events_fail = True
    outcome = reconcile_pass(server, stores)
    assert outcome.status_written and outcome.applied == ["db"]
    assert ("event", "Event", "Created") in server.requests


def test_a_name_held_by_another_object_is_looked_up_and_nothing_is_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "shop-db", "namespace": "prod", "uid": "x"},
    }
    server = fake_api.FakeApi([CHAIN, other]).install(monkeypatch)
    stores = fake_api.stores(server)
    outcome = reconcile_pass(server, stores)
    assert server.requests == [
        ("get", "Service", "shop-db"),
        ("patch-status", "MicroserviceApp", "shop"),
        ("event", "Event", "NameConflict"),
    ]
    assert outcome.phase == "Invalid"
    assert server.objects[KEY]["status"]["conditions"][0]["reason"] == "NameConflict"


def test_a_dry_run_refusal_writes_nothing_but_the_status(monkeypatch: pytest.MonkeyPatch) -> None:
    server, stores = cluster(monkeypatch, make_app(svc("web", readinessProbe={"tcpSocket": True}), svc("db")))
    server.refuse[("Deployment", "shop-web")] = "cannot unmarshal bool"
    outcome = reconcile_pass(server, stores)
    assert server.verbs() == ["dry-run", "patch-status", "event"]
    assert outcome.phase == "Invalid"
    assert server.objects[KEY]["status"]["conditions"][0]["reason"] == "ChildRejected"


def test_a_refusal_of_a_real_apply_makes_the_app_invalid_after_what_was_applied(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, stores = cluster(monkeypatch, make_app(svc("web"), svc("db")))
    server.refuse[("Deployment", "shop-db")] = "forbidden by a webhook"
    outcome = reconcile_pass(server, stores)
    assert server.verbs() == ["apply"] * 4 + ["patch-status", "event"]
    assert outcome.phase == "Invalid"
    assert ("Deployment", "shop-web") in stores.children.children("0000-1111")  # recorded as applied
    assert "spec.services[1]" in server.objects[KEY]["status"]["conditions"][0]["message"]


def test_a_live_pass_lists_the_children_and_corrects_the_index(monkeypatch: pytest.MonkeyPatch) -> None:
    server, stores = cluster(monkeypatch, make_app(svc("web")))
    reconcile_pass(server, stores)
    stores.children.replace("0000-1111", [])  # the index lost them
    outcome = reconcile_pass(server, stores, live=True)
    assert server.verbs()[0] == "get" and set(server.verbs()[1:]) == {"list"}
    assert outcome.writes == 0
    assert set(stores.children.children("0000-1111")) == {
        ("Deployment", "shop-web"),
        ("Service", "shop-web"),
        ("NetworkPolicy", "shop-web"),
    }


def start_rollout(server: fake_api.FakeApi, stores: Stores, name: str, restarts: int) -> None:
    """The Deployment controller's work on a new rendering: the Deployment seen, not Available, its new
    ReplicaSet made, and one pod of it that has restarted `restarts` times (created a minute ago)."""
    deployment = server.objects[("Deployment", "prod", name)]
    deployment["status"] = {
        "observedGeneration": deployment["metadata"]["generation"],
        "replicas": 1,
        "updatedReplicas": 1,
        "conditions": [{"type": "Available", "status": "False"}],
    }
    stores.children.record(copy.deepcopy(deployment))
    selector = deployment["spec"]["selector"]["matchLabels"]
    template = copy.deepcopy(deployment["spec"]["template"])
    template["metadata"]["labels"]["pod-template-hash"] = "new"
    owner = {"kind": "Deployment", "uid": deployment["metadata"]["uid"], "controller": True}
    labels = {**selector, "pod-template-hash": "new"}
    meta = {"namespace": "prod", "labels": labels, "ownerReferences": [owner]}
    server.objects[("ReplicaSet", "prod", f"{name}-new")] = {
        "kind": "ReplicaSet",
        "metadata": {"name": f"{name}-new", **meta},
        "spec": {"template": template},
    }
    born = (datetime.now(UTC) - timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%SZ")
    server.objects[("Pod", "prod", f"{name}-new-1")] = {
        "kind": "Pod",
        "metadata": {
            "name": f"{name}-new-1",
            "namespace": "prod",
            "labels": labels,
            "creationTimestamp": born,
        },
        "status": {
            "containerStatuses": [
                {"name": "db", "restartCount": restarts, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
            ]
        },
    }


def test_a_rollout_in_progress_reads_its_new_pods_and_comes_back_until_they_decide(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, stores = cluster(monkeypatch, CHAIN)
    reconcile_pass(server, stores)
    start_rollout(server, stores, "shop-db", restarts=1)
    outcome = reconcile_pass(server, stores)
    assert server.requests[:2] == [("list", "ReplicaSet", ""), ("list", "Pod", "")]
    assert (outcome.phase, outcome.recheck_after) == ("Progressing", rollout.RECHECK_SECONDS)

    start_rollout(server, stores, "shop-db", restarts=3)
    outcome = reconcile_pass(server, stores)
    assert server.requests[:3] == [
        ("list", "ReplicaSet", ""),
        ("list", "Pod", ""),
        ("patch-status", "MicroserviceApp", "shop"),
    ]
    assert (outcome.phase, outcome.recheck_after) == ("Degraded", None)
    degraded = [c for c in server.objects[KEY]["status"]["conditions"] if c["type"] == "Degraded"]
    assert degraded[0]["message"] == "db: 3 restarts in 60 s, CrashLoopBackOff; holding api"
    assert ("Warning", "RolloutFailed", degraded[0]["message"]) in server.events

    make_available(server, stores, "shop-db")  # rolled out after all: steady, no pod is read
    reconcile_pass(server, stores)
    assert ("list", "Pod", "") not in server.requests


def test_a_role_without_the_rollout_listings_leaves_the_rollout_to_its_deployment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, stores = cluster(monkeypatch, CHAIN)
    reconcile_pass(server, stores)
    start_rollout(server, stores, "shop-db", restarts=3)

    def forbidden(namespace: str, selector: object) -> list[dict[str, Any]]:
        raise kube.ApiError(
            403, "Forbidden", 'replicasets.apps is forbidden: cannot list resource "replicasets"'
        )

    monkeypatch.setattr(kube, "replica_sets", forbidden)
    outcome = reconcile_pass(server, stores)
    assert outcome.phase == "Progressing"  # not Degraded, and the pass did not fail
