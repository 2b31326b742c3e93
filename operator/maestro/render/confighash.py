"""A stable hash of the ConfigMaps and Secrets a service references (its `configFrom`).

The hash goes into the pod template's `maestro.dev/config-hash` annotation, so a change of their data rolls
the pods. Pure: the operator reads the objects and passes their data here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

# Bump when the hashed representation changes (it rolls every pod once, so only on purpose).
_FORMAT = "maestro-config-hash/v1"


def source_key(kind: str, name: str) -> str:
    """The key of one referenced object in the `sources` mapping: 'configmap/<name>' or 'secret/<name>'."""
    return f"{kind.lower()}/{name}"


def config_hash(sources: Mapping[str, Mapping[str, Any] | None]) -> str:
    """A hex SHA-256 over the referenced objects' data.

    `sources` maps a key (see `source_key`) to the object's data: for a ConfigMap its `data` and `binaryData`
    merged, for a Secret its (base64) `data`; None when the object does not exist. A missing object hashes
    differently from an empty one, so creating it rolls the pods. Key order, and the order of the sources, do
    not matter.
    """
    canonical = {
        key: None if data is None else {str(k): data[k] for k in sorted(data, key=str)}
        for key, data in sorted(sources.items())
    }
    payload = json.dumps([_FORMAT, canonical], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(payload.encode()).hexdigest()
