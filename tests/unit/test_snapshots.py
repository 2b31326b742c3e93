"""Config snapshots (`configFrom[].snapshot`, issue 16): the copies, what the pods load, which copies are kept,
and a rollback that restores the old configuration; whole passes against the in-memory API server."""

from __future__ import annotations

from typing import Any

import pytest

from maestro import render
from maestro.render import snapshot
from tests.unit import fake_api
from tests.unit.helpers import app as make_app
from tests.unit.helpers import svc
from tests.unit.test_execute import KEY, make_available, reconcile_pass, start_rollout
from tests.unit.test_rollback import ready, status


def settings(data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "prod"},
        "data": data,
    }


WEB = svc("web", configFrom=[{"configMap": "settings", "snapshot": True}])


def loaded(server: fake_api.FakeApi) -> str:
    """The name of the ConfigMap web's pods load."""
    deployment = server.objects[("Deployment", "prod", "shop-web")]
    return deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["configMapRef"]["name"]  # type: ignore[no-any-return]


def copies(server: fake_api.FakeApi) -> list[str]:
    return sorted(
        name
        for (kind, _, name), obj in server.objects.items()
        if kind == "ConfigMap" and snapshot.SNAPSHOT_LABEL in (obj["metadata"].get("labels") or {})
    )


def cluster(monkeypatch: pytest.MonkeyPatch, **spec: Any) -> tuple[fake_api.FakeApi, Any]:
    server = fake_api.FakeApi([make_app(WEB, **spec), settings({"MODE": "fast"})]).install(monkeypatch)
    return server, fake_api.stores(server)


def test_the_copy_is_named_by_its_data_and_made_before_the_pods_that_load_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, stores = cluster(monkeypatch)
    reconcile_pass(server, stores)
    name = snapshot.snapshot_name("settings", settings({"MODE": "fast"}))
    assert server.requests[:3] == [
        ("get", "ConfigMap", "settings"),
        ("create", "ConfigMap", name),
        ("apply", "Deployment", "shop-web"),
    ]
    made = server.objects[("ConfigMap", "prod", name)]
    assert (made["immutable"], made["data"]) == (True, {"MODE": "fast"})
    assert made["metadata"]["ownerReferences"][0]["uid"] == "0000-1111"
    assert loaded(server) == name

    make_available(server, stores, "shop-web")
    reconcile_pass(server, stores)  # Ready, recorded
    reconcile_pass(server, stores)
    assert server.requests == [
        ("get", "ConfigMap", "settings")
    ]  # steady: the source is read, nothing written


def test_the_copies_of_kept_revisions_stay_and_the_others_go(monkeypatch: pytest.MonkeyPatch) -> None:
    server, stores = cluster(monkeypatch, revisionHistoryLimit=2)
    ready(server, stores, server.objects[KEY])
    names = [loaded(server)]
    for mode in ("slow", "off"):
        server.objects[("ConfigMap", "prod", "settings")]["data"] = {"MODE": mode}
        ready(server, stores, server.objects[KEY])
        names.append(loaded(server))
    assert len(set(names)) == 3
    assert copies(server) == sorted(names[1:])  # revision 1 fell beyond the limit, and its copy with it


def test_a_config_change_that_fails_is_rolled_back_with_its_old_configuration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, stores = cluster(monkeypatch)
    ready(server, stores, server.objects[KEY])
    good = loaded(server)
    server.objects[("ConfigMap", "prod", "settings")]["data"] = {"MODE": "broken"}
    reconcile_pass(server, stores)
    assert loaded(server) != good
    start_rollout(server, stores, "shop-web", restarts=3)
    reconcile_pass(server, stores)  # decided
    reconcile_pass(server, stores)  # rolled back
    assert status(server)["rolloutFailure"]["returned"] == ["web"]
    assert loaded(server) == good
    assert server.objects[("ConfigMap", "prod", good)]["data"] == {"MODE": "fast"}
    # The source still says "broken": the failed rendering is not tried again until it changes.
    make_available(server, stores, "shop-web")
    reconcile_pass(server, stores)
    assert loaded(server) == good
    server.objects[("ConfigMap", "prod", "settings")]["data"] = {"MODE": "fixed"}
    reconcile_pass(server, stores)
    assert server.objects[("ConfigMap", "prod", loaded(server))]["data"] == {"MODE": "fixed"}


def test_without_snapshot_the_pods_load_the_source_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    plain = svc("web", configFrom=[{"configMap": "settings"}])
    server = fake_api.FakeApi([make_app(plain), settings({"MODE": "fast"})]).install(monkeypatch)
    reconcile_pass(server, fake_api.stores(server))
    assert loaded(server) == "settings"
    assert copies(server) == []


def test_a_missing_source_has_no_copy_and_the_pods_name_the_source() -> None:
    app = make_app(svc("web", configFrom=[{"configMap": "settings", "snapshot": True, "optional": True}]))
    (deployment, *_) = render.render_app(app, snapshots={})
    assert deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"] == [
        {"configMapRef": {"name": "settings", "optional": True}}
    ]


def test_unused_copies_are_those_no_kept_revision_nor_the_current_rendering_loads() -> None:
    def pods_loading(name: str) -> dict[str, Any]:
        container = {"name": "web", "envFrom": [{"configMapRef": {"name": name}}]}
        return {"kind": "Deployment", "spec": {"template": {"spec": {"containers": [container]}}}}

    def copy_named(name: str) -> dict[str, Any]:
        return {"kind": "ConfigMap", "metadata": {"name": name}}

    revision = {"data": {"services": {"web": {"children": [pods_loading("settings-a")]}}}}
    unused = snapshot.unused_copies(
        [copy_named("settings-a"), copy_named("settings-b"), copy_named("settings-c")],
        [revision],
        [[pods_loading("settings-c")]],
    )
    assert unused == [("ConfigMap", "settings-b")]
