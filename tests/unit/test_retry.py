"""Back-off retries (retry.py): delays, one pending retry per key, reset on success, and that they run."""

from __future__ import annotations

import threading

from maestro import retry


def test_delays_double_up_to_the_cap() -> None:
    assert [retry.delay_for(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert retry.delay_for(50) == retry.MAX_DELAY


def test_failures_count_per_key_and_reset() -> None:
    retries = retry.Retries(clock=lambda: 0.0)  # a clock that never advances: nothing comes due
    assert retries.failed("a", lambda: None) == 1.0
    assert retries.failed("a", lambda: None) == 2.0
    assert retries.failed("b", lambda: None) == 1.0
    retries.succeeded("a")
    assert retries.failures("a") == 0
    assert retries.failures("b") == 1


def test_a_due_retry_runs_once_per_key() -> None:
    retries = retry.Retries()
    ran: list[str] = []
    done = threading.Event()

    def action() -> None:
        ran.append("a")
        done.set()

    retries.failed("a", action)
    retries.failed("a", action)  # already pending: counted, not scheduled twice
    assert done.wait(timeout=10), "the retry ran"
    assert retries.failures("a") == 2
    threading.Event().wait(1.5)
    assert ran == ["a"]
