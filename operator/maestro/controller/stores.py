"""What a pass reads and keeps between passes, as the controller sees it: the runtime's caches (runtime/) satisfy
these protocols, and the unit tests give plain in-memory ones. The controller never imports the runtime."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from maestro.controller.compare import ChildKey
from maestro.controller.statushold import HeldStatuses


class AppStore(Protocol):
    """The latest version seen of every app (runtime/appcache.py)."""

    def get(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    def record(self, app: Mapping[str, Any]) -> None: ...


class ChildStore(Protocol):
    """Every app's children, and which names of the child kinds are taken (runtime/children.py)."""

    def children(self, owner: str) -> dict[ChildKey, dict[str, Any]]: ...

    def replace(self, owner: str, observed: Iterable[Mapping[str, Any]]) -> None: ...

    def taken(self, namespace: str, kind: str, name: str) -> bool: ...

    def record(self, obj: Mapping[str, Any]) -> None: ...

    def discard(self, obj: Mapping[str, Any]) -> None: ...


@dataclass(frozen=True)
class Stores:
    """The state a pass is handed: the app cache, the child index, the statuses held back, and the digest of
    the operator's code that goes into settled marks (settledmark.py; None: no mark written)."""

    apps: AppStore
    children: ChildStore
    held: HeldStatuses
    code_digest: str | None = None
