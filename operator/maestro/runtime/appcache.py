"""The latest version seen of every app: from its watch events (handlers.py) and from what the operator's own
status writes return (reconcile.py). A pass starts from it instead of a GET of the app: one request fewer per
pass.

Kept as compact JSON without `metadata.managedFields`, packed (packing.py). A version never replaces a newer one
(resourceVersions compared as numbers), so a late watch event does not undo what a status write returned. A live
pass (the safety pass's, for an app whose children disagree) still GETs the app. An app deleted during
a watch gap sends no DELETED event, and its cached copy must not outlive it: a pass would apply children for it,
the garbage collector would delete them, and their deletion would start the next such pass (docs/reliability.md,
bug 11). So a pass started by a child's deletion, and the retry of a failed pass, read the app from the API
server, and the safety pass after a gap of the apps' watch lists them and keeps only the apps it lists (it takes
the apps from here otherwise: `refs`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from maestro.kube import client as kube
from maestro.runtime import packing

AppKey = tuple[str, str]  # (namespace, name)
_KIND = "MicroserviceApp"  # the packer's one dictionary


def _key(app: Mapping[str, Any]) -> AppKey:
    meta = app.get("metadata") or {}
    return str(meta.get("namespace")), str(meta.get("name"))


def _json(app: Mapping[str, Any]) -> bytes:
    meta = {key: value for key, value in (app.get("metadata") or {}).items() if key != "managedFields"}
    return json.dumps({**app, "metadata": meta}, separators=(",", ":")).encode()


class AppCache:
    """(namespace, name) -> (resourceVersion, uid, the app as packed JSON); thread-safe."""

    def __init__(self) -> None:
        self._apps: dict[AppKey, tuple[int | None, str | None, bytes]] = {}
        self._packer = packing.Packer()
        self._guard = threading.Lock()

    def observe(self, event_type: str | None, app: Mapping[str, Any]) -> None:
        """Take in a watch event of an app."""
        if event_type == "DELETED":
            with self._guard:
                self._apps.pop(_key(app), None)
        else:
            self.record(app)

    def record(self, app: Mapping[str, Any]) -> None:
        """Take in a version of an app (an event's, or what a write returned) unless a newer one is kept."""
        key, version = _key(app), kube.resource_version(app)
        uid = (app.get("metadata") or {}).get("uid")
        encoded = self._packer.pack(_KIND, _json(app))
        with self._guard:
            kept = self._apps.get(key)
            if kept is None or not kube.older(version, kept[0]):
                self._apps[key] = (version, uid and str(uid), encoded)

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The latest version seen, or None when none is kept (never seen, or deleted)."""
        with self._guard:
            kept = self._apps.get((namespace, name))
        return None if kept is None else dict(json.loads(self._packer.unpack(_KIND, kept[2])))

    def version(self, namespace: str, name: str) -> int | None:
        """The resourceVersion of the latest version seen (None: none kept, or not a number)."""
        with self._guard:
            kept = self._apps.get((namespace, name))
        return None if kept is None else kept[0]

    def refs(self) -> list[tuple[AppKey, str | None, int | None]]:
        """Every app kept, as ((namespace, name), uid, resourceVersion), without decoding any."""
        with self._guard:
            return [(key, uid, version) for key, (version, uid, _) in self._apps.items()]

    def forget(self, namespace: str, name: str) -> None:
        """Drop what is kept of one app: its next pass reads it from the API server."""
        with self._guard:
            self._apps.pop((namespace, name), None)

    def retain(self, listed: Iterable[AppKey]) -> None:
        """Keep only the apps a full listing returned: one deleted while no watch stream was open sent no
        DELETED event (the safety pass lists every app)."""
        keep = set(listed)
        with self._guard:
            for key in [key for key in self._apps if key not in keep]:
                del self._apps[key]

    def __len__(self) -> int:
        return len(self._apps)
