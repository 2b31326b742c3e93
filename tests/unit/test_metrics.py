"""Metrics: a pass is counted, timed and tracked by result; apps by phase follow phase changes and deletions;
the HTTP endpoint serves them and the probes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import REGISTRY

from maestro import metrics
from maestro.runtime import serving


@dataclass
class FakeOutcome:
    phase: str | None


def sample(name: str, **labels: str) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


def app(name: str, namespace: str = "ns") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace}}


@pytest.fixture(autouse=True)
def no_apps() -> None:
    metrics.forget_all()


def test_results() -> None:
    assert metrics.result_of(FakeOutcome("Ready")) == "ok"
    assert metrics.result_of(FakeOutcome("Degraded")) == "ok"
    assert metrics.result_of(FakeOutcome("Invalid")) == "invalid"
    assert metrics.result_of(FakeOutcome(None)) == "skipped"


def test_a_pass_is_counted_timed_and_tracked() -> None:
    seen_in_flight: list[float] = []

    @metrics.instrumented
    def pass_(_: Any) -> FakeOutcome:
        seen_in_flight.append(sample("maestro_reconciles_in_flight"))
        return FakeOutcome("Ready")

    ok, count = (
        sample("maestro_reconcile_total", result="ok"),
        sample("maestro_reconcile_duration_seconds_count"),
    )
    pass_(app("a"))
    assert seen_in_flight == [1.0]
    assert sample("maestro_reconciles_in_flight") == 0
    assert sample("maestro_reconcile_total", result="ok") == ok + 1
    assert sample("maestro_reconcile_duration_seconds_count") == count + 1


def test_a_failed_pass_counts_as_error_and_raises() -> None:
    @metrics.instrumented
    def pass_(_: Any) -> FakeOutcome:
        raise OSError("connection refused")

    errors = sample("maestro_reconcile_total", result="error")
    with pytest.raises(OSError):
        pass_(app("a"))
    assert sample("maestro_reconcile_total", result="error") == errors + 1
    assert sample("maestro_reconciles_in_flight") == 0


def test_apps_by_phase_follow_changes_and_deletions() -> None:
    phases = {"a": "Progressing", "b": "Progressing"}

    @metrics.instrumented
    def pass_(obj: Any) -> FakeOutcome:
        return FakeOutcome(phases.get(obj["metadata"]["name"]))

    pass_(app("a"))
    pass_(app("b"))
    assert sample("maestro_apps", phase="Progressing") == 2
    assert sample("maestro_apps", phase="Ready") == 0  # every phase has a series
    phases["a"] = "Ready"
    pass_(app("a"))
    assert (sample("maestro_apps", phase="Progressing"), sample("maestro_apps", phase="Ready")) == (1, 1)
    del phases["b"]  # a pass over a deleted app returns no phase
    pass_(app("b"))
    assert sample("maestro_apps", phase="Progressing") == 0
    metrics.record_phase("other", "c", "Invalid")
    metrics.forget_missing([("ns", "a")])  # the safety pass listed only this one
    assert (sample("maestro_apps", phase="Ready"), sample("maestro_apps", phase="Invalid")) == (1, 0)
    metrics.record_phase("ns", "a", "Degraded")  # counted on from the recount
    metrics.record_phase("ns", "a", "Degraded")
    assert (sample("maestro_apps", phase="Ready"), sample("maestro_apps", phase="Degraded")) == (0, 1)


def test_applies_by_kind() -> None:
    before = sample("maestro_apply_total", kind="Deployment")
    metrics.applied("Deployment")
    assert sample("maestro_apply_total", kind="Deployment") == before + 1


def test_phase_counts_include_every_phase() -> None:
    counts = metrics.phase_counts(["Ready", "Ready", "Invalid"])
    assert counts == {"Degraded": 0, "Invalid": 1, "Pending": 0, "Progressing": 0, "Ready": 2}


def test_endpoints() -> None:
    async def run() -> None:
        started = asyncio.Event()
        client = TestClient(TestServer(serving.make_app(started, lambda: "standby")))
        await client.start_server()
        try:
            assert (await client.get("/healthz")).status == 200
            response = await client.get("/readyz")
            assert response.status == 503  # kopf's startup has not completed
            started.set()
            response = await client.get("/readyz")
            assert (response.status, await response.text()) == (200, "ok: standby\n")
            response = await client.get("/metrics")
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            text = await response.text()
            for name in (
                "maestro_reconcile_total",
                "maestro_reconcile_duration_seconds_bucket",
                "maestro_apply_total",
                "maestro_apps",
                "maestro_reconciles_in_flight",
                "maestro_work_queue_depth",
                "maestro_leader",
                "maestro_build_info",
            ):
                assert f"\n{name}" in text, name
        finally:
            await client.close()

    asyncio.run(run())
