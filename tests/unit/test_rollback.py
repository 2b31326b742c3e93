"""Revisions and automatic rollback (issue 16) through whole passes against the in-memory API server
(fake_api.py), and the pure parts (revisions.py, rollback.py) on their own."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from prometheus_client import REGISTRY

from maestro.controller import revisions, rollback
from maestro.controller.stores import Stores
from tests.unit import fake_api
from tests.unit.helpers import app as make_app
from tests.unit.helpers import svc
from tests.unit.test_execute import KEY, cluster, make_available, reconcile_pass, start_rollout

SHOP = make_app(svc("catalog"), svc("web", dependsOn=["catalog"]))


def status(server: fake_api.FakeApi) -> dict[str, Any]:
    return server.objects[KEY]["status"]  # type: ignore[no-any-return]


def condition(server: fake_api.FakeApi, kind: str) -> dict[str, Any]:
    return next(c for c in status(server)["conditions"] if c["type"] == kind)


def image(server: fake_api.FakeApi, service: str) -> str:
    deployment = server.objects[("Deployment", "prod", f"shop-{service}")]
    return deployment["spec"]["template"]["spec"]["containers"][0]["image"]  # type: ignore[no-any-return]


def ready(server: fake_api.FakeApi, stores: Stores, app: dict[str, Any] = SHOP) -> None:
    """Passes until the app is Ready: every service made Available as its turn comes."""
    for _ in range(4):
        reconcile_pass(server, stores)
        for service in app["spec"]["services"]:
            if ("Deployment", "prod", f"shop-{service['name']}") in server.objects:
                make_available(server, stores, f"shop-{service['name']}")
    reconcile_pass(server, stores)
    assert status(server)["phase"] == "Ready"


def change(server: fake_api.FakeApi, stores: Stores, *services: dict[str, Any], **spec: Any) -> None:
    """A new generation of the app with these services (as `kubectl apply` would)."""
    app = server.objects[KEY]
    app["spec"] = {**app["spec"], "services": [copy.deepcopy(s) for s in services], **spec}
    app["metadata"]["generation"] += 1
    stores.apps.record(app)


def v2(name: str, **fields: Any) -> dict[str, Any]:
    return svc(name, image=f"registry.example.com/{name}:2.0.0", **fields)


def test_a_ready_app_is_recorded_once_per_rendering(monkeypatch: pytest.MonkeyPatch) -> None:
    server, stores = cluster(monkeypatch, SHOP)
    ready(server, stores)
    first = status(server)["lastGoodRevision"]
    assert (first["revision"], first["generation"]) == (1, 1)
    recorded = server.objects[("ControllerRevision", "prod", first["name"])]
    assert recorded["metadata"]["ownerReferences"][0]["uid"] == "0000-1111"
    assert recorded["data"]["services"]["web"]["images"] == ["registry.example.com/web:1.0.0"]
    assert [c["kind"] for c in recorded["data"]["services"]["web"]["children"]] == [
        "Deployment",
        "Service",
        "NetworkPolicy",
    ]

    reconcile_pass(server, stores)  # steady: no request at all
    assert server.requests == []

    change(server, stores, svc("catalog"), v2("web", dependsOn=["catalog"]))
    ready(server, stores)
    second = status(server)["lastGoodRevision"]
    assert (second["revision"], second["generation"]) == (2, 2)
    assert second["name"] != first["name"]

    # Back to the first rendering (a revert in Git): its revision takes the newest number, nothing is created.
    change(server, stores, svc("catalog"), svc("web", dependsOn=["catalog"]))
    ready(server, stores)
    assert status(server)["lastGoodRevision"] == {"revision": 3, "name": first["name"], "generation": 3}
    assert server.objects[("ControllerRevision", "prod", first["name"])]["revision"] == 3
    assert len([k for k in server.objects if k[0] == "ControllerRevision"]) == 2


def test_revisions_beyond_the_history_limit_are_deleted(monkeypatch: pytest.MonkeyPatch) -> None:
    server, stores = cluster(monkeypatch, make_app(svc("web"), revisionHistoryLimit=2))
    for version in ("1.0.0", "2.0.0", "3.0.0"):
        change(
            server, stores, svc("web", image=f"registry.example.com/web:{version}"), revisionHistoryLimit=2
        )
        ready(server, stores, server.objects[KEY])
    kept = sorted(obj["revision"] for key, obj in server.objects.items() if key[0] == "ControllerRevision")
    assert kept == [2, 3]


def test_a_crash_looping_release_is_decided_first_then_rolled_back(monkeypatch: pytest.MonkeyPatch) -> None:
    server, stores = cluster(monkeypatch, SHOP)
    ready(server, stores)
    good = status(server)["lastGoodRevision"]
    change(server, stores, v2("catalog"), svc("web", dependsOn=["catalog"]))
    reconcile_pass(server, stores)
    assert image(server, "catalog") == "registry.example.com/catalog:2.0.0"
    start_rollout(server, stores, "shop-catalog", restarts=3)
    labels = {"reason": "CrashLoopBackOff", "action": "RolledBack"}
    counted = REGISTRY.get_sample_value("maestro_rollout_failures_total", labels) or 0.0

    # The decision goes to the status before anything is written: a pass cut short after it completes it.
    outcome = reconcile_pass(server, stores)
    assert [r for r in server.requests if r[0] in ("apply", "patch-status")] == [
        ("patch-status", "MicroserviceApp", "shop")
    ]
    failure = status(server)["rolloutFailure"]
    assert (failure["action"], failure["service"], failure["generation"]) == ("RolledBack", "catalog", 2)
    assert failure["revision"] == good
    assert "returned" not in failure
    assert failure["reached"] == ["catalog", "web"]
    assert status(server)["failedGeneration"] == 2
    assert [e[1] for e in server.events] == ["RolloutFailed"]
    assert outcome.recheck_after is not None and outcome.recheck_after < 1
    assert REGISTRY.get_sample_value("maestro_rollout_failures_total", labels) == counted + 1

    outcome = reconcile_pass(server, stores)
    assert ("get", "ControllerRevision", good["name"]) in server.requests
    assert ("apply", "Deployment", "shop-catalog") in server.requests
    assert image(server, "catalog") == "registry.example.com/catalog:1.0.0"
    assert status(server)["rolloutFailure"]["returned"] == ["catalog"]
    assert [e[1] for e in server.events] == ["Updated", "RolledBack"]
    assert server.events[1][2] == (
        "rolled back catalog to revision 1 (generation 1): catalog: 3 restarts in 60 s, CrashLoopBackOff"
    )
    ready_condition = condition(server, "Ready")
    assert (ready_condition["status"], ready_condition["reason"]) == ("False", "RolledBack")
    assert status(server)["phase"] == "Degraded"
    assert server.objects[KEY]["spec"]["services"][0]["image"] == "registry.example.com/catalog:2.0.0"

    # Rolled back and steady: the services are Ready at the old revision, the app stays Degraded.
    make_available(server, stores, "shop-catalog")
    reconcile_pass(server, stores)
    reconcile_pass(server, stores)
    assert [r for r in server.requests if r[0] != "get"] == []
    assert status(server)["phase"] == "Degraded"
    assert status(server)["readyServices"] == "2/2"


def test_dependents_return_first_and_never_roll_forward_onto_a_rolled_back_dependency(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, stores = cluster(monkeypatch, SHOP)
    ready(server, stores)
    change(server, stores, v2("catalog"), v2("web", dependsOn=["catalog"]))
    reconcile_pass(server, stores)  # catalog v2
    make_available(server, stores, "shop-catalog")
    reconcile_pass(server, stores)  # web v2, once catalog v2 is Available
    assert image(server, "web") == "registry.example.com/web:2.0.0"
    start_rollout(server, stores, "shop-web", restarts=4)
    reconcile_pass(server, stores)  # decided
    reconcile_pass(server, stores)  # carried out
    applies = [r for r in server.requests if r[0] == "apply"]
    assert applies.index(("apply", "Deployment", "shop-web")) < applies.index(
        ("apply", "Deployment", "shop-catalog")
    )
    assert (image(server, "web"), image(server, "catalog")) == (
        "registry.example.com/web:1.0.0",
        "registry.example.com/catalog:1.0.0",
    )
    assert status(server)["rolloutFailure"]["returned"] == ["web", "catalog"]


def test_a_service_the_rollout_had_not_reached_stays_as_it_was(monkeypatch: pytest.MonkeyPatch) -> None:
    server, stores = cluster(monkeypatch, SHOP)
    ready(server, stores)
    change(server, stores, v2("catalog"), v2("web", dependsOn=["catalog"]))
    reconcile_pass(server, stores)  # catalog v2; web waits for it
    start_rollout(server, stores, "shop-catalog", restarts=3)
    reconcile_pass(server, stores)
    reconcile_pass(server, stores)
    assert ("apply", "Deployment", "shop-web") not in server.requests
    assert image(server, "web") == "registry.example.com/web:1.0.0"
    assert status(server)["rolloutFailure"]["returned"] == ["catalog"]


def test_hold_rolls_nothing_back_and_nothing_further(monkeypatch: pytest.MonkeyPatch) -> None:
    server, stores = cluster(monkeypatch, SHOP)
    ready(server, stores)
    hold = {"onFailure": "Hold"}
    change(server, stores, v2("catalog", rollout=hold), v2("web", dependsOn=["catalog"]))
    reconcile_pass(server, stores)
    start_rollout(server, stores, "shop-catalog", restarts=3)
    reconcile_pass(server, stores)
    assert status(server)["rolloutFailure"]["action"] == "Held"
    assert [e[1] for e in server.events] == ["RolloutFailed", "RolloutHeld"]
    make_available(server, stores, "shop-catalog")  # even once its pods recover: nothing rolls further
    for _ in range(2):
        reconcile_pass(server, stores)
        assert [r for r in server.requests if r[0] in ("apply", "delete")] == []
    assert image(server, "catalog") == "registry.example.com/catalog:2.0.0"
    assert image(server, "web") == "registry.example.com/web:1.0.0"
    assert condition(server, "Ready")["reason"] == "RolloutHeld"
    assert "held at generation 2" in condition(server, "Degraded")["message"]


def test_a_new_spec_after_a_rollback_rolls_out_normally(monkeypatch: pytest.MonkeyPatch) -> None:
    server, stores = cluster(monkeypatch, SHOP)
    ready(server, stores)
    change(server, stores, v2("catalog"), svc("web", dependsOn=["catalog"]))
    reconcile_pass(server, stores)
    start_rollout(server, stores, "shop-catalog", restarts=3)
    reconcile_pass(server, stores)
    reconcile_pass(server, stores)
    assert image(server, "catalog") == "registry.example.com/catalog:1.0.0"

    change(
        server,
        stores,
        svc("catalog", image="registry.example.com/catalog:2.0.1"),
        svc("web", dependsOn=["catalog"]),
    )
    reconcile_pass(server, stores)
    assert image(server, "catalog") == "registry.example.com/catalog:2.0.1"
    ready(server, stores, server.objects[KEY])
    assert "rolloutFailure" not in status(server)
    assert "failedGeneration" not in status(server)
    assert status(server)["lastGoodRevision"]["revision"] == 2


def test_without_a_ready_revision_a_failure_is_only_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    labels = {"reason": "CrashLoopBackOff", "action": "Reported"}
    counted = REGISTRY.get_sample_value("maestro_rollout_failures_total", labels) or 0.0
    server, stores = cluster(monkeypatch, SHOP)
    reconcile_pass(server, stores)
    start_rollout(server, stores, "shop-catalog", restarts=3)
    reconcile_pass(server, stores)
    reconcile_pass(server, stores)
    assert status(server)["phase"] == "Degraded"
    assert condition(server, "Degraded")["reason"] == "RolloutFailed"
    assert "rolloutFailure" not in status(server)
    assert REGISTRY.get_sample_value("maestro_rollout_failures_total", labels) == counted + 1  # once


def test_a_revision_deleted_by_hand_turns_the_rollback_into_a_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    server, stores = cluster(monkeypatch, SHOP)
    ready(server, stores)
    name = status(server)["lastGoodRevision"]["name"]
    change(server, stores, v2("catalog"), svc("web", dependsOn=["catalog"]))
    reconcile_pass(server, stores)
    start_rollout(server, stores, "shop-catalog", restarts=3)
    reconcile_pass(server, stores)
    del server.objects[("ControllerRevision", "prod", name)]
    reconcile_pass(server, stores)
    failure = status(server)["rolloutFailure"]
    assert failure["action"] == "Held"
    assert f"{name} no longer exists" in failure["cause"]
    assert image(server, "catalog") == "registry.example.com/catalog:2.0.0"


# ------------------------------------------------------------------------------------------------- pure parts


def revision_object(name: str, number: int) -> dict[str, Any]:
    return {"metadata": {"name": name}, "revision": number, "data": {}}


def test_recording_numbers_only_grow_and_keeps_the_newest() -> None:
    new = {"metadata": {"name": "shop-c"}, "data": {"generation": 7}, "revision": 0}
    step = revisions.recording(new, [revision_object("shop-a", 1), revision_object("shop-b", 2)], limit=2)
    assert step.create is not None and step.create["revision"] == 3
    assert (step.replace, step.delete, step.ref.revision) == (False, ("shop-a",), 3)

    again = revisions.recording(new, [revision_object("shop-c", 1), revision_object("shop-b", 2)], limit=10)
    assert again.create is not None and again.create["revision"] == 3
    assert (again.replace, again.delete) == (True, ())

    done = revisions.recording(new, [revision_object("shop-b", 2), revision_object("shop-c", 3)], limit=10)
    assert (done.create, done.replace, done.ref.revision) == (None, False, 3)


def test_the_rendering_hash_changes_with_any_child() -> None:
    one = {
        "web": [
            {
                "kind": "Deployment",
                "metadata": {"name": "w", "annotations": {"maestro.dev/applied-hash": "a"}},
            }
        ]
    }
    two = {
        "web": [
            {
                "kind": "Deployment",
                "metadata": {"name": "w", "annotations": {"maestro.dev/applied-hash": "b"}},
            }
        ]
    }
    assert revisions.rendering(one) == revisions.rendering(copy.deepcopy(one))
    assert revisions.rendering(one) != revisions.rendering(two)


def test_the_failed_rendering_is_not_decided_again_nor_rolled_back_to_itself() -> None:
    from maestro.api import models as api

    services = {"web": api.ServiceSpec.model_validate(svc("web"))}
    good = api.RevisionRef(revision=1, name="shop-abc", generation=1)
    assert rollback.decide(services, {"web": "crash"}, good, "abc", 2, "t") is None  # it *is* the good one
    decided = rollback.decide(services, {"web": "crash"}, good, "def", 2, "t")
    assert decided is not None and decided.action == "RolledBack"
    assert rollback.active({"rolloutFailure": decided.model_dump(by_alias=True)}, "def") == decided
    assert rollback.active({"rolloutFailure": decided.model_dump(by_alias=True)}, "xyz") is None


def test_history_lists_the_revisions_newest_first_after_the_failure_in_force() -> None:
    from maestro.cli import history

    def recorded(number: int, name: str, version: str) -> revisions.Revision:
        record = revisions.ServiceRecord((), "c0ffee", (f"registry.example.com/web:{version}",), "Rollback")
        return revisions.Revision(
            number, name, name[-3:], number, {}, {"web": record}, f"2026-12-0{number}T00:00:00Z"
        )

    app = {
        "status": {
            "lastGoodRevision": {"revision": 2, "name": "shop-bbb", "generation": 2},
            "rolloutFailure": {
                "action": "RolledBack",
                "service": "web",
                "cause": "3 restarts in 40 s, CrashLoopBackOff",
                "generation": 3,
                "revision": {"revision": 2, "name": "shop-bbb", "generation": 2},
            },
        }
    }
    table = history.format_table(
        history.history_table(app, [recorded(1, "shop-aaa", "1.0.0"), recorded(2, "shop-bbb", "2.0.0")])
    )
    assert table.splitlines() == [
        "REVISION   GENERATION   IMAGES                               CONFIG       READY AT               OUTCOME",
        "-          3            -                                    -            -                      "
        "Failed (web: 3 restarts in 40 s, CrashLoopBackOff); rolled back to 2",
        "2          2            web=registry.example.com/web:2.0.0   web=c0ffee   2026-12-02T00:00:00Z   Ready (returned to)",
        "1          1            web=registry.example.com/web:1.0.0   web=c0ffee   2026-12-01T00:00:00Z   Ready",
    ]


def test_a_failure_is_counted_by_what_showed_it() -> None:
    from maestro.controller import rollout

    assert (
        rollout.failure_reason("3 restarts in 40 s, CrashLoopBackOff (exit code 1): boom")
        == "CrashLoopBackOff"
    )
    assert rollout.failure_reason("ImagePullBackOff for 35 s: Back-off pulling image") == "ImagePullBackOff"
    assert rollout.failure_reason("ErrImagePull for 31 s: not found") == "ErrImagePull"
    assert rollout.failure_reason('ReplicaSet "x" has timed out progressing.') == "ProgressDeadlineExceeded"
    assert rollout.failure_reason("RunContainerError for 31 s") == "RunContainerError"
    assert (
        rollout.failure_reason("3 restarts in 37 s, Error (exit code 1): FAIL_AT_START") == "CrashLoopBackOff"
    )
    assert rollout.failure_reason("something new") == "Other"
