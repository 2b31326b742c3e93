"""Named waits for e2e tests: each has one default limit and says what it waited for when it gives up."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

DEFAULT_TIMEOUT = 90.0  # one limit for every wait; a slow shared machine needs headroom, not per-test tuning


def wait_until(
    what: str,
    probe: Callable[[], T],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = 0.5,
    describe: Callable[[], str] | None = None,
) -> T:
    """Call `probe` until it returns something truthy; return that. On timeout, fail naming `what`."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    last_error: Exception | None = None
    while True:
        try:
            last = probe()
            last_error = None
            if last:
                return last
        except AssertionError as error:  # a probe may assert to explain why it is not there yet
            last_error = error
        if time.monotonic() >= deadline:
            detail = describe() if describe else f"last value: {last!r}"
            if last_error is not None:
                detail += f"; last check said: {last_error}"
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} ({detail})")
        time.sleep(interval)


def condition_status(obj: dict[str, object] | None, condition: str) -> str | None:
    """The status ('True'/'False'/'Unknown') of a condition on an object, or None."""
    if not obj:
        return None
    status = obj.get("status")
    conditions = status.get("conditions", []) if isinstance(status, dict) else []
    for item in conditions or []:
        if item.get("type") == condition:
            return str(item.get("status"))
    return None
