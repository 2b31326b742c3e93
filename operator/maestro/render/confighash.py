"""A stable hash of the ConfigMaps and Secrets a service references: its `configFrom` and the configMap,
secret and projected volumes it mounts.

The hash goes into the pod template's `maestro.dev/config-hash` annotation, so a change of their data rolls
the pods. Pure: the operator reads the objects and passes their data here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from maestro.api import models as api

# Bump when the hashed representation changes (it rolls every pod once, so only on purpose).
_FORMAT = "maestro-config-hash/v1"


def source_key(kind: str, name: str) -> str:
    """The key of one referenced object in the `sources` mapping: 'configmap/<name>' or 'secret/<name>'."""
    return f"{kind.lower()}/{name}"


def referenced(settings: api.PodSettings) -> list[tuple[str, str]]:
    """(kind, name) of every ConfigMap and Secret whose data goes into the pods' config hash, once each:
    `configFrom`, then the mounted ones (a mounted file changes in place, but only a restarted process is sure
    to read it)."""
    refs = [
        ("ConfigMap", str(c.config_map)) if c.config_map else ("Secret", str(c.secret))
        for c in settings.config_from or []
    ]
    for volume in settings.volumes or []:
        refs += volume_sources(volume.model_dump(by_alias=True, exclude_none=True))
    return list(dict.fromkeys(refs))


def volume_sources(volume: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(kind, name) of each ConfigMap and Secret a pod volume mounts: configMap, secret, projected sources."""
    found: list[tuple[str, str]] = []
    parts = [volume, *((volume.get("projected") or {}).get("sources") or [])]
    for part in parts:
        config_map, secret = part.get("configMap"), part.get("secret")
        if isinstance(config_map, Mapping) and config_map.get("name"):
            found.append(("ConfigMap", str(config_map["name"])))
        if isinstance(secret, Mapping) and (secret.get("secretName") or secret.get("name")):
            found.append(("Secret", str(secret.get("secretName") or secret.get("name"))))  # projected: `name`
    return found


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


def hashed_data(kind: str, obj: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What `config_hash` covers of one object as read: a ConfigMap's data and binaryData, a Secret's data; None
    when it does not exist."""
    if obj is None:
        return None
    data = dict(obj.get("data") or {})
    if kind == "ConfigMap":
        data.update({f"binary:{k}": v for k, v in (obj.get("binaryData") or {}).items()})
    return data


def app_sources(app: Mapping[str, Any]) -> set[str]:
    """The source keys (configmap/<name>, secret/<name>) the app's services and jobs use: in configFrom and in
    mounted volumes."""
    keys: set[str] = set()
    spec = app.get("spec") or {}
    components = [*(spec.get("services") or []), *(spec.get("jobs") or [])]
    for item in [spec.get("defaults") or {}, *components]:
        for source in (item or {}).get("configFrom") or []:
            if source.get("configMap"):
                keys.add(source_key("ConfigMap", source["configMap"]))
            if source.get("secret"):
                keys.add(source_key("Secret", source["secret"]))
        for volume in (item or {}).get("volumes") or []:
            keys |= {source_key(kind, name) for kind, name in volume_sources(volume)}
    return keys
