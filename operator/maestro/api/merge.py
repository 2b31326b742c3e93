"""Deep merges of plain JSON-like objects: `spec.defaults` under a service, restricted security defaults under a
service's security contexts. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from typing import Any


def deep_merge(
    base: Mapping[str, Any],
    top: Mapping[str, Any],
    *,
    replaced: Set[str] = frozenset(),
    list_keys: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """`top` merged over `base`: maps merge key by key, recursively; any other value of `top` wins.

    At any depth, a key in `replaced` takes `top`'s value as a whole, and lists under a key of `list_keys`
    merge by the item key it names (see `merge_list_by_key`).
    """
    keys = list_keys or {}
    merged = dict(base)
    for key, value in top.items():
        below = merged.get(key)
        if key in keys and isinstance(below, list) and isinstance(value, list):
            merged[key] = merge_list_by_key(below, value, keys[key])
        elif key not in replaced and isinstance(below, Mapping) and isinstance(value, Mapping):
            merged[key] = deep_merge(below, value, replaced=replaced, list_keys=keys)
        else:
            merged[key] = value
    return merged


def merge_list_by_key(base: Sequence[Any], top: Sequence[Any], key: str) -> list[Any]:
    """Entries of `top` replace those of `base` with the same key; new ones are appended; order is kept."""
    top_by_key = {item[key]: item for item in top}
    result = [top_by_key.pop(item[key], item) for item in base]
    return result + [item for item in top if item[key] in top_by_key]
