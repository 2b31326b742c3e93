"""The work queue of passes (workqueue.py): one entry per key, one run at a time per key, a run more for
what arrives meanwhile, retries with back-off, and nothing kept for idle keys."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from maestro.runtime import workqueue


def wait(event: threading.Event) -> None:
    assert event.wait(timeout=10), "timed out"


def test_delays_double_up_to_the_cap() -> None:
    assert [workqueue.delay_for(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert workqueue.delay_for(50) == workqueue.MAX_DELAY


class FirstRunBlocks:
    """Work that records its items; the first run holds its key until `release` is set."""

    def __init__(self) -> None:
        self.started, self.release, self.second = threading.Event(), threading.Event(), threading.Event()
        self.runs: list[Any] = []

    def __call__(self, item: Any) -> None:
        self.runs.append(item)
        if len(self.runs) == 1:
            self.started.set()
            wait(self.release)
        else:
            self.second.set()


def test_adds_while_a_key_runs_make_exactly_one_more_run() -> None:
    work = FirstRunBlocks()
    started, release, second, runs = work.started, work.release, work.second, work.runs
    queue: workqueue.WorkQueue[str] = workqueue.WorkQueue(work, workers=4)
    queue.add("shop", "v1")
    wait(started)
    for version in ("v2", "v3", "v4"):  # three events while the first run is going on
        queue.add("shop", version)
    assert queue.in_flight() == 1 and queue.depth() == 0, "not handed to a second worker"
    release.set()
    wait(second)
    threading.Event().wait(0.5)
    assert runs == ["v1", "v4"], "one more run, with the latest item"


def test_merge_combines_the_items_of_one_key_added_before_its_run() -> None:
    work = FirstRunBlocks()
    started, release, second, runs = work.started, work.release, work.second, work.runs
    queue: workqueue.WorkQueue[frozenset[str]] = workqueue.WorkQueue(
        work, workers=2, merge=lambda queued, new: queued | new
    )
    queue.add("shop", frozenset({"first"}))
    wait(started)
    queue.add("shop", frozenset({"live"}))  # e.g. the safety pass's live read...
    queue.add("shop", frozenset({"event"}))  # ...is not lost when an event queues the key again
    release.set()
    wait(second)
    assert runs[1] >= {"live", "event"}


def test_add_after_runs_the_key_later_even_after_a_run_in_between() -> None:
    now = [0.0]
    runs: list[str] = []
    ran = threading.Event()

    def work(item: str) -> None:
        runs.append(item)
        ran.set()

    queue: workqueue.WorkQueue[str] = workqueue.WorkQueue(work, workers=1, clock=lambda: now[0])
    queue.add_after("shop", "held", 2.0)
    queue.add("shop", "event")  # an event runs the key before the delayed add is due...
    wait(ran)
    ran.clear()
    assert runs == ["event"]
    now[0] = 2.5
    queue.add("other", "poke")  # wakes the worker, which finds the delayed add due
    deadline = threading.Event()
    for _ in range(100):
        if "event" in runs[1:] or len(runs) >= 3:
            break
        deadline.wait(0.05)
    assert sorted(runs[1:]) == ["event", "poke"], (
        "...and the delayed add still runs it (a success does not cancel it)"
    )


def test_urgent_keys_run_before_the_others() -> None:
    started, release, done = threading.Event(), threading.Event(), threading.Event()
    runs: list[str] = []

    def work(item: str) -> None:
        runs.append(item)
        if item == "blocker":
            started.set()
            wait(release)
        if len(runs) == 4:
            done.set()

    queue: workqueue.WorkQueue[str] = workqueue.WorkQueue(work, workers=1)
    queue.add("blocker", "blocker")
    wait(started)
    queue.add("a", "refresh-a")
    queue.add("b", "refresh-b")
    queue.add("c", "new-c", urgent=True)
    queue.add("a", "new-a", urgent=True)  # queued already: moves to the urgent lane, runs once
    release.set()
    wait(done)
    threading.Event().wait(0.3)  # time for a stray fifth run, which would be a bug
    assert runs == ["blocker", "new-c", "new-a", "refresh-b"]


def test_keys_run_in_parallel_on_the_workers() -> None:
    barrier = threading.Barrier(3, timeout=10)
    queue: workqueue.WorkQueue[int] = workqueue.WorkQueue(lambda _: barrier.wait(), workers=3)
    for key in range(3):
        queue.add(key, key)
    barrier.wait()  # would time out (BrokenBarrierError) unless all three ran at once


def test_a_queued_key_is_queued_once() -> None:
    started, release, done = threading.Event(), threading.Event(), threading.Event()
    runs: Counter[str] = Counter()

    def work(item: str) -> None:
        runs[item] += 1
        if item == "blocker":
            started.set()
            wait(release)
        if item == "b":
            done.set()

    queue: workqueue.WorkQueue[str] = workqueue.WorkQueue(work, workers=1)
    queue.add("blocker", "blocker")
    wait(started)  # the only worker is busy
    for _ in range(5):
        queue.add("b", "b")
    assert queue.depth() == 1
    release.set()
    wait(done)
    threading.Event().wait(0.3)
    assert runs == {"blocker": 1, "b": 1}


def test_a_failure_is_retried_with_back_off_until_it_succeeds() -> None:
    attempts: list[str] = []
    succeeded = threading.Event()

    def work(item: str) -> None:
        attempts.append(item)
        if len(attempts) < 3:
            raise ConnectionRefusedError("the API server is restarting")
        succeeded.set()

    queue: workqueue.WorkQueue[str] = workqueue.WorkQueue(
        work, workers=2, describe=lambda error: f"unreachable: {error}"
    )
    queue.add("shop", "shop")
    wait(succeeded)  # after 1 s and 2 s
    assert attempts == ["shop"] * 3
    assert queue.failures("shop") == 0, "the count resets on success"


def test_no_memory_is_kept_for_an_idle_key() -> None:
    done = threading.Event()
    queue: workqueue.WorkQueue[str] = workqueue.WorkQueue(lambda _: done.set(), workers=1)
    queue.add("shop", "shop")
    wait(done)
    threading.Event().wait(0.3)
    assert queue._items == {} and queue._failures == {}


class FailsFirst:
    """Work that records its items; its first run fails as in an API server outage, the others succeed."""

    def __init__(self) -> None:
        self.runs: list[str] = []
        self.failed, self.succeeded = threading.Event(), threading.Event()

    def __call__(self, item: str) -> None:
        self.runs.append(item)
        if len(self.runs) == 1:
            self.failed.set()
            raise ConnectionRefusedError("the API server is restarting")
        self.succeeded.set()


def test_a_run_before_the_retry_is_due_cancels_the_retry() -> None:
    # The API server restart case: a pass fails (retry due in 1 s), an event runs the key at once and it
    # succeeds; when the retry came due the queue had forgotten the idle key, and the worker thread died on it.
    work = FailsFirst()
    attempts, first_failed, second_done = work.runs, work.failed, work.succeeded
    queue: workqueue.WorkQueue[str] = workqueue.WorkQueue(work, workers=1, describe=str)
    queue.add("shop", "v1")
    wait(first_failed)
    threading.Event().wait(0.1)  # the failure is recorded and its retry scheduled
    queue.add("shop", "v2")  # an event, before the retry is due
    wait(second_done)
    threading.Event().wait(workqueue.FIRST_DELAY + 0.5)  # past the cancelled retry's due time
    assert attempts == ["v1", "v2"], "the retry was cancelled by the success"
    assert not queue._items and not queue._waiting
    # The worker is alive: the key still runs when asked.
    third = threading.Event()
    queue._work = lambda item: third.set()
    queue.add("shop", "v3")
    wait(third)


def test_retry_now_runs_the_failed_keys_before_their_back_off_ends() -> None:
    # The API server is back (a watch reopened): the passes that failed in its outage need not wait.
    work = FailsFirst()
    attempts, failed, retried = work.runs, work.failed, work.succeeded
    # A clock that stands still: the back-off never ends by itself.
    queue: workqueue.WorkQueue[str] = workqueue.WorkQueue(work, workers=1, describe=str, clock=lambda: 0.0)
    queue.add("shop", "shop")
    wait(failed)
    threading.Event().wait(0.3)
    assert attempts == ["shop"] and queue.failures("shop") == 1
    assert queue.retry_now() == 1
    wait(retried)
    assert attempts == ["shop", "shop"]
    assert queue.retry_now() == 0, "nothing waits for a retry any more"


def test_retry_now_starts_the_back_off_again() -> None:
    # A key that failed through the outage and fails once more right after it (a restarted API server answers
    # 429 while its storage initializes) is retried after FIRST_DELAY, not after the outage's long back-off.
    runs: list[str] = []
    failed_twice = threading.Event()

    def always_fails(item: str) -> None:
        runs.append(item)
        if len(runs) == 2:
            failed_twice.set()
        raise ConnectionRefusedError("the API server is restarting")

    queue: workqueue.WorkQueue[str] = workqueue.WorkQueue(
        always_fails, workers=1, describe=str, clock=lambda: 0.0
    )
    queue.add("shop", "shop")
    while queue.failures("shop") < 1:
        threading.Event().wait(0.01)
    assert queue.retry_now() == 1
    wait(failed_twice)
    threading.Event().wait(0.3)
    assert runs == ["shop", "shop"]
    assert queue.failures("shop") == 1, "counted from the reconnection, not from the outage's first failure"


def runs_once_the_retry_is_due(failing: list[tuple[str, bool]]) -> list[str]:
    """One worker. Each (item, urgent) of `failing` is added for the key "app" in turn and fails on its first
    run; then, while a blocker runs, two status refreshes are queued and the retry falls due. The runs, in order."""
    now = [0.0]
    runs: list[str] = []
    blocker_started, release, done = threading.Event(), threading.Event(), threading.Event()
    failing_items = {item for item, _ in failing}

    def work(item: str) -> None:
        runs.append(item)
        if item in failing_items and runs.count(item) == 1:
            raise TimeoutError("read timed out")
        if item == "blocker":
            blocker_started.set()
            wait(release)
        if len(runs) == len(failing) + 4:  # the blocker, the retry, the two refreshes
            done.set()

    queue: workqueue.WorkQueue[str] = workqueue.WorkQueue(work, workers=1, describe=str, clock=lambda: now[0])
    for failures, (item, urgent) in enumerate(failing, start=1):
        queue.add("app", item, urgent=urgent)
        while queue.failures("app") < failures:
            threading.Event().wait(0.01)
    queue.add("blocker", "blocker")
    wait(blocker_started)
    queue.add("a", "refresh-a")
    queue.add("b", "refresh-b")
    now[0] = workqueue.FIRST_DELAY + 1  # the retry is due when the worker next looks
    release.set()
    wait(done)
    return runs


def test_a_retry_keeps_the_lane_of_the_run_that_failed() -> None:
    # Seen at 5000 apps: a new app's first pass timed out and its retry, put in the lane of status refreshes,
    # waited 27 minutes behind thousands of them.
    runs = runs_once_the_retry_is_due([("new", True)])
    assert runs == ["new", "blocker", "new", "refresh-a", "refresh-b"]


def test_a_failed_urgent_run_raises_the_lane_of_a_retry_already_waiting() -> None:
    # A status refresh fails and its retry waits in the slow lane; then the user edits the app and that urgent
    # pass fails too: the edit's retry must not wait behind every status refresh.
    runs = runs_once_the_retry_is_due([("app-refresh", False), ("app-edit", True)])
    assert runs == ["app-refresh", "app-edit", "blocker", "app-edit", "refresh-a", "refresh-b"]


def test_a_failure_while_a_retry_waits_reports_the_retry_s_due_time(caplog: Any) -> None:
    # The retry already waiting keeps its due time: the log says when it runs, not the next back-off's delay.
    runs: list[str] = []

    def always_fails(item: str) -> None:
        runs.append(item)
        raise TimeoutError("read timed out")

    queue: workqueue.WorkQueue[str] = workqueue.WorkQueue(
        always_fails, workers=1, describe=str, clock=lambda: 0.0
    )
    with caplog.at_level("WARNING", logger=workqueue.__name__):
        queue.add("shop", "first")
        while queue.failures("shop") < 1:
            threading.Event().wait(0.01)
        queue.add("shop", "an event")  # runs at once, and fails while the first failure's retry waits
        while queue.failures("shop") < 2:
            threading.Event().wait(0.01)
        threading.Event().wait(0.1)
    delays = [record.getMessage().rpartition("retrying in ")[2] for record in caplog.records]
    assert runs == ["first", "an event"]
    assert delays == [f"{workqueue.FIRST_DELAY:.0f}s"] * 2, delays
