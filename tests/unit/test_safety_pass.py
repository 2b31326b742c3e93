"""When the periodic safety pass runs: on time when no pass is queued, else after the queue drains, but never
later than one more interval."""

from __future__ import annotations

from maestro.runtime import operator

INTERVAL = 60.0


def test_an_idle_queue_runs_the_safety_pass_on_time() -> None:
    assert operator.safety_pass_due(queued=0, waited=0.0, interval=INTERVAL)


def test_a_busy_queue_defers_it_for_at_most_one_more_interval() -> None:
    assert not operator.safety_pass_due(queued=40, waited=0.0, interval=INTERVAL)
    assert not operator.safety_pass_due(queued=1, waited=INTERVAL - 1, interval=INTERVAL)
    assert operator.safety_pass_due(queued=40, waited=INTERVAL, interval=INTERVAL)
