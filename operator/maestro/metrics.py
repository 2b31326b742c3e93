"""Prometheus metrics of the operator (prometheus-client's default registry, served by serving.py).

Every metric is documented in docs/operator.md; names follow the Prometheus conventions (`maestro_` prefix,
`_total` counters, `_seconds` durations, base units).
"""

from __future__ import annotations

import functools
import threading
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar, get_args

from prometheus_client import Counter, Gauge, Histogram, Info

import maestro
from maestro.api import models as api

# A pass's result: ok (the app's children and status are as desired, whatever its phase), invalid (the spec
# or a name conflict stops it: phase Invalid), error (an exception, e.g. an API error: retried), skipped (the
# app is gone or being deleted: nothing to do).
RESULTS = ("ok", "invalid", "error", "skipped")
# Every app phase has a series, also at 0: a query for Degraded apps finds 0 rather than nothing.
PHASES: tuple[str, ...] = get_args(api.Phase)

RECONCILES = Counter("maestro_reconcile", "Reconcile passes, by result.", ["result"])
DURATION = Histogram(
    "maestro_reconcile_duration_seconds",
    "Duration of one reconcile pass (all results); the time queued before it is not included.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
IN_FLIGHT = Gauge("maestro_reconciles_in_flight", "Reconcile passes running now.")
QUEUE_DEPTH = Gauge(
    "maestro_work_queue_depth",
    "Apps queued for a pass and waiting for a worker (retries scheduled for later not counted).",
)
APPLIES = Counter("maestro_apply", "Server-side apply requests sent for children, by kind.", ["kind"])
APPS = Gauge(
    "maestro_apps",
    "MicroserviceApps by the phase this operator last computed (0 everywhere on a standby replica).",
    ["phase"],
)
LEADER = Gauge(
    "maestro_leader",
    "1 while this replica acts (no live peer with a higher priority), 0 while it stands by.",
)
ROLLOUT_FAILURES = Counter(
    "maestro_rollout_failures",
    "Failed rollouts detected (issue 16), by what showed the failure (CrashLoopBackOff, ImagePullBackOff, "
    "ProgressDeadlineExceeded, ...) and by action (RolledBack, Held, or Reported: no Ready revision to "
    "return to).",
    ["reason", "action"],
)
BUILD = Info("maestro_build", "The operator's version.")
BUILD.info({"version": maestro.__version__})

for _result in RESULTS:
    RECONCILES.labels(result=_result)
for _phase in PHASES:
    APPS.labels(phase=_phase).set(0)

# (namespace, name) -> the phase of its last pass; `maestro_apps` is computed from it.
_phases: dict[tuple[str, str], str] = {}
_counts: Tally[str] = Tally()  # apps per phase: what `maestro_apps` shows
_phases_lock = threading.Lock()


class _Outcome(Protocol):
    @property
    def phase(self) -> str | None: ...


P = ParamSpec("P")
OutcomeT = TypeVar("OutcomeT", bound=_Outcome)


def result_of(outcome: _Outcome) -> str:
    """The `result` label of a pass that returned (errors never return)."""
    if outcome.phase is None:
        return "skipped"
    return "invalid" if outcome.phase == "Invalid" else "ok"


def phase_counts(phases: Iterable[str]) -> dict[str, int]:
    """Apps per phase, with every known phase present (at 0 when none)."""
    counts = Tally(phases)
    return {phase: counts.get(phase, 0) for phase in sorted({*PHASES, *counts})}


def _publish() -> None:
    _counts.clear()
    _counts.update(_phases.values())
    for phase, count in phase_counts(_phases.values()).items():
        APPS.labels(phase=phase).set(count)


def record_phase(namespace: str, name: str, phase: str | None) -> None:
    """Remember an app's phase; None forgets the app (deleted). Only the counts of the phases it left and
    entered change: every pass records its phase, and a count over thousands of apps each time would cost
    more than the pass."""
    key = (namespace, name)
    with _phases_lock:
        before = _phases.pop(key, None) if phase is None else _phases.get(key)
        if before == phase:
            return
        if phase is not None:
            _phases[key] = phase
        for changed, step in ((before, -1), (phase, 1)):
            if changed is not None:
                _counts[changed] += step
                APPS.labels(phase=changed).set(_counts[changed])


def forget_missing(present: Iterable[tuple[str, str]]) -> None:
    """Forget every app not in `present` (a full listing): deleted apps leave `maestro_apps`."""
    keep = set(present)
    with _phases_lock:
        for key in [key for key in _phases if key not in keep]:
            del _phases[key]
        _publish()


def forget_all() -> None:
    """A standby computes no phases: the acting replica's gauge is the truth."""
    with _phases_lock:
        _phases.clear()
        _publish()


def instrumented(
    pass_: Callable[Concatenate[Mapping[str, Any], P], OutcomeT],
) -> Callable[Concatenate[Mapping[str, Any], P], OutcomeT]:
    """Count, time and track one reconcile pass, and keep `maestro_apps` up to date with its phase."""

    @functools.wraps(pass_)
    def wrapper(app: Mapping[str, Any], /, *args: P.args, **kwargs: P.kwargs) -> OutcomeT:
        meta = app["metadata"]
        started = time.perf_counter()
        IN_FLIGHT.inc()
        try:
            outcome = pass_(app, *args, **kwargs)
        except BaseException:
            RECONCILES.labels(result="error").inc()
            raise
        finally:
            IN_FLIGHT.dec()
            DURATION.observe(time.perf_counter() - started)
        RECONCILES.labels(result=result_of(outcome)).inc()
        record_phase(meta["namespace"], meta["name"], outcome.phase)
        return outcome

    return wrapper


def applied(kind: str) -> None:
    """One server-side apply request sent for a child of this kind."""
    APPLIES.labels(kind=kind).inc()


def rollout_failed(reason: str, action: str) -> None:
    """A failed rollout was detected and acted on (rolled back, held, or only reported); `reason`: what showed it
    (controller/rollout.py's `failure_reason`)."""
    ROLLOUT_FAILURES.labels(reason=reason, action=action).inc()
