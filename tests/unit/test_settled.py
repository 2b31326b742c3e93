"""The safety pass skips an app its last pass left settled while the app and its children are unchanged
(settled.py), and still puts back a child deleted during a watch gap (children.py, `disagreeing`)."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest

from maestro.api import models as api
from maestro.controller.execute import Outcome
from maestro.render import kinds
from maestro.runtime import children, settled
from maestro.runtime import operator as operator_module
from maestro.runtime.operator import Operator
from maestro.runtime.settings import Settings

from .helpers import Listed
from .test_children import APP_UID, deployment

SHOP: dict[str, Any] = {
    "apiVersion": api.API_VERSION,
    "kind": api.KIND,
    "metadata": {
        "name": "shop",
        "namespace": "ns",
        "uid": APP_UID,
        "resourceVersion": "100",
        "generation": 1,
    },
    "spec": {"services": [{"name": "web", "image": "web:1"}]},
}


class Cluster:
    """What the safety pass lists, and the passes it asks for."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, op: Operator) -> None:
        self.apps: list[dict[str, Any]] = [copy.deepcopy(SHOP)]
        self.deployments: list[dict[str, Any]] = [deployment()]
        self.passes: list[tuple[str, bool]] = []
        self.app_listings: list[str] = []
        monkeypatch.setattr(operator_module.kube, "list_pages", self.list_pages)
        monkeypatch.setattr(op, "request", self.request)

    def list_pages(self, kind: str, *_: object, metadata_only: bool = False, **__: object) -> Listed:
        if kind == api.KIND:
            self.app_listings.append("metadata" if metadata_only else "whole")
            # What the API server answers for PartialObjectMetadata: the metadata alone.
            return Listed(
                kind, [{"metadata": a["metadata"]} for a in self.apps] if metadata_only else self.apps
            )
        return Listed(kind, self.deployments if kind == "Deployment" else [], "50")

    def request(self, app: dict[str, Any], *, live: bool = False, urgent: bool = False) -> None:
        self.passes.append((app["metadata"]["name"], live))


def settled_operator(monkeypatch: pytest.MonkeyPatch, phase: str = "Ready", **spec: Any) -> Operator:
    """An operator whose last pass over `shop` ended in `phase`, with the app and its Deployment cached."""
    op = Operator(Settings(namespaces=("ns",)))
    app = copy.deepcopy(SHOP)
    app["spec"].update(spec)
    op.apps.record(app)
    op.children.record(deployment())
    monkeypatch.setattr(operator_module.reconcile, "reconcile", lambda app, stores: Outcome(phase=phase))
    op.run_pass({"metadata": {"name": "shop", "namespace": "ns", "uid": APP_UID}})
    return op


def test_an_unchanged_settled_app_gets_no_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    op = settled_operator(monkeypatch)
    cluster = Cluster(monkeypatch, op)
    op.safety_pass()
    assert cluster.passes == []
    assert cluster.app_listings == ["metadata"]  # no spec or status: their JSON was the idle cost


def test_a_changed_app_gets_a_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    op = settled_operator(monkeypatch)
    cluster = Cluster(monkeypatch, op)
    cluster.apps[0]["metadata"]["resourceVersion"] = "120"  # written meanwhile: its event missed
    op.safety_pass()
    assert cluster.passes == [("shop", False)]


def test_a_child_changed_in_the_index_gets_a_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    op = settled_operator(monkeypatch)
    cluster = Cluster(monkeypatch, op)
    edited = deployment(version=40)
    edited["spec"]["replicas"] = 5
    op.children.record(edited)
    cluster.deployments = [edited]
    op.safety_pass()
    assert cluster.passes == [("shop", False)]


def test_a_child_deleted_during_a_watch_gap_gets_a_live_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    op = settled_operator(monkeypatch)
    cluster = Cluster(monkeypatch, op)
    cluster.deployments = []  # gone from the API server, still in the index: its DELETED event was lost
    op.safety_pass()
    assert cluster.passes == [("shop", True)]


@pytest.mark.parametrize("phase", ["Progressing", "Degraded", "Invalid"])
def test_an_app_left_unsettled_gets_a_pass_every_time(monkeypatch: pytest.MonkeyPatch, phase: str) -> None:
    op = settled_operator(monkeypatch, phase=phase)
    cluster = Cluster(monkeypatch, op)
    op.safety_pass()
    op.safety_pass()
    assert cluster.passes == [("shop", False), ("shop", False)]


def test_an_app_reading_config_sources_gets_a_pass_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # A ConfigMap's change missed by its watch is in no fingerprint: only a pass reads it.
    op = settled_operator(monkeypatch, defaults={"configFrom": [{"configMap": "settings"}]})
    cluster = Cluster(monkeypatch, op)
    op.safety_pass()
    assert cluster.passes == [("shop", False)]


def test_a_failed_pass_unsettles_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    op = settled_operator(monkeypatch)

    def fails(app: object, stores: object) -> Outcome:
        raise ConnectionRefusedError("the API server is restarting")

    monkeypatch.setattr(operator_module.reconcile, "reconcile", fails)
    with pytest.raises(ConnectionRefusedError):
        op.run_pass({"metadata": {"name": "shop", "namespace": "ns", "uid": APP_UID}})
    cluster = Cluster(monkeypatch, op)
    op.safety_pass()
    assert cluster.passes == [("shop", False)]


def test_seen_compares_whole_and_an_unknown_version_is_a_change() -> None:
    apps = settled.SettledApps()
    apps.settle("a", settled.Seen(7, 1))
    assert apps.unchanged("a", settled.Seen(7, 1))
    assert not apps.unchanged("a", settled.Seen(8, 1)) and not apps.unchanged("a", settled.Seen(7, 2))
    assert not apps.unchanged("b", settled.Seen(7, 1))
    apps.settle("c", settled.Seen(None, 1))
    assert not apps.unchanged("c", settled.Seen(None, 1))
    apps.retain(["a"])
    assert len(apps) == 1 and apps.unchanged("a", settled.Seen(7, 1))


def test_the_fingerprint_ignores_what_a_pass_does_not_read_and_sees_the_rest() -> None:
    index = children.ChildIndex()
    index.record(deployment())
    before = index.fingerprint(APP_UID)
    noise = deployment(version=11)  # a new version, nothing a pass reads changed (controller/projection.py)
    noise["metadata"]["managedFields"].append({"manager": "other"})
    noise["status"]["conditions"][1]["message"] = 'ReplicaSet "shop-web-2" is progressing.'
    index.record(noise)
    assert index.fingerprint(APP_UID) == before
    edited = deployment(version=12)
    edited["spec"]["replicas"] = 5
    index.record(edited)
    assert index.fingerprint(APP_UID) != before
    index.discard(edited)
    assert index.fingerprint(APP_UID) == children.ChildIndex().fingerprint("nobody")


class Watches:
    """Stands for the child watches: only their gap count."""

    gaps = 0

    def stop(self) -> None:
        pass


def watched_operator(
    monkeypatch: pytest.MonkeyPatch, safety_full_every: int
) -> tuple[Operator, Cluster, Watches]:
    """A settled operator listing the children every `safety_full_every` safety passes, its cluster, and its
    child watches (their gap count)."""
    op = settled_operator(monkeypatch)
    op.settings = Settings(namespaces=("ns",), safety_full_every=safety_full_every)
    cluster = Cluster(monkeypatch, op)
    watches = Watches()
    monkeypatch.setattr(op, "_child_watches", watches)
    return op, cluster, watches


def children_listings(monkeypatch: pytest.MonkeyPatch, cluster: Cluster) -> list[str]:
    """The child kinds the safety passes list, as they come (one entry per kind listed)."""
    listed: list[str] = []
    list_pages = cluster.list_pages

    def counting(kind: str, *args: object, **kwargs: object) -> Listed:
        if kind in kinds.WATCHED:
            listed.append(kind)
        return list_pages(kind, *args, **kwargs)

    monkeypatch.setattr(operator_module.kube, "list_pages", counting)
    return listed


def test_every_child_kind_is_listed_after_a_watch_gap_and_each_in_its_turn_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    op, cluster, watches = watched_operator(monkeypatch, safety_full_every=3)
    listed = children_listings(monkeypatch, cluster)
    cluster.deployments = []  # deleted, the event lost: only a listing of the children tells
    op.safety_pass()  # the first: every kind listed
    assert cluster.passes == [("shop", True)] and sorted(listed) == sorted(kinds.WATCHED)
    op.children.discard(deployment())  # as the live pass would have (it found no Deployment)
    listed.clear()
    per_pass = []
    for _ in range(3):
        op.safety_pass()
        per_pass.append(len(listed) - sum(per_pass))
    assert sorted(listed) == sorted(kinds.WATCHED), "no gap: each kind once in three passes"
    assert all(0 < count < len(kinds.WATCHED) for count in per_pass), "spread over the passes"
    listed.clear()
    watches.gaps += 1  # a stream broke: whatever it lost, the next safety pass finds
    op.children.record(deployment())
    op.safety_pass()
    assert sorted(listed) == sorted(kinds.WATCHED) and cluster.passes[-1] == ("shop", True)


def test_a_deployment_lost_without_a_gap_is_found_when_its_kind_comes_round(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    op, cluster, _ = watched_operator(monkeypatch, safety_full_every=3)
    op.safety_pass()  # every kind listed: in agreement
    assert cluster.passes == []
    cluster.deployments = []  # deleted, the event lost, no watch gap
    for _ in range(3):
        op.safety_pass()
    assert cluster.passes == [("shop", True)], "within three passes, once"


def test_the_first_safety_pass_after_a_start_lists_only_the_kinds_whose_turn_it_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    op, cluster, watches = watched_operator(monkeypatch, safety_full_every=10)

    class StartedWatches(Watches):
        def __init__(self, *_: object) -> None:
            pass

        def list(self) -> None:  # the start's own listing of every child (and of the apps)
            pass

        def follow(self) -> None:
            pass

    monkeypatch.setattr(operator_module, "KindWatches", StartedWatches)
    asyncio.run(op.start())
    assert isinstance(op._child_watches, StartedWatches)
    monkeypatch.setattr(op, "_child_watches", watches)
    listed = children_listings(monkeypatch, cluster)
    op.safety_pass()
    assert 0 < len(listed) < len(kinds.WATCHED), "the start has just listed them: the kinds whose turn it is"
    listed.clear()
    watches.gaps += 1
    op.safety_pass()
    assert sorted(listed) == sorted(kinds.WATCHED), "a gap since the start: every kind"


def test_a_children_listing_that_failed_is_due_again(monkeypatch: pytest.MonkeyPatch) -> None:
    op, cluster, _ = watched_operator(monkeypatch, safety_full_every=10)
    list_pages = cluster.list_pages
    attempts: list[str] = []

    def fails_once(kind: str, *args: object, **kwargs: object) -> Listed:
        if kind == "Deployment":
            attempts.append(kind)
            if len(attempts) == 1:
                raise ConnectionRefusedError("the API server is restarting")
        return list_pages(kind, *args, **kwargs)

    monkeypatch.setattr(operator_module.kube, "list_pages", fails_once)
    with pytest.raises(ConnectionRefusedError):
        op.safety_pass()
    op.safety_pass()
    assert len(attempts) == 2, "listed again at the next pass, not ten passes later"


def app_watched_operator(monkeypatch: pytest.MonkeyPatch) -> tuple[Operator, Cluster, Watches]:
    """A settled operator with app watches (their gap count) since a start, the apps listed every 3 passes."""
    op, cluster, _ = watched_operator(monkeypatch, safety_full_every=3)
    app_watches = Watches()
    monkeypatch.setattr(op, "_app_watches", app_watches)
    op._app_gaps_listed = 0  # as `start` leaves it: its own listing of the apps, before any gap
    return op, cluster, app_watches


def test_the_safety_pass_takes_the_apps_from_their_cache_and_lists_them_in_their_turn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    op, cluster, _ = app_watched_operator(monkeypatch)
    changed = copy.deepcopy(SHOP)
    changed["metadata"]["resourceVersion"] = "101"
    op.apps.record(changed)  # what the watch delivered: a new version, so not settled with what it has now
    op.safety_pass()
    assert cluster.app_listings == [] and cluster.passes == [("shop", False)]
    op.safety_pass()
    assert cluster.app_listings == [], "not listed without a gap"
    op.safety_pass()
    assert cluster.app_listings == ["metadata"], "every third pass"


def test_after_a_gap_of_the_app_watch_the_apps_are_listed_and_one_deleted_meanwhile_is_forgotten(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    op, cluster, app_watches = app_watched_operator(monkeypatch)
    other = copy.deepcopy(SHOP)
    other["metadata"] |= {"name": "gone", "uid": "gone-uid"}
    op.apps.record(other)  # deleted while the stream was down: no DELETED event
    app_watches.gaps += 1
    op.safety_pass()
    assert cluster.app_listings == ["metadata"]
    assert op.apps.get("ns", "gone") is None and ("gone", False) not in cluster.passes
    op.safety_pass()
    assert cluster.app_listings == ["metadata"], "listed once for that gap"


def test_an_apps_listing_that_failed_is_due_again(monkeypatch: pytest.MonkeyPatch) -> None:
    op, cluster, _ = app_watched_operator(monkeypatch)
    list_pages = cluster.list_pages

    def fails_once(kind: str, *args: object, **kwargs: object) -> Listed:
        if kind == api.KIND and not cluster.app_listings:
            cluster.app_listings.append("failed")
            raise ConnectionRefusedError("the API server is restarting")
        return list_pages(kind, *args, **kwargs)

    monkeypatch.setattr(operator_module.kube, "list_pages", fails_once)
    op.safety_pass()
    op.safety_pass()
    with pytest.raises(ConnectionRefusedError):
        op.safety_pass()  # its turn
    op.safety_pass()
    assert cluster.app_listings == ["failed", "metadata"], "listed at the next pass, not three passes later"
