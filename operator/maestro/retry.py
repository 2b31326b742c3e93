"""Retries with exponential back-off, per key, on a few threads of their own.

A pass that fails on an API error (the server restarting, a timeout, a 5xx) is tried again later: after 1 s,
then 2, 4, ... up to MAX_DELAY, until one succeeds. Watch handlers cannot retry (kopf retries only its
change-detection handlers, which Maestro no longer uses: relevance.py), and waiting for the safety pass would
leave a change unhandled for a minute. Retries run on a small pool of their own so that an outage of the API
server, which fails every app at once, does not turn into one thread per app when it ends.

Who calls it: reconcile.request.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor

FIRST_DELAY = 1.0
MAX_DELAY = 60.0
WORKERS = 4


def delay_for(failures: int) -> float:
    """Seconds to wait after the given number of consecutive failures (1, 2, 4, ... MAX_DELAY)."""
    return float(min(MAX_DELAY, FIRST_DELAY * 2 ** max(0, failures - 1)))


class Retries:
    """Run `action` again after a back-off that grows with the key's consecutive failures. One retry per key
    is pending at a time; `succeeded` resets the count."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._failures: dict[Hashable, int] = {}
        self._scheduled: set[Hashable] = set()
        self._heap: list[tuple[float, int, Hashable, Callable[[], None]]] = []
        self._order = itertools.count()  # ties on the due time keep their order; keys need not be comparable
        self._wakeup = threading.Condition()
        self._pool: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None

    def failed(self, key: Hashable, action: Callable[[], None]) -> float:
        """Count a failure of `key` and schedule `action`; returns the delay chosen."""
        with self._wakeup:
            failures = self._failures.get(key, 0) + 1
            self._failures[key] = failures
            delay = delay_for(failures)
            if key not in self._scheduled:
                self._scheduled.add(key)
                heapq.heappush(self._heap, (self._clock() + delay, next(self._order), key, action))
                self._start()
                self._wakeup.notify()
        return delay

    def succeeded(self, key: Hashable) -> None:
        with self._wakeup:
            self._failures.pop(key, None)

    def failures(self, key: Hashable) -> int:
        with self._wakeup:
            return self._failures.get(key, 0)

    def _start(self) -> None:
        if self._thread is None:
            self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="maestro-retry")
            self._thread = threading.Thread(target=self._loop, name="maestro-retries", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            with self._wakeup:
                while not self._heap or self._heap[0][0] > self._clock():
                    timeout = self._heap[0][0] - self._clock() if self._heap else None
                    self._wakeup.wait(timeout)
                _, _, key, action = heapq.heappop(self._heap)
                self._scheduled.discard(key)
            assert self._pool is not None
            self._pool.submit(action)
