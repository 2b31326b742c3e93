"""The child index (children.py): which events start a pass, and that what a pass reads stays right."""

from __future__ import annotations

import copy
from typing import Any

from maestro.controller import compare, settledmark
from maestro.runtime import children

from .helpers import Listed

APP_UID = "app-1"
MANAGED = {"app.kubernetes.io/instance": "shop", "app.kubernetes.io/managed-by": "maestro"}


def deployment(uid: str = "u-1", version: int = 10, **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "shop-web",
            "namespace": "ns",
            "uid": uid,
            "generation": 2,
            "resourceVersion": str(version),
            "labels": MANAGED,
            "annotations": {"maestro.dev/applied-hash": "abc"},
            "ownerReferences": [
                {"kind": "MicroserviceApp", "name": "shop", "uid": APP_UID, "controller": True}
            ],
            "managedFields": [{"manager": "kube-controller-manager"}],
        },
        "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "web", "image": "web:1"}]}}},
        "status": {
            "observedGeneration": 2,
            "replicas": 2,
            "readyReplicas": 1,
            "conditions": [
                {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"},
                {
                    "type": "Progressing",
                    "status": "True",
                    "reason": "ReplicaSetUpdated",
                    "message": 'ReplicaSet "shop-web-1" is progressing.',
                    "lastUpdateTime": "2026-12-01T00:00:00Z",
                },
            ],
            **status,
        },
    }


def test_status_noise_of_a_rollout_starts_no_pass() -> None:
    index = children.ChildIndex()
    first = deployment()
    assert index.observe(None, first) is False  # the initial listing is remembered
    noise = copy.deepcopy(first)
    noise["metadata"]["resourceVersion"] = "11"
    noise["metadata"]["managedFields"].append({"manager": "other"})
    progressing = noise["status"]["conditions"][1]
    progressing["lastUpdateTime"] = "2026-12-01T00:00:05Z"
    progressing["message"] = 'ReplicaSet "shop-web-1" has successfully progressed.'
    progressing["reason"] = "NewReplicaSetAvailable"
    assert index.observe("MODIFIED", noise) is False


def test_what_a_pass_reads_starts_one() -> None:
    base = deployment()
    changes = {
        "ready count": lambda d: d["status"].update(readyReplicas=2),
        "available condition": lambda d: d["status"]["conditions"][0].update(status="True"),
        "observed generation": lambda d: d["status"].update(observedGeneration=3),
        "deadline exceeded": lambda d: d["status"]["conditions"][1].update(reason="ProgressDeadlineExceeded"),
        "spec edited by hand": lambda d: d["spec"].update(replicas=5),
        "annotation removed": lambda d: d["metadata"].update(annotations={}),
        "owner removed": lambda d: d["metadata"].update(ownerReferences=[]),
        "being deleted": lambda d: d["metadata"].update(deletionTimestamp="2026-12-01T00:00:09Z"),
    }
    for what, change in changes.items():
        index = children.ChildIndex()
        index.observe(None, base)
        changed = copy.deepcopy(base)
        changed["metadata"]["resourceVersion"] = "11"
        change(changed)
        assert index.observe("MODIFIED", changed) is True, what
        assert index.observe("MODIFIED", changed) is False, f"{what}, seen twice"


def test_status_of_other_kinds_is_not_read() -> None:
    index = children.ChildIndex()
    hpa = {
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "shop-api", "uid": "h", "generation": 1, "labels": MANAGED},
        "spec": {"maxReplicas": 4},
    }
    index.observe(None, hpa)
    updated = {**hpa, "status": {"currentReplicas": 3, "desiredReplicas": 4}}
    assert index.observe("MODIFIED", updated) is False


def test_deletion_starts_a_pass_and_forgets() -> None:
    index = children.ChildIndex()
    child = deployment()
    index.observe(None, child)
    assert len(index) == 1
    assert index.observe("DELETED", child) is True
    assert len(index) == 0
    assert index.children(APP_UID) == {}
    assert index.observe("ADDED", child) is True  # created again: a pass


def test_an_unknown_child_starts_a_pass() -> None:
    assert children.ChildIndex().observe("ADDED", deployment()) is True


def test_a_pass_reads_back_what_it_needs() -> None:
    """What the index returns is what reconcile compares and status.py reads: the applied child still
    counts as in place, and its identity (name, namespace, uid, apiVersion) is back."""
    index = children.ChildIndex()
    desired = compare.with_hash(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "shop-web",
                "namespace": "ns",
                "labels": {"app.kubernetes.io/instance": "shop"},
                "ownerReferences": deployment()["metadata"]["ownerReferences"],
            },
            "spec": {"replicas": 2},
        }
    )
    stored = deployment()
    stored["metadata"]["annotations"] = desired["metadata"]["annotations"]
    index.record(stored)
    kept = index.children(APP_UID)[("Deployment", "shop-web")]
    assert compare.in_place(desired, kept)
    assert kept["metadata"]["uid"] == "u-1" and kept["metadata"]["resourceVersion"] == "10"
    assert kept["status"]["readyReplicas"] == 1
    # absent stays absent (status.py reads it with a default)
    assert "availableReplicas" not in kept["status"]
    assert "managedFields" not in kept["metadata"]


def test_an_old_event_does_not_undo_a_newer_apply() -> None:
    index = children.ChildIndex()
    applied = deployment(version=20)
    applied["spec"]["replicas"] = 3
    index.record(applied)  # what the pass's apply returned
    late = deployment(version=15)  # the watch event of an earlier version, arriving after it
    assert index.observe("MODIFIED", late) is False
    assert index.children(APP_UID)[("Deployment", "shop-web")]["spec"]["replicas"] == 3


def test_a_deletion_removes_only_the_object_deleted() -> None:
    index = children.ChildIndex()
    old, new = deployment(uid="old", version=5), deployment(uid="new", version=9)
    index.record(old)
    index.discard(old)
    index.record(new)  # created again under the same name
    index.observe("DELETED", old)  # the old one's deletion event arrives late
    assert index.children(APP_UID)[("Deployment", "shop-web")]["metadata"]["uid"] == "new"


def test_a_live_read_replaces_what_is_kept_for_the_app() -> None:
    index = children.ChildIndex()
    lost = deployment(uid="lost")  # deleted while the watch was down: no event came
    other_app = deployment(uid="other")
    other_app["metadata"]["ownerReferences"] = [{"uid": "app-2", "controller": True}]
    index.record(lost)
    index.record(other_app)
    service = {
        "kind": "Service",
        "metadata": {
            "name": "shop-web",
            "namespace": "ns",
            "uid": "s-1",
            "resourceVersion": "3",
            "ownerReferences": [{"uid": APP_UID, "controller": True}],
        },
        "spec": {"ports": [{"port": 80}]},
    }
    index.replace(APP_UID, [service])
    assert set(index.children(APP_UID)) == {("Service", "shop-web")}
    assert set(index.children("app-2")) == {("Deployment", "shop-web")}


def test_a_child_handed_to_another_owner_moves() -> None:
    index = children.ChildIndex()
    index.record(deployment())
    orphaned = deployment(version=11)
    orphaned["metadata"]["ownerReferences"] = []
    assert index.observe("MODIFIED", orphaned) is True
    assert index.children(APP_UID) == {}


def test_names_of_all_objects_are_known_and_only_maestros_start_passes() -> None:
    index = children.ChildIndex()
    foreign = {
        "kind": "Deployment",
        "metadata": {"name": "shop-db", "namespace": "ns", "uid": "f-1", "labels": {"app": "db"}},
        "spec": {"replicas": 1},
    }
    assert index.observe("ADDED", foreign) is False  # not Maestro's: no pass, no content kept
    assert index.taken("ns", "Deployment", "shop-db")
    assert not index.taken("ns", "Service", "shop-db") and not index.taken("other", "Deployment", "shop-db")
    assert index.children(APP_UID) == {} and len(index) == 0
    index.observe(None, deployment())
    assert index.taken("ns", "Deployment", "shop-web")
    index.observe("DELETED", foreign)
    assert not index.taken("ns", "Deployment", "shop-db")


def test_a_late_deletion_does_not_free_a_name_held_again() -> None:
    index = children.ChildIndex()
    old, new = deployment(uid="old", version=5), deployment(uid="new", version=9)
    index.record(old)
    index.discard(old)
    index.record(new)
    index.observe("DELETED", old)
    assert index.taken("ns", "Deployment", "shop-web")
    index.discard(new)
    assert not index.taken("ns", "Deployment", "shop-web")


def test_the_safety_listing_finds_the_apps_whose_children_disagree() -> None:
    index = children.ChildIndex()
    index.record(deployment())  # app-1: as listed
    lost = deployment(uid="lost")  # app-2: deleted while a watch was down, still kept
    lost["metadata"]["ownerReferences"] = [{"uid": "app-2", "controller": True}]
    index.record(lost)
    edited = deployment(uid="edited", version=10)  # app-3: edited by hand, the event missed
    edited["metadata"]["ownerReferences"] = [{"uid": "app-3", "controller": True}]
    index.record(edited)
    newer = copy.deepcopy(edited)
    newer["metadata"]["resourceVersion"] = "12"
    newer["spec"]["replicas"] = 7
    unknown = deployment(uid="unknown")  # app-4: created, the event missed
    unknown["metadata"]["ownerReferences"] = [{"uid": "app-4", "controller": True}]
    elsewhere = deployment(uid="elsewhere")  # another namespace: not this listing's business
    elsewhere["metadata"].update(namespace="other", ownerReferences=[{"uid": "app-5", "controller": True}])
    index.record(elsewhere)
    listed = [deployment(), newer, unknown]
    assert index.disagreeing("ns", [Listed("Deployment", listed)]) == {"app-2", "app-3", "app-4"}
    # A child the index holds at a newer version than listed (a pass applied it since) is no disagreement.
    index.record(newer)
    index.record(unknown)
    index.discard(lost)
    assert index.disagreeing("ns", [Listed("Deployment", [deployment(), edited, unknown])]) == set()


def test_a_child_created_after_its_listing_is_no_disagreement() -> None:
    index = children.ChildIndex()
    index.record(deployment(version=10))
    created_later = deployment(uid="later", version=31)  # applied by a pass after the listing (at 30)
    created_later["metadata"]["ownerReferences"] = [{"uid": "app-2", "controller": True}]
    index.record(created_later)
    assert index.disagreeing("ns", [Listed("Deployment", [deployment(version=10)], "30")]) == set()
    # Listed at a later version, its absence means it is gone (deleted, the event missed).
    assert index.disagreeing("ns", [Listed("Deployment", [deployment(version=10)], "40")]) == {"app-2"}


def test_what_a_listing_again_misses_comes_back_as_deleted_and_frees_its_name() -> None:
    # A child and a foreign object deleted while no watch stream was open (an API server restart, say).
    index = children.ChildIndex()
    child = deployment(uid="child")
    kept = copy.deepcopy(child)
    kept["metadata"] |= {"name": "shop-api", "uid": "kept"}
    foreign = {"kind": "Deployment", "metadata": {"name": "db", "namespace": "ns", "uid": "f-1"}, "spec": {}}
    elsewhere = copy.deepcopy(foreign)
    elsewhere["metadata"] |= {"namespace": "other", "uid": "f-2"}
    service = {"kind": "Service", "metadata": {"name": "db", "namespace": "ns", "uid": "s-1"}, "spec": {}}
    for obj in (child, kept, foreign, elsewhere, service):
        index.observe(None, obj)

    absent = index.absent("Deployment", "ns", {"kept"})

    by_uid = {obj["metadata"]["uid"]: obj for obj in absent}
    assert set(by_uid) == {"child", "f-1"}, "only Deployments in ns that the listing lacks"
    # The child comes back as a pass reads it: its labels find its app, its owner is known.
    assert by_uid["child"]["metadata"]["labels"] == MANAGED
    assert children.kube.controller_uid(by_uid["child"]) == APP_UID
    for obj in absent:  # reported as deleted: the child starts a pass, the foreign name is free again
        assert index.observe("DELETED", obj) is (obj is by_uid["child"])
    assert not index.taken("ns", "Deployment", "shop-web") and not index.taken("ns", "Deployment", "db")
    assert index.taken("ns", "Deployment", "shop-api") and index.taken("other", "Deployment", "db")
    # Cluster-wide (None): every namespace.
    assert sorted(o["metadata"]["uid"] for o in index.absent("Deployment", None, set())) == ["f-2", "kept"]


def test_a_newer_version_whose_event_arrives_during_the_listing_is_no_disagreement() -> None:
    # The safety listing reads metadata only: a child listed at a newer version than kept is compared again
    # once every kind is listed, when the watch has most likely delivered it.
    index = children.ChildIndex()
    index.record(deployment(version=10))
    newer = deployment(version=12)

    class Delivered(Listed):
        def __iter__(self) -> Any:
            yield from super().__iter__()
            index.observe("MODIFIED", newer)  # the watch's event, during the listing

    assert index.disagreeing("ns", [Delivered("Deployment", [newer])]) == set()
    assert index.disagreeing("ns", [Listed("Deployment", [deployment(version=13)])]) == {"app-1"}


def test_a_marks_check_reads_the_digests_kept_and_unpacks_nothing(monkeypatch: Any) -> None:
    """What a settled mark hashes of a child is the digest kept as it was indexed: the same as a pass's mark
    takes of the child read as an object, and a new projection gives a new one. Unpacking is what the check
    must not cost (5000 apps at a start: docs/benchmarks.md, stop 33)."""
    index = children.ChildIndex()
    index.observe(None, deployment())

    def unpack(*_: object) -> bytes:
        raise AssertionError("unpacked")

    monkeypatch.setattr(index._packer, "unpack", unpack)
    [state] = index.states(APP_UID)
    assert state == settledmark.child_state(deployment())
    index.observe("MODIFIED", deployment(version=11, readyReplicas=2))
    [changed] = index.states(APP_UID)
    assert changed[:3] == state[:3] and changed[3] != state[3]
    assert changed == settledmark.child_state(deployment(readyReplicas=2))


def test_a_child_read_back_hashes_as_it_was_kept() -> None:
    """A pass writes its mark from the children it read from the index; a start checks that mark against the
    digests the index kept from a listing. The projection's JSON keeps the API server's key order, not a sorted
    one: read back and projected again, a child must give the same bytes, or no mark would ever match."""
    index = children.ChildIndex()
    listed = deployment()
    listed["metadata"] = {
        "uid": "u-1",
        **{k: v for k, v in reversed(listed["metadata"].items()) if k != "uid"},
    }
    index.observe(None, listed)
    [read] = index.children(APP_UID).values()
    assert [settledmark.child_state(read)] == index.states(APP_UID)
