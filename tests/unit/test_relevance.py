"""Which watch events start a pass (relevance.py): pure functions and the digest memory."""

from __future__ import annotations

import copy
from typing import Any

from maestro import relevance


def deployment(**status: Any) -> dict[str, Any]:
    return {
        "kind": "Deployment",
        "metadata": {
            "name": "shop-web",
            "uid": "u-1",
            "generation": 2,
            "resourceVersion": "10",
            "labels": {"app.kubernetes.io/instance": "shop"},
            "annotations": {"maestro.dev/applied-hash": "abc"},
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
    seen = relevance.SeenChildren()
    first = deployment()
    assert relevance.child_event_needs_pass(None, first, seen) is False  # the initial listing is remembered
    noise = copy.deepcopy(first)
    noise["metadata"]["resourceVersion"] = "11"
    noise["metadata"]["managedFields"].append({"manager": "other"})
    progressing = noise["status"]["conditions"][1]
    progressing["lastUpdateTime"] = "2026-12-01T00:00:05Z"
    progressing["message"] = 'ReplicaSet "shop-web-1" has successfully progressed.'
    progressing["reason"] = "NewReplicaSetAvailable"
    assert relevance.child_event_needs_pass("MODIFIED", noise, seen) is False


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
        seen = relevance.SeenChildren()
        relevance.child_event_needs_pass(None, base, seen)
        changed = copy.deepcopy(base)
        change(changed)
        assert relevance.child_event_needs_pass("MODIFIED", changed, seen) is True, what
        assert relevance.child_event_needs_pass("MODIFIED", changed, seen) is False, f"{what}, seen twice"


def test_status_of_other_kinds_is_not_read() -> None:
    seen = relevance.SeenChildren()
    hpa = {
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"uid": "h", "generation": 1},
        "spec": {"maxReplicas": 4},
    }
    relevance.child_event_needs_pass(None, hpa, seen)
    updated = {**hpa, "status": {"currentReplicas": 3, "desiredReplicas": 4}}
    assert relevance.child_event_needs_pass("MODIFIED", updated, seen) is False


def test_deletion_starts_a_pass_and_forgets() -> None:
    seen = relevance.SeenChildren()
    child = deployment()
    relevance.child_event_needs_pass(None, child, seen)
    assert len(seen) == 1
    assert relevance.child_event_needs_pass("DELETED", child, seen) is True
    assert len(seen) == 0
    assert (
        relevance.child_event_needs_pass("ADDED", child, seen) is True
    )  # recreated under the same uid? a pass


def test_an_unknown_child_starts_a_pass() -> None:
    assert relevance.child_event_needs_pass("ADDED", deployment(), relevance.SeenChildren()) is True


def app(generation: int, observed: int | None, **meta: Any) -> dict[str, Any]:
    status = {} if observed is None else {"observedGeneration": observed}
    return {"metadata": {"name": "shop", "generation": generation, **meta}, "status": status}


def test_app_pass_while_status_lags_the_generation() -> None:
    assert relevance.app_event_needs_pass("ADDED", app(1, None)) is True
    assert relevance.app_event_needs_pass("MODIFIED", app(2, 1)) is True
    assert relevance.app_event_needs_pass("MODIFIED", app(2, 2)) is False  # its own status write, echoed


def test_app_pass_at_startup_for_every_app() -> None:
    assert relevance.app_event_needs_pass(None, app(2, 2)) is True


def test_app_deleted_or_deleting_starts_nothing() -> None:
    assert relevance.app_event_needs_pass("DELETED", app(2, 1)) is False
    assert relevance.app_event_needs_pass("MODIFIED", app(2, 1, deletionTimestamp="x")) is False
