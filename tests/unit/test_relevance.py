"""Which app events start a pass, and what of a child a pass reads (relevance.py)."""

from __future__ import annotations

from typing import Any

from maestro.runtime import relevance


def app(generation: int, observed: int | None, **meta: Any) -> dict[str, Any]:
    status = {} if observed is None else {"observedGeneration": observed}
    return {"metadata": {"name": "shop", "generation": generation, **meta}, "status": status}


def test_app_pass_while_status_lags_the_generation() -> None:
    assert relevance.app_event_needs_pass("ADDED", app(1, None)) is True
    assert relevance.app_event_needs_pass("MODIFIED", app(2, 1)) is True
    assert relevance.app_event_needs_pass("MODIFIED", app(2, 2)) is False  # its own status write, echoed


def test_app_pass_at_startup_for_every_app() -> None:
    assert relevance.app_event_needs_pass(None, app(2, 2)) is True


def test_app_deleted_or_deleting_starts_nothing() -> None:
    assert relevance.app_event_needs_pass("DELETED", app(2, 1)) is False
    assert relevance.app_event_needs_pass("MODIFIED", app(2, 1, deletionTimestamp="x")) is False
