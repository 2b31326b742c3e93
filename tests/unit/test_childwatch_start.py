"""The start of the child watches (childwatch.py): every kind listed before any is followed, the listings side
by side, and a listing that fails fails the start."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from maestro.runtime import childwatch


class Listed:
    served, resource_version = True, "7"

    def __init__(self, objects: list[dict[str, Any]]) -> None:
        self.objects = objects

    def __iter__(self) -> Any:
        return iter(self.objects)


def child(kind: str) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": kind.lower(), "uid": f"uid-{kind}"}}


def test_every_kind_is_listed_side_by_side_before_any_is_followed(monkeypatch: pytest.MonkeyPatch) -> None:
    at_once, running, guard = [0], [0], threading.Lock()

    def list_pages(kind: str, namespace: str | None) -> Listed:
        with guard:
            running[0] += 1
            at_once[0] = max(at_once[0], running[0])
        time.sleep(0.05)  # an API server's answer
        with guard:
            running[0] -= 1
        return Listed([child(kind)])

    followed: list[str] = []
    monkeypatch.setattr(childwatch.kube, "list_pages", list_pages)
    monkeypatch.setattr(childwatch.KindWatch, "follow", lambda self: followed.append(self.kind))
    seen: list[tuple[str | None, str]] = []
    kinds = ["Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Job", "CronJob"]
    watches = childwatch.KindWatches(kinds, [None], lambda event, obj: seen.append((event, obj["kind"])))
    watches.start()
    assert sorted(kind for _, kind in seen) == sorted(kinds) and {event for event, _ in seen} == {None}
    for thread in watches.threads:
        thread.join(timeout=5)
    assert sorted(followed) == sorted(kinds)
    assert at_once[0] == childwatch.LISTINGS_AT_ONCE  # side by side, at most this many
    assert all(w.version == "7" and w.listed for w in watches.watches)


def test_a_listing_that_fails_fails_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    def list_pages(kind: str, namespace: str | None) -> Listed:
        if kind == "Service":
            raise childwatch.kube.ApiError(403, "Forbidden", "services is forbidden")
        return Listed([])

    monkeypatch.setattr(childwatch.kube, "list_pages", list_pages)
    watches = childwatch.KindWatches(["Deployment", "Service"], [None], lambda event, obj: None)
    with pytest.raises(childwatch.kube.ApiError):
        watches.start()
    assert watches.threads == []  # nothing followed
