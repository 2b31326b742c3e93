"""The queue of passes to run: one entry per app however many events ask for it, a fixed set of worker
threads, and retries with back-off.

Why a queue of our own between the watches and the passes: a watch handler that ran the pass itself would hold
kopf's event stream for the object until the pass was done, so during a burst kopf would queue every event with
its full body, and memory would grow with the backlog (docs/benchmarks.md). A handler only marks the app as due
and returns: the backlog is at most one entry per app, and events that arrive while a pass is queued cost
nothing.

The rules, as in client-go's workqueue: a key is queued at most once; a key being worked on is not handed to a
second worker, and if it is added meanwhile it runs once more afterwards; a failed key is added again after
1, 2, 4 ... MAX_DELAY seconds (the count resets on success, and a success cancels the retry: an event can
run the key before its retry is due).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

Item = TypeVar("Item")

FIRST_DELAY = 1.0
MAX_DELAY = 60.0


def delay_for(failures: int) -> float:
    """Seconds to wait after the given number of consecutive failures (1, 2, 4, ... MAX_DELAY)."""
    return float(min(MAX_DELAY, FIRST_DELAY * 2 ** max(0, failures - 1)))


class WorkQueue(Generic[Item]):
    """Deduplicating work queue: `add(key, item)` asks for `work(item)` to run once more for that key."""

    def __init__(
        self,
        work: Callable[[Item], object],
        *,
        workers: int,
        describe: Callable[[BaseException], str | None] = lambda error: None,
        merge: Callable[[Item, Item], Item] = lambda queued, new: new,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._work = work
        self._workers = workers
        # One log line for an expected failure (an API error: describe returns its text); a traceback otherwise.
        self._describe = describe
        # The item of a key added again before its run: by default the newest replaces the one queued.
        self._merge = merge
        self._clock = clock
        self._cond = threading.Condition()
        # Two lanes: urgent keys (a spec not yet acted on) are handed out before the others (status refreshes,
        # safety passes), as controller-runtime's priority queue does. A key is in one lane at a time: `_queued`
        # says which; an entry of the other lane for it is stale and skipped. A retry keeps the lane of the run
        # that failed: a new app's failed first pass must not wait behind every status refresh.
        self._lanes: dict[bool, deque[Hashable]] = {True: deque(), False: deque()}
        self._items: dict[Hashable, Item] = {}  # the latest item of every key queued, running or waiting
        self._queued: dict[Hashable, bool] = {}  # key -> urgent
        self._active: dict[Hashable, bool] = {}  # key running -> whether it was handed out urgent
        self._again: dict[Hashable, bool] = {}  # added while active: run once more when done (-> urgent)
        self._later: list[tuple[float, int, Hashable]] = []  # retries and delayed adds: (due, token, key)
        # The keys with a retry due, and its (token, urgent, due): an entry of _later whose token is not here was
        # cancelled.
        self._waiting: dict[Hashable, tuple[int, bool, float]] = {}
        # The keys with a delayed add (add_after) due, and its (due, token); a success does not cancel it.
        self._delayed: dict[Hashable, tuple[float, int]] = {}
        self._failures: dict[Hashable, int] = {}
        self._order = itertools.count()
        self._threads: list[threading.Thread] = []

    def add(self, key: Hashable, item: Item, *, urgent: bool = False) -> None:
        """Ask for a run of `work(item)`; returns at once. An urgent key runs before every key that is not."""
        with self._cond:
            queued = self._items.get(key)
            self._items[key] = item if queued is None else self._merge(queued, item)
            self._enqueue(key, urgent)
            self._start()

    def add_after(self, key: Hashable, item: Item, delay: float) -> None:
        """Ask for a run of `work(item)` in `delay` seconds (or sooner, if the key is added meanwhile; of two
        delayed adds of one key, the earlier stands)."""
        with self._cond:
            due = self._clock() + delay
            queued = self._items.get(key)
            self._items[key] = item if queued is None else self._merge(queued, item)
            current = self._delayed.get(key)
            if current is None or due < current[0]:
                self._delayed[key] = (due, token := next(self._order))
                heapq.heappush(self._later, (due, token, key))
                self._cond.notify()
            self._start()

    def retry_now(self) -> int:
        """Run every key waiting for a retry now: the API server is reachable again, so the failures were its
        outage's. Their counts start again: a key that fails once more right after (a restarted API server
        answers 429 to custom resources while their storage initializes) is retried after FIRST_DELAY, not
        after the back-off the outage built up. Returns how many keys."""
        with self._cond:
            waiting = list(self._waiting.items())
            self._waiting.clear()  # their entries in `_later` are stale now: `_next` skips them
            self._failures.clear()  # the keys running now too: their failure would be the outage's
            for key, (_, urgent, _) in waiting:
                self._enqueue(key, urgent)
            return len(waiting)

    def _enqueue(self, key: Hashable, urgent: bool = False) -> None:
        if key in self._active:
            self._again[key] = self._again.get(key, False) or urgent
        elif key not in self._queued or (urgent and not self._queued[key]):
            self._queued[key] = urgent
            self._lanes[urgent].append(key)
            self._cond.notify()

    def depth(self) -> int:
        """Keys waiting for a worker (not counting retries scheduled for later)."""
        with self._cond:
            return len(self._queued)

    def in_flight(self) -> int:
        with self._cond:
            return len(self._active)

    def failures(self, key: Hashable) -> int:
        with self._cond:
            return self._failures.get(key, 0)

    def _start(self) -> None:
        while len(self._threads) < self._workers:
            thread = threading.Thread(
                target=self._loop, name=f"maestro-pass-{len(self._threads)}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def _next(self) -> tuple[Hashable, Item]:
        with self._cond:
            while True:
                now = self._clock()
                while self._later and self._later[0][0] <= now:
                    _, token, key = heapq.heappop(self._later)
                    retry = self._waiting.get(key)
                    if retry is not None and retry[0] == token:
                        del self._waiting[key]
                        self._enqueue(key, retry[1])
                    elif self._delayed.get(key, (None, None))[1] == token:
                        del self._delayed[key]
                        self._enqueue(key)
                popped = self._pop()
                if popped is not None:
                    key, urgent = popped
                    self._active[key] = urgent
                    return key, self._items[key]
                self._cond.wait(self._later[0][0] - now if self._later else None)

    def _pop(self) -> tuple[Hashable, bool] | None:
        """The next key to run, and whether it came from the urgent lane."""
        for urgent in (True, False):
            lane = self._lanes[urgent]
            while lane:
                key = lane.popleft()
                if self._queued.get(key) is urgent:  # else stale: moved to the urgent lane, or run already
                    del self._queued[key]
                    return key, urgent
        return None

    def _loop(self) -> None:
        while True:
            key, item = self._next()
            failed = False
            try:
                self._work(item)
            except Exception as error:  # a worker must survive anything a pass raises
                failed = True
                self._retry_later(key, error)
            with self._cond:
                self._active.pop(key, None)
                if not failed:
                    self._failures.pop(key, None)
                    self._waiting.pop(key, None)  # a retry scheduled before this run is moot now
                if key in self._again:
                    self._enqueue(key, self._again.pop(key))
                elif not failed and key not in self._queued and key not in self._delayed:
                    self._items.pop(key, None)  # nothing more to do for it: keep no memory per idle app

    def _retry_later(self, key: Hashable, error: Exception) -> None:
        with self._cond:
            failures = self._failures.get(key, 0) + 1
            self._failures[key] = failures
            urgent = self._active.get(key, False)
            waiting = self._waiting.get(key)
            if waiting is None:
                due = self._clock() + delay_for(failures)
                token = next(self._order)
                self._waiting[key] = (token, urgent, due)
                heapq.heappush(self._later, (due, token, key))
                self._cond.notify()
            else:  # a retry already waiting keeps its due time; a failed urgent run raises its lane
                due = waiting[2]
                self._waiting[key] = (waiting[0], waiting[1] or urgent, due)
            delay = max(0.0, due - self._clock())
        reason = self._describe(error)
        if reason is None:
            log.exception("pass over %s failed; retrying in %.0fs", key, delay)
        else:
            log.warning("pass over %s failed (%s); retrying in %.0fs", key, reason, delay)
