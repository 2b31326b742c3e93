"""The settled mark (settledmark.py): what it covers, that a settled pass writes it with its status and any other
status write removes it, and that at a start only an app whose mark matches what is listed gets no pass
(Operator.settled_at_start, Operator.on_app)."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import pathlib
import threading
from collections.abc import Callable
from typing import Any

import pytest

import maestro
from maestro.api import models as api
from maestro.controller import settledmark, status
from maestro.controller.stores import Stores
from maestro.render import kinds
from maestro.runtime import childwatch, codedigest
from maestro.runtime.codedigest import code_digest
from maestro.runtime.operator import Operator
from maestro.runtime.settings import Settings
from maestro.runtime.settled import Seen
from tests.unit import fake_api
from tests.unit.helpers import Listed, svc
from tests.unit.helpers import app as make_app
from tests.unit.test_execute import KEY, reconcile_pass
from tests.unit.test_rollback import SHOP, change, ready, v2

# --------------------------------------------------------------------------------------------- the digest, pure


def deployment(name: str = "shop-web", uid: str = "d1", **status_fields: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": "prod",
            "uid": uid,
            "resourceVersion": "10",
            "generation": 1,
            "labels": {"app.kubernetes.io/instance": "shop"},
            "managedFields": [{"manager": "maestro", "time": "t0"}],
        },
        "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "web", "image": "web:1"}]}}},
        "status": {"observedGeneration": 1, "readyReplicas": 1, **status_fields},
    }


def service(name: str = "shop-web", uid: str = "s1") -> dict[str, Any]:
    return {
        "kind": "Service",
        "metadata": {"name": name, "namespace": "prod", "uid": uid, "resourceVersion": "11"},
        "spec": {"ports": [{"port": 80}]},
    }


APP = {
    "metadata": {
        "name": "shop",
        "uid": "a1",
        "generation": 2,
        "labels": {"team": "x"},
        "resourceVersion": "9",
    },
    "spec": {"services": [{"name": "web", "image": "web:1"}]},
}
STATUS = {"observedGeneration": 2, "phase": "Ready", "readyServices": "1/1"}


def digest(
    app: dict[str, Any] = APP,
    status_: dict[str, Any] = STATUS,
    children: list[dict[str, Any]] | None = None,
    code: str = "code-1",
) -> str:
    return settledmark.digest(code, app, status_, [deployment(), service()] if children is None else children)


def test_what_a_pass_does_not_read_leaves_the_mark_alone() -> None:
    noisy = deployment()
    noisy["metadata"]["resourceVersion"] = "99"
    noisy["metadata"]["managedFields"] = [{"manager": "kube-controller-manager", "time": "t1"}]
    noisy["status"]["conditions"] = [
        {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "lastUpdateTime": "t1"}
    ]
    relisted_app = copy.deepcopy(APP) | {"metadata": {**APP["metadata"], "resourceVersion": "12"}}
    assert digest(relisted_app, children=[service(), noisy]) == digest()  # any order, any version


def edited(path: Callable[[dict[str, Any], dict[str, Any], list[dict[str, Any]]], object]) -> str:
    app, status_, children = copy.deepcopy(APP), dict(STATUS), [deployment(), service()]
    path(app, status_, children)
    return digest(app, status_, children)


CHANGES: dict[str, Callable[[], str]] = {
    "the operator's code": lambda: digest(code="code-2"),
    "the generation": lambda: edited(lambda a, s, c: a["metadata"].update(generation=3)),
    "a label": lambda: edited(lambda a, s, c: a["metadata"]["labels"].update(team="y")),
    "an annotation": lambda: edited(lambda a, s, c: a["metadata"].update(annotations={"note": "n"})),
    # The API server raises the generation with every change of the spec: the mark reads the spec through it.
    "the spec": lambda: edited(
        lambda a, s, c: (a["spec"]["services"][0].update(image="web:2"), a["metadata"].update(generation=3))
    ),
    "the status": lambda: edited(lambda a, s, c: s.update(readyServices="0/1")),
    "a child's spec": lambda: edited(lambda a, s, c: c[0]["spec"].update(replicas=3)),
    "a child's readiness": lambda: edited(lambda a, s, c: c[0]["status"].update(readyReplicas=0)),
    "a child deleted": lambda: edited(lambda a, s, c: c.pop()),
    "a child made again": lambda: edited(lambda a, s, c: c[1]["metadata"].update(uid="s2")),
}


@pytest.mark.parametrize("change_", list(CHANGES))
def test_anything_a_pass_reads_changes_the_mark(change_: str) -> None:
    assert CHANGES[change_]() != digest()


# ------------------------------------------------------------------------------ written by passes, read at start


def marked_cluster(
    monkeypatch: pytest.MonkeyPatch, app: dict[str, Any] = SHOP
) -> tuple[fake_api.FakeApi, Stores]:
    server = fake_api.FakeApi([copy.deepcopy(app)]).install(monkeypatch)
    stores = dataclasses.replace(fake_api.stores(server), code_digest=code_digest())
    return server, stores


def restarted(server: fake_api.FakeApi) -> Operator:
    """A new operator whose child index was filled by a listing of the fake API server's children."""
    operator = Operator(Settings(workers=0))
    for (kind, _, _), obj in server.objects.items():
        if kind in kinds.KIND_NAMES:  # what the child watches list
            operator.on_child(None, copy.deepcopy(obj))
    return operator


def mark(server: fake_api.FakeApi) -> Any:
    return server.objects[KEY]["status"].get(settledmark.FIELD)


def test_a_settled_pass_writes_its_mark_with_the_status(monkeypatch: pytest.MonkeyPatch) -> None:
    server, stores = marked_cluster(monkeypatch)
    ready(server, stores)
    assert mark(server)
    ready_app = server.objects[KEY]
    children = stores.children.children(ready_app["metadata"]["uid"]).values()
    written = mark(server)
    assert written == settledmark.digest(
        code_digest() or "", ready_app, status.own(ready_app["status"]), children
    )
    # A start hashes the child index's bytes as they are, without decoding the children: the same mark.
    states = restarted(server).children.states(ready_app["metadata"]["uid"])
    assert len(states) == len(children) > 0
    assert written == settledmark.digest_of_states(
        code_digest() or "", ready_app, status.own(ready_app["status"]), states
    )
    reconcile_pass(server, stores)  # the same app and children: nothing written, the mark stays
    assert [verb for verb, *_ in server.requests] == []
    assert mark(server) == written


def test_a_start_skips_only_the_apps_whose_mark_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    server, stores = marked_cluster(monkeypatch)
    ready(server, stores)
    listed = copy.deepcopy(server.objects[KEY])
    operator = restarted(server)
    assert operator.settled_at_start(listed)
    assert len(operator.settled) == 1  # and the safety pass skips it while it stays so
    # Through the apps' first listing: no pass queued for it.
    operator.on_app(None, listed)
    assert operator.passes.depth() == 0


EDITS_WHILE_DOWN: dict[str, Callable[[fake_api.FakeApi], object]] = {
    "a child deleted": lambda s: s.objects.pop(("Deployment", "prod", "shop-web")),
    "a child edited": lambda s: s.objects[("Service", "prod", "shop-web")]["spec"].update(type="NodePort"),
    "the status edited": lambda s: s.objects[KEY]["status"].update(readyServices="0/2"),
    "the spec changed": lambda s: s.objects[KEY]["metadata"].update(generation=2),
}


@pytest.mark.parametrize("edit", list(EDITS_WHILE_DOWN))
def test_an_app_changed_while_the_operator_was_down_gets_its_pass(
    monkeypatch: pytest.MonkeyPatch, edit: str
) -> None:
    server, stores = marked_cluster(monkeypatch)
    ready(server, stores)
    EDITS_WHILE_DOWN[edit](server)
    listed = copy.deepcopy(server.objects[KEY])
    operator = restarted(server)
    operator.on_app(None, listed)
    assert operator.passes.depth() == 1
    assert len(operator.settled) == 0


def test_an_operator_of_other_code_trusts_no_mark_and_writes_its_own_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, stores = marked_cluster(monkeypatch)
    ready(server, stores)
    old_mark = mark(server)
    upgraded = restarted(server)
    upgraded.stores = dataclasses.replace(upgraded.stores, code_digest="another-version")
    assert not upgraded.settled_at_start(copy.deepcopy(server.objects[KEY]))
    stores = dataclasses.replace(stores, code_digest="another-version")
    outcome = reconcile_pass(server, stores)  # its resume pass: the status as it was, the mark alone written
    assert (outcome.status_written, outcome.mark_written) == (False, True)
    assert [verb for verb, *_ in server.requests] == ["patch-status"] and server.events == []
    assert mark(server).startswith("another-version-") and mark(server) != old_mark
    assert settledmark.same_code(mark(server), settledmark.digest("another-version", {}, {}, []))
    assert not settledmark.same_code(old_mark, mark(server)) and not settledmark.same_code(None, mark(server))
    outcome = reconcile_pass(server, stores)
    assert (outcome.mark_written, server.requests) == (False, [])  # once


def test_a_status_write_of_an_unsettled_pass_removes_the_mark(monkeypatch: pytest.MonkeyPatch) -> None:
    server, stores = marked_cluster(monkeypatch)
    ready(server, stores)
    assert mark(server)
    change(server, stores, svc("catalog"), v2("web", dependsOn=["catalog"]))
    reconcile_pass(server, stores)  # applies web v2: Progressing, written without a mark
    assert server.objects[KEY]["status"]["phase"] == "Progressing"
    assert mark(server) is None
    assert not restarted(server).settled_at_start(copy.deepcopy(server.objects[KEY]))


def test_an_app_reading_config_is_never_marked(monkeypatch: pytest.MonkeyPatch) -> None:
    configured = make_app(svc("catalog", configFrom=[{"configMap": "settings"}]), svc("web"))
    settings = {
        "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "prod"},
        "data": {"a": "1"},
    }
    server, stores = marked_cluster(monkeypatch, configured)
    server.objects[("ConfigMap", "prod", "settings")] = settings
    ready(server, stores, configured)
    assert mark(server) is None  # the ConfigMap's data is not in the digest: its pass runs at every start


def test_without_a_code_digest_no_mark_is_written(monkeypatch: pytest.MonkeyPatch) -> None:
    server = fake_api.FakeApi([copy.deepcopy(SHOP)]).install(monkeypatch)
    ready(server, fake_api.stores(server))
    assert mark(server) is None


def test_the_code_digest_follows_every_source_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    package = tmp_path / "maestro"
    (package / "render").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "render" / "pod.py").write_text("IMAGE = 1\n")
    monkeypatch.setattr(maestro, "__file__", str(package / "__init__.py"))
    first = codedigest.code_digest.__wrapped__()
    assert first is not None and first == codedigest.code_digest.__wrapped__()
    (package / "render" / "pod.py").write_text("IMAGE = 2\n")
    assert codedigest.code_digest.__wrapped__() not in (None, first)
    for source in package.rglob("*.py"):
        source.unlink()
    assert codedigest.code_digest.__wrapped__() is None  # no sources to read: no mark written or trusted


def listed_before_the_children(
    monkeypatch: pytest.MonkeyPatch, version: str
) -> tuple[Operator, dict[str, Any]]:
    """A restarted operator whose apps' listing returned the settled app (at `version`: the fake API server
    keeps none) while its children's listing was under way; and that app as listed."""
    server, stores = marked_cluster(monkeypatch)
    ready(server, stores)
    listed = copy.deepcopy(server.objects[KEY])
    listed["metadata"]["resourceVersion"] = version
    operator = restarted(server)
    operator._listed_early = []  # the children's listing under way
    operator.on_app(None, listed)
    return operator, listed


def test_an_app_listed_before_the_children_is_decided_on_the_version_the_cache_holds_then(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Its part of the mark is computed as it is listed; the status edited since (a newer version in the app
    # cache by the time the children are listed) is hashed as it is now, not as it was listed.
    operator, listed = listed_before_the_children(monkeypatch, "5")
    newer = copy.deepcopy(listed)
    newer["status"]["readyServices"] = "0/2"
    newer["metadata"]["resourceVersion"] = "6"
    operator.apps.observe("MODIFIED", newer)
    operator._resume_listed_early()
    assert operator.passes.depth() == 1 and len(operator.settled) == 0


def test_an_app_listed_before_the_children_at_the_version_still_cached_is_decided_without_decoding_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What the decision needs was taken of the app as it was listed: its version still cached, the app is not
    # read from the cache again (5000 decodes at a start). A mark that does not match still gets its pass.
    operator, listed = listed_before_the_children(monkeypatch, "7")
    unmarked = copy.deepcopy(listed)
    unmarked["metadata"] |= {"name": "other", "uid": "other-uid"}
    operator.on_app(None, unmarked)

    def get(namespace: str, name: str) -> None:
        raise AssertionError(f"{namespace}/{name} decoded again")

    monkeypatch.setattr(operator.apps, "get", get)
    operator._resume_listed_early()
    assert len(operator.settled) == 1 and operator.passes.depth() == 1
    uid = listed["metadata"]["uid"]
    assert operator.settled.unchanged(uid, Seen(7, operator.children.fingerprint(uid)))


def test_a_start_begun_before_kopf_decides_no_app_until_started(monkeypatch: pytest.MonkeyPatch) -> None:
    # `maestro run` begins the listings before it imports kopf: no pass and no decision until kopf's startup
    # handler starts the operator, as its logging is set up only then.
    server, stores = marked_cluster(monkeypatch)
    ready(server, stores)
    listed_app = copy.deepcopy(server.objects[KEY])
    children_listed = threading.Event()

    def list_pages(kind: str, namespace: str | None) -> Listed:
        if kind == api.KIND:
            return Listed(kind, [copy.deepcopy(listed_app)])
        children_listed.wait(5)
        return Listed(kind, [copy.deepcopy(obj) for (k, _, _), obj in server.objects.items() if k == kind])

    monkeypatch.setattr(childwatch.kube, "list_pages", list_pages)
    monkeypatch.setattr(childwatch.KindWatch, "follow", lambda self: None)
    operator = Operator(Settings(namespaces=("prod",), workers=0))
    operator.begin()
    assert operator._listings is not None
    operator._listings[1].result(timeout=5)  # the apps are listed, the children not yet
    assert [early.name for early in operator._listed_early or []] == ["shop"]
    children_listed.set()
    operator._listings[0].result(timeout=5)
    assert len(operator.settled) == 0 and operator.passes.depth() == 0, "nothing decided before the start"

    async def start() -> None:
        await operator.start()
        operator.stop()

    asyncio.run(start())
    assert len(operator.settled) == 1 and operator.passes.depth() == 0, "settled as its mark says"
    assert operator._listed_early is None  # an app listed from now on is decided at once
