"""Config snapshots (`configFrom[].snapshot`, issue 16), pure: an immutable copy of a ConfigMap's or Secret's data,
named by the data's hash and owned by the app, that the pods load instead of the object itself.

A change of the object's data makes a new copy under a new name, so the pod template changes and the service
rolls out in dependency order like any change; the old copy stays for the revisions that use it (the executor
deletes the copies no retained revision and no current rendering refers to), so a rollback restores the old
configuration with the old pod template. Copies are not children in the child-kind table: they are written once
(create; immutable), never applied over, and never recorded in a revision (a Secret's data stays in Secrets).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from maestro.api import models as api
from maestro.render.names import owned_labels, owner_reference

SNAPSHOT_LABEL = f"{api.GROUP}/snapshot-of"  # the name of the object copied
APP_LABEL = f"{api.GROUP}/app"
HASH_LENGTH = 10
MAX_NAME = 253


def copied_data(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a ConfigMap or Secret that a copy takes: data, binaryData (ConfigMap), type (Secret)."""
    return {key: obj[key] for key in ("data", "binaryData", "type") if obj.get(key) is not None}


def snapshot_name(name: str, obj: Mapping[str, Any]) -> str:
    """<name>-<hash of the copied data> (the name shortened so that the whole fits a ConfigMap's name)."""
    payload = json.dumps(copied_data(obj), sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(payload.encode()).hexdigest()[:HASH_LENGTH]
    return f"{name[: MAX_NAME - HASH_LENGTH - 1]}-{digest}"


def render_copy(app: Mapping[str, Any], kind: str, source: Mapping[str, Any]) -> dict[str, Any]:
    """The immutable copy of `source` (a ConfigMap or Secret as read) for the app."""
    meta = app["metadata"]
    name = source["metadata"]["name"]
    copy: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": kind,
        "metadata": {
            "name": snapshot_name(name, source),
            "namespace": meta["namespace"],
            "labels": {**owned_labels(meta["name"]), APP_LABEL: meta["name"], SNAPSHOT_LABEL: name},
        },
        "immutable": True,
        **copied_data(source),
    }
    if meta.get("uid"):
        copy["metadata"]["ownerReferences"] = [owner_reference(app)]
    return copy


def snapshot_sources(components: Iterable[api.PodSettings]) -> set[tuple[str, str]]:
    """(kind, name) of every configFrom source that asks for a snapshot."""
    return {
        ("ConfigMap", str(c.config_map)) if c.config_map else ("Secret", str(c.secret))
        for component in components
        for c in component.config_from or []
        if c.snapshot
    }


def referenced_copies(children: Iterable[Mapping[str, Any]]) -> set[tuple[str, str]]:
    """(kind, name) of every ConfigMap and Secret the pod templates among `children` load through envFrom (a
    Deployment's, a Job's, a CronJob's): the copies a rendering needs."""
    found: set[tuple[str, str]] = set()
    for child in children:
        spec = child.get("spec") or {}
        template = (spec.get("jobTemplate") or {}).get("spec", spec).get("template") or {}
        pod = template.get("spec") or {}
        for container in [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]:
            for source in container.get("envFrom") or []:
                if "configMapRef" in source:
                    found.add(("ConfigMap", source["configMapRef"]["name"]))
                if "secretRef" in source:
                    found.add(("Secret", source["secretRef"]["name"]))
    return found


def unused_copies(
    copies: Iterable[Mapping[str, Any]],
    revisions: Iterable[Mapping[str, Any]],
    current: Iterable[Iterable[Mapping[str, Any]]],
) -> list[tuple[str, str]]:
    """(kind, name) of the app's copies that no kept revision (ControllerRevisions as written) and no current
    rendering (its components' children) loads."""
    used = set().union(*(referenced_copies(children) for children in current))
    for revision in revisions:
        for record in ((revision.get("data") or {}).get("services") or {}).values():
            used |= referenced_copies(record.get("children") or [])
    return sorted(
        (copy["kind"], copy["metadata"]["name"])
        for copy in copies
        if (copy["kind"], copy["metadata"]["name"]) not in used
    )
