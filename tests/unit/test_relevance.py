"""Which app events start a pass, and what of a child a pass reads (relevance.py, projection.py)."""

from __future__ import annotations

from typing import Any

from maestro.controller.projection import projection
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


def job(**status: Any) -> dict[str, Any]:
    return {"kind": "Job", "metadata": {"name": "shop-migrate-0123456789"}, "spec": {}, "status": status}


def test_a_job_run_is_relevant_when_it_starts_ends_or_fails_not_when_its_pods_get_ready() -> None:
    start = projection(job(active=1, startTime="t0"))
    assert projection(job(active=1, ready=1, startTime="t0")) == start
    assert projection(job(active=1, startTime="t0", uncountedTerminatedPods={"succeeded": ["u"]})) == start
    complete = job(
        succeeded=1, startTime="t0", completionTime="t1", conditions=[{"type": "Complete", "status": "True"}]
    )
    assert projection(complete) != start
    failed = job(
        failed=1,
        startTime="t0",
        conditions=[{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}],
    )
    assert projection(failed)["status"]["conditions"] == [
        {"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}
    ]


def test_a_cronjob_is_relevant_when_it_schedules_or_a_run_succeeds() -> None:
    def cronjob(**status: Any) -> dict[str, Any]:
        return {"kind": "CronJob", "metadata": {"name": "shop-report"}, "spec": {}, "status": status}

    quiet = projection(cronjob(lastScheduleTime="t0"))
    assert projection(cronjob(lastScheduleTime="t0", lastSuccessfulTime="t1")) != quiet
    assert projection(cronjob(lastScheduleTime="t0", active=[{"name": "shop-report-1"}])) != quiet
