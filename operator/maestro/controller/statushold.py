"""When a pass writes the status it computed: at once when a rollout has ended (Ready, Degraded, Invalid) and
for an app's first status; a status in between (Pending, Progressing) is held back until HOLD_SECONDS after
the first pass that found it unwritten, and written then if the rollout is still going on.

Why: a rollout passes through several statuses (Progressing at the new generation, each step of the replica
counts, Ready), and writing each one cost three app writes per image change where the issue's goal is one
(docs/benchmarks.md). A rollout that completes within the hold is written once, as Ready; a longer one still
shows Progressing and its counts, at most once per hold. Nothing is hidden from kstatus, Argo CD or `kubectl
wait`: until the write, `status.observedGeneration` lags the generation, which they read as "in progress".
A new app's first status is not held, so that it is seen at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Mapping
from typing import Any

HOLD_SECONDS = 2.0  # the default; `maestro run` reads MAESTRO_STATUS_HOLD (runtime/settings.py)
SETTLED_PHASES = frozenset({"Ready", "Degraded", "Invalid"})


def seconds_to_hold(
    previous: Mapping[str, Any], new: Mapping[str, Any], held_since: float | None, now: float, hold: float
) -> float:
    """How much longer to hold back writing `new` over `previous` (0: write it now)."""
    if not previous.get("phase") or new.get("phase") in SETTLED_PHASES:
        return 0.0
    if held_since is None:
        return hold
    return max(0.0, held_since + hold - now)


class HeldStatuses:
    """When each app's unwritten status was first held back, by app key (thread-safe: passes of different
    apps run on different threads). Only apps in the middle of a rollout have an entry."""

    def __init__(self, hold: float = HOLD_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._hold = hold
        self._clock = clock
        self._since: dict[Hashable, float] = {}
        self._guard = threading.Lock()

    def delay(self, key: Hashable, previous: Mapping[str, Any], new: Mapping[str, Any]) -> float:
        """Seconds to hold `new` back; 0 means "write it now" (and forgets the hold)."""
        now = self._clock()
        with self._guard:
            wait = seconds_to_hold(previous, new, self._since.get(key), now, self._hold)
            if wait > 0:
                self._since.setdefault(key, now)
            else:
                self._since.pop(key, None)
            return wait

    def settled(self, key: Hashable) -> None:
        """The written status is the current one: nothing is held for the app."""
        with self._guard:
            self._since.pop(key, None)

    def __len__(self) -> int:
        return len(self._since)
