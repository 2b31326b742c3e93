"""The app's revisions (issue 16), pure: what is recorded each time the whole app becomes Ready, and read back
by a rollback and by `maestro history`.

A revision is an `apps/v1` ControllerRevision owned by the app (the way StatefulSets and DaemonSets keep their
history): its `revision` number, and as `data` the app generation and spec it was Ready at and, for every
service, the children Maestro rendered (with their applied-hash annotations), its config hash, images and
failure policy. A rollback re-applies those children as they are: they carry the configuration that went with
them. Its name is `<app>-<rendering>`, a hash of the services' renderings: one rendering is recorded once, and
recorded again it only takes the newest number (as StatefulSets do).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from maestro import render
from maestro.api import models as api
from maestro.controller.compare import APPLIED_HASH_ANNOTATION, key_of

KIND = "ControllerRevision"
API_VERSION = "apps/v1"
APP_LABEL = f"{api.GROUP}/app"  # the app's name, on each of its revisions (their listing's selector)
RENDERING_LENGTH = 10


def rendering(children: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    """A hash of the services' rendered children (service -> children, each with its applied-hash): any change
    of spec or config that changes a child changes it."""
    parts = sorted(
        f"{service}/{kind}/{name}={(child['metadata'].get('annotations') or {}).get(APPLIED_HASH_ANNOTATION)}"
        for service, items in children.items()
        for child in items
        for kind, name in [key_of(child)]
    )
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:RENDERING_LENGTH]


def revision_name(app_name: str, fingerprint: str) -> str:
    return f"{app_name}-{fingerprint}"


@dataclass(frozen=True)
class ServiceRecord:
    """One service as a revision keeps it."""

    children: tuple[dict[str, Any], ...]
    config_hash: str | None
    images: tuple[str, ...]
    on_failure: api.OnFailure


@dataclass(frozen=True)
class Revision:
    """A revision as read back from its ControllerRevision."""

    number: int
    name: str
    rendering: str
    generation: int | None
    spec: Mapping[str, Any]
    services: Mapping[str, ServiceRecord]
    ready_at: str | None

    def ref(self) -> api.RevisionRef:
        return api.RevisionRef(revision=self.number, name=self.name, generation=self.generation)


def on_failure(service: api.ServiceSpec) -> api.OnFailure:
    return (service.rollout.on_failure if service.rollout else None) or "Rollback"


def images(children: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    """The images of the Deployment among the children (init containers first)."""
    for child in children:
        if child["kind"] == "Deployment":
            pod = child["spec"]["template"]["spec"]
            return tuple(c["image"] for c in [*(pod.get("initContainers") or []), *pod["containers"]])
    return ()


def config_hash(children: Iterable[Mapping[str, Any]]) -> str | None:
    """The config hash in the pod template of the Deployment among the children (None: no config sources)."""
    for child in children:
        if child["kind"] == "Deployment":
            meta = child["spec"]["template"].get("metadata") or {}
            return (meta.get("annotations") or {}).get(render.CONFIG_HASH_ANNOTATION)
    return None


def render_revision(
    app: Mapping[str, Any],
    number: int,
    services: Mapping[str, api.ServiceSpec],
    children: Mapping[str, Sequence[Mapping[str, Any]]],
    ready_at: str,
) -> dict[str, Any]:
    """The ControllerRevision recording the app as it is Ready now (`children`: each service's rendering)."""
    meta = app["metadata"]
    fingerprint = rendering(children)
    data = {
        "generation": meta.get("generation"),
        "spec": app.get("spec") or {},
        "readyAt": ready_at,
        "services": {
            name: {
                "children": list(children[name]),
                "configHash": config_hash(children[name]),
                "images": list(images(children[name])),
                "onFailure": on_failure(service),
            }
            for name, service in services.items()
        },
    }
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": revision_name(meta["name"], fingerprint),
            "namespace": meta["namespace"],
            "labels": {**render.owned_labels(meta["name"]), APP_LABEL: meta["name"]},
            "ownerReferences": [render.owner_reference(app)],
        },
        "revision": number,
        "data": data,
    }


def read_revision(obj: Mapping[str, Any]) -> Revision:
    """A ControllerRevision written by `render_revision`, read back."""
    name = obj["metadata"]["name"]
    data = obj.get("data") or {}
    services = {
        service: ServiceRecord(
            children=tuple(record.get("children") or ()),
            config_hash=record.get("configHash"),
            images=tuple(record.get("images") or ()),
            on_failure="Hold" if record.get("onFailure") == "Hold" else "Rollback",
        )
        for service, record in (data.get("services") or {}).items()
    }
    return Revision(
        number=int(obj.get("revision") or 0),
        name=name,
        rendering=name.rsplit("-", 1)[-1],
        generation=data.get("generation"),
        spec=data.get("spec") or {},
        services=services,
        ready_at=data.get("readyAt"),
    )


@dataclass(frozen=True)
class Recording:
    """What recording a Ready rendering takes, given the app's revisions: create it (`replace`: after deleting
    its earlier record, which then takes the newest number), or nothing; and which old revisions fall beyond
    the history limit. A ControllerRevision's data cannot be patched around (the API server compares it byte
    for byte after decoding it), so a number is changed by writing the record again."""

    create: dict[str, Any] | None
    replace: bool
    delete: tuple[str, ...]
    ref: api.RevisionRef


def recording(revision: dict[str, Any], existing: Sequence[Mapping[str, Any]], limit: int) -> Recording:
    """Record `revision` (render_revision's, numbered here) among the `existing` ControllerRevisions of the app:
    numbers only grow; the newest `limit` are kept."""
    name = revision["metadata"]["name"]
    numbers = {o["metadata"]["name"]: int(o.get("revision") or 0) for o in existing}
    newest = max(numbers.values(), default=0)
    generation = revision["data"].get("generation")
    if name in numbers and numbers[name] == newest:
        create, number = None, newest  # recorded already (a pass cut short after it)
    else:
        number = newest + 1
        create = {**revision, "revision": number}
    replace = create is not None and name in numbers
    numbers[name] = number
    kept = sorted(numbers, key=lambda n: numbers[n], reverse=True)[:limit]
    delete = tuple(sorted(n for n in numbers if n not in kept))
    return Recording(
        create, replace, delete, api.RevisionRef(revision=number, name=name, generation=generation)
    )
