"""When a pass writes the status it computed (statushold.py)."""

from __future__ import annotations

from maestro.controller import statushold

READY = {"phase": "Ready", "observedGeneration": 1}
PROGRESSING = {"phase": "Progressing", "observedGeneration": 2}


def test_a_new_apps_first_status_and_the_end_of_a_rollout_are_written_at_once() -> None:
    assert statushold.seconds_to_hold({"observedGeneration": 0}, PROGRESSING, None, 0.0, 2.0) == 0
    for phase in ("Ready", "Degraded", "Invalid"):
        assert statushold.seconds_to_hold(READY, {"phase": phase}, None, 0.0, 2.0) == 0, phase
        assert statushold.seconds_to_hold(READY, {"phase": phase}, 5.0, 5.5, 2.0) == 0, phase


def test_a_rollouts_steps_are_held_until_the_hold_ends() -> None:
    assert statushold.seconds_to_hold(READY, PROGRESSING, None, 10.0, 2.0) == 2.0
    assert statushold.seconds_to_hold(READY, PROGRESSING, 10.0, 11.5, 2.0) == 0.5
    assert statushold.seconds_to_hold(READY, {"phase": "Pending"}, 10.0, 12.0, 2.0) == 0


def test_held_statuses_count_from_the_first_pass_that_held() -> None:
    now = [100.0]
    held = statushold.HeldStatuses(hold=2.0, clock=lambda: now[0])
    assert held.delay("shop", READY, PROGRESSING) == 2.0
    now[0] = 101.5
    assert held.delay("shop", READY, {**PROGRESSING, "readyServices": "1/3"}) == 0.5  # not a fresh 2 s
    now[0] = 102.0
    assert held.delay("shop", READY, PROGRESSING) == 0  # written now...
    assert len(held) == 0  # ...and forgotten
    assert held.delay("shop", READY, PROGRESSING) == 2.0  # the next change holds afresh


def test_a_rollout_that_ends_within_the_hold_is_one_write() -> None:
    now = [0.0]
    held = statushold.HeldStatuses(hold=2.0, clock=lambda: now[0])
    writes = []
    for at, new in ((0.0, PROGRESSING), (0.3, {**PROGRESSING, "readyServices": "2/3"}), (0.6, READY)):
        now[0] = at
        if held.delay("shop", {"phase": "Ready", "observedGeneration": 1}, new) == 0:
            writes.append(new["phase"])
    assert writes == ["Ready"]
    assert len(held) == 0


def test_settled_forgets_a_hold() -> None:
    held = statushold.HeldStatuses(hold=2.0, clock=lambda: 0.0)
    held.delay("shop", READY, PROGRESSING)
    held.settled("shop")
    assert len(held) == 0
