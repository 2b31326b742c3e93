"""The apps whose last pass left them settled (Ready, nothing to come back for), with what that pass saw: the
app's resourceVersion and its children's fingerprint (children.py). The safety pass skips such an app while
both are unchanged: a pass over the same app and the same children does the same, nothing (a pass is
level-triggered and idempotent). That makes an idle operator's safety pass a listing, not a pass per app.

What is not in the fingerprint is why an app is remembered only when settled: a pass waiting for something
else to change (a name held by a foreign object, a dependency, a rollout) is not remembered, and neither is an
app that reads ConfigMaps or Secrets (their versions are not in it): the safety pass still runs a pass over
those every interval.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

Uid = str


@dataclass(frozen=True, slots=True)
class Seen:
    """What a pass saw: the app's resourceVersion (None when not a number) and its children's fingerprint."""

    app_version: int | None
    children: int


class SettledApps:
    """uid -> what its last pass saw, for the apps that pass left settled; thread-safe (the passes' threads
    write, the safety pass reads)."""

    def __init__(self) -> None:
        self._seen: dict[Uid, Seen] = {}
        self._guard = threading.Lock()

    def settle(self, uid: Uid, seen: Seen) -> None:
        with self._guard:
            self._seen[uid] = seen

    def unsettle(self, uid: Uid) -> None:
        """The app's last pass failed, or left something to come back for: the safety pass runs one."""
        with self._guard:
            self._seen.pop(uid, None)

    def unchanged(self, uid: Uid, now: Seen) -> bool:
        """Whether the app was left settled with exactly what it has now (an unknown version is a change)."""
        with self._guard:
            seen = self._seen.get(uid)
        return seen is not None and seen.app_version is not None and seen == now

    def retain(self, uids: Iterable[Uid]) -> None:
        """Forget the apps no longer listed."""
        keep = set(uids)
        with self._guard:
            self._seen = {uid: seen for uid, seen in self._seen.items() if uid in keep}

    def __len__(self) -> int:
        return len(self._seen)
