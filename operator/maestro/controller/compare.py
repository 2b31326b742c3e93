"""How a desired child compares with an observed one: the applied-hash annotation that says what Maestro last
applied, and whether every desired field still has its value. Pure."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from maestro.api import models as api

# The hash of what Maestro last applied to a child: tells "this service needs a rollout" (gated by its
# dependencies) from "this service is in place" (re-applied freely, which also undoes edits made by hand).
APPLIED_HASH_ANNOTATION = f"{api.GROUP}/applied-hash"

ChildKey = tuple[str, str]  # (kind, name)


def child_hash(child: Mapping[str, Any]) -> str:
    """A stable hash of a rendered child (without the hash annotation itself)."""
    return hashlib.sha256(json.dumps(child, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:20]


def with_hash(child: Mapping[str, Any]) -> dict[str, Any]:
    """The child with its applied-hash annotation."""
    result = dict(child)
    meta = dict(result["metadata"])
    meta["annotations"] = {**(meta.get("annotations") or {}), APPLIED_HASH_ANNOTATION: child_hash(child)}
    result["metadata"] = meta
    return result


def up_to_date(desired: Mapping[str, Any], observed: Mapping[str, Any] | None) -> bool:
    """Whether the observed child was last applied from exactly this desired child."""
    if observed is None:
        return False
    annotations = (observed.get("metadata") or {}).get("annotations") or {}
    wanted = (desired["metadata"].get("annotations") or {}).get(APPLIED_HASH_ANNOTATION)
    return wanted is not None and annotations.get(APPLIED_HASH_ANNOTATION) == wanted


def contains(observed: Any, desired: Any, *, quantities: bool = False) -> bool:
    """Whether every field of `desired` is in `observed` with the same value (lists item by item, same
    length). Fields the API server or other managers added are ignored; anything else means "apply".
    Resource quantities compare by value: the API server stores "0.5" as "500m". A field the API server leaves
    out because its value is the zero value (`readOnly: false`, `value: ""`: Go's omitempty) counts as present."""
    if isinstance(desired, Mapping):
        return isinstance(observed, Mapping) and all(
            contains(observed[key], value, quantities=quantities or key in _QUANTITY_MAPS)
            if key in observed
            else _omitted_when_empty(value)
            for key, value in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(observed, list)
            and len(observed) == len(desired)
            and all(contains(o, d) for o, d in zip(observed, desired, strict=True))
        )
    if quantities and observed != desired:
        if isinstance(desired, Mapping | list) or isinstance(observed, Mapping | list):
            return False
        value = api.parse_quantity(desired)
        return value is not None and value == api.parse_quantity(observed)
    return bool(observed == desired)


_QUANTITY_MAPS = frozenset({"requests", "limits"})


def _omitted_when_empty(value: Any) -> bool:
    """Whether the API server may store nothing for this value: Go's zero values, which omitempty leaves out."""
    return value is None or value is False or value in ("", 0) or value == [] or value == {}


def in_place(desired: Mapping[str, Any], observed: Mapping[str, Any] | None) -> bool:
    """Whether applying `desired` would change nothing: last applied from the same desired object, and
    every desired field still has its value (nobody edited or removed it by hand)."""
    return observed is not None and up_to_date(desired, observed) and contains(observed, desired)


def keeps_generation(desired: Mapping[str, Any], observed: Mapping[str, Any] | None) -> bool:
    """Whether applying `desired` leaves a Deployment's generation alone: the API server gives it a new one when
    its spec or its annotations change (annotations are copied to its ReplicaSets)."""
    if observed is None:
        return False
    wanted = desired["metadata"].get("annotations") or {}
    found = (observed.get("metadata") or {}).get("annotations") or {}
    return contains(observed.get("spec"), desired.get("spec")) and contains(found, wanted)


def key_of(child: Mapping[str, Any]) -> ChildKey:
    return (child["kind"], child["metadata"]["name"])


def label(child: Mapping[str, Any]) -> str:
    return f"{child['kind']}/{child['metadata']['name']}"


def generation(obj: Mapping[str, Any]) -> Any:
    return (obj.get("metadata") or {}).get("generation")
