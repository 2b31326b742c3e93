"""An in-memory API server for the executor's unit tests (execute.py): it stands in for the few kube/client.py
functions a pass calls, records every request as (verb, kind, name), and keeps the objects applied to it. Plus
plain in-memory stores (the app cache and the child index a pass is handed).

Server-side apply is modelled as far as a pass reads its answer: the applied fields over the stored ones, a uid
on creation, and a new generation when a Deployment's spec or annotations change (as the API server does).
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from maestro.api import models as api
from maestro.controller.statushold import HeldStatuses
from maestro.controller.stores import ChildKey, Stores
from maestro.kube import client as kube
from maestro.render import kinds

Key = tuple[str, str, str]  # (kind, namespace, name)
Request = tuple[str, str, str]  # (verb, kind, name)


def _key(obj: Mapping[str, Any]) -> Key:
    return (obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"])


class FakeApi:
    """The objects of the cluster by (kind, namespace, name), and the requests sent to it."""

    def __init__(self, objects: Iterable[Mapping[str, Any]] = ()) -> None:
        self.objects: dict[Key, dict[str, Any]] = {_key(obj): copy.deepcopy(dict(obj)) for obj in objects}
        self.requests: list[Request] = []
        self.deleted_uids: list[str | None] = []  # the uid precondition of each delete
        self.events: list[tuple[str, str, str]] = []  # (type, reason, message) of the events posted
        self.refuse: dict[tuple[str, str], str] = {}  # (kind, name) -> the message of a 422 for its apply
        self.events_fail = False
        self.unserved: set[str] = set()  # kinds whose API is not installed (a 404 for every request)
        self._uids = itertools.count(1)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> FakeApi:
        """Answer the requests of kube/client.py's functions that a pass calls."""
        for name in (
            "get",
            "owned_children",
            "apply",
            "delete",
            "patch_status",
            "post_event",
            "replica_sets",
            "pods",
            "revisions",
            "snapshot_copies",
            "create",
        ):
            monkeypatch.setattr(kube, name, getattr(self, name))
        return self

    def verbs(self) -> list[str]:
        return [verb for verb, _, _ in self.requests]

    # ------------------------------------------------------------------------------------ kube/client.py

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        self.requests.append(("get", kind, name))
        found = self.objects.get((kind, namespace, name))
        return copy.deepcopy(found) if found is not None else None

    def owned_children(self, app: Mapping[str, Any]) -> dict[ChildKey, dict[str, Any]]:
        meta = app["metadata"]
        children: dict[ChildKey, dict[str, Any]] = {}
        for kind in kinds.KIND_NAMES:
            self.requests.append(("list", kind, ""))
            for (k, namespace, name), obj in self.objects.items():
                if (
                    k == kind
                    and namespace == meta["namespace"]
                    and kube.controller_uid(obj) == meta.get("uid")
                ):
                    children[(kind, name)] = copy.deepcopy(obj)
        return children

    def _labelled(self, kind: str, namespace: str, selector: Mapping[str, str]) -> list[dict[str, Any]]:
        self.requests.append(("list", kind, ""))
        return [
            copy.deepcopy(obj)
            for (k, ns, _), obj in self.objects.items()
            if k == kind
            and ns == namespace
            and selector.items() <= ((obj["metadata"].get("labels") or {}).items())
        ]

    def replica_sets(self, namespace: str, selector: Mapping[str, str]) -> list[dict[str, Any]]:
        return self._labelled("ReplicaSet", namespace, selector)

    def pods(self, namespace: str, selector: Mapping[str, str]) -> list[dict[str, Any]]:
        return self._labelled("Pod", namespace, selector)

    def revisions(self, app: Mapping[str, Any]) -> list[dict[str, Any]]:
        meta = app["metadata"]
        self.requests.append(("list", "ControllerRevision", ""))
        return [
            copy.deepcopy(obj)
            for (k, ns, _), obj in self.objects.items()
            if k == "ControllerRevision"
            and ns == meta["namespace"]
            and kube.controller_uid(obj) == meta.get("uid")
        ]

    def snapshot_copies(self, app: Mapping[str, Any]) -> list[dict[str, Any]]:
        meta = app["metadata"]
        copies = []
        for kind in ("ConfigMap", "Secret"):
            self.requests.append(("list", kind, ""))
            copies += [
                copy.deepcopy(obj)
                for (k, ns, _), obj in self.objects.items()
                if k == kind and ns == meta["namespace"] and kube.controller_uid(obj) == meta.get("uid")
            ]
        return copies

    def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        self.requests.append(("create", obj["kind"], obj["metadata"]["name"]))
        if _key(obj) in self.objects:
            raise kube.ApiError(409, "AlreadyExists", f"{obj['metadata']['name']} already exists")
        stored = copy.deepcopy(dict(obj))
        stored["metadata"]["uid"] = f"uid-{next(self._uids)}"
        self.objects[_key(stored)] = stored
        return copy.deepcopy(stored)

    def apply(self, obj: Mapping[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        kind, name = obj["kind"], obj["metadata"]["name"]
        self.requests.append(("dry-run" if dry_run else "apply", kind, name))
        if (kind, name) in self.refuse:
            raise kube.ApiError(422, "Invalid", self.refuse[(kind, name)])
        if kind in self.unserved:
            raise kube.ApiError(404, "NotFound", "the server could not find the requested resource")
        before = self.objects.get(_key(obj))
        after = {**copy.deepcopy(before or {}), **copy.deepcopy(dict(obj))}
        meta = {**(before or {}).get("metadata", {}), **copy.deepcopy(obj["metadata"])}
        meta["uid"] = meta.get("uid") or f"uid-{next(self._uids)}"
        if before is None:
            meta["generation"] = 1
        elif before.get("spec") != after.get("spec") or before["metadata"].get("annotations") != meta.get(
            "annotations"
        ):
            meta["generation"] = int(before["metadata"].get("generation") or 1) + 1
        after["metadata"] = meta
        if not dry_run:
            self.objects[_key(obj)] = after
        return copy.deepcopy(after)

    def delete(self, kind: str, namespace: str, name: str, uid: str | None = None) -> None:
        self.requests.append(("delete", kind, name))
        self.deleted_uids.append(uid)
        found = self.objects.get((kind, namespace, name))
        if found is not None and uid in (None, found["metadata"].get("uid")):
            del self.objects[(kind, namespace, name)]

    def patch_status(self, app: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
        self.requests.append(("patch-status", api.KIND, app["metadata"]["name"]))
        stored = copy.deepcopy(dict(self.objects.get(_key(app), app)))
        merged = {**(stored.get("status") or {}), **patch}
        stored["status"] = {key: value for key, value in merged.items() if value is not None}
        self.objects[_key(stored)] = stored
        return copy.deepcopy(stored)

    def post_event(self, app: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        self.requests.append(("event", "Event", reason))
        if self.events_fail:
            raise kube.ApiError(500, "InternalError", "etcdserver: request timed out")
        self.events.append((type_, reason, message))


class AppStore:
    """The app cache: the latest version of each app."""

    def __init__(self) -> None:
        self.apps: dict[tuple[str, str], dict[str, Any]] = {}

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.apps.get((namespace, name))
        return copy.deepcopy(found) if found is not None else None

    def record(self, app: Mapping[str, Any]) -> None:
        self.apps[(app["metadata"]["namespace"], app["metadata"]["name"])] = copy.deepcopy(dict(app))


class ChildStore:
    """The child index: each app's children by owner uid, and the names taken in each namespace."""

    def __init__(self, objects: Iterable[Mapping[str, Any]] = ()) -> None:
        self.objects: dict[str, dict[str, Any]] = {}  # by uid
        for obj in objects:
            self.record(obj)

    def children(self, owner: str) -> dict[ChildKey, dict[str, Any]]:
        return {
            (obj["kind"], obj["metadata"]["name"]): copy.deepcopy(obj)
            for obj in self.objects.values()
            if kube.controller_uid(obj) == owner
        }

    def replace(self, owner: str, observed: Iterable[Mapping[str, Any]]) -> None:
        for uid in [uid for uid, obj in self.objects.items() if kube.controller_uid(obj) == owner]:
            del self.objects[uid]
        for obj in observed:
            self.record(obj)

    def taken(self, namespace: str, kind: str, name: str) -> bool:
        return any(_key(obj) == (kind, namespace, name) for obj in self.objects.values())

    def record(self, obj: Mapping[str, Any]) -> None:
        self.objects[str(obj["metadata"]["uid"])] = copy.deepcopy(dict(obj))

    def discard(self, obj: Mapping[str, Any]) -> None:
        self.objects.pop(str(obj["metadata"].get("uid")), None)


def stores(api_server: FakeApi, *, hold: float = 0.0) -> Stores:
    """Stores that know every object of the fake API server (as after the watches' first listing)."""
    apps, children = AppStore(), ChildStore()
    for (kind, _, _), obj in api_server.objects.items():
        if kind == api.KIND:
            apps.record(obj)
        elif kind in kinds.KIND_NAMES:
            children.record(obj)
    return Stores(apps=apps, children=children, held=HeldStatuses(hold=hold))
