"""Waiting for the operator to go quiet: no reconcile pass for a while (its backlog of events drained)."""

from __future__ import annotations

import re
import time

from tests.e2e.operator_process import OperatorProcess

WRITES = re.compile(r"pass done: \S+ .*writes=(\d+) ")


def wait_quiet(op: OperatorProcess, *, quiet_for: float = 5.0, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    passes, since = op.passes(), time.monotonic()
    while time.monotonic() - since < quiet_for:
        if time.monotonic() > deadline:
            raise AssertionError(f"the operator never went quiet for {quiet_for:.0f}s within {timeout:.0f}s")
        time.sleep(0.5)
        if op.passes() != passes:
            passes, since = op.passes(), time.monotonic()


def writes_since(op: OperatorProcess, passes_before: int) -> int:
    """Apply requests the operator sent in the passes after the first `passes_before` (its debug lines)."""
    lines = [line for line in op.log().splitlines() if "pass done:" in line][passes_before:]
    return sum(int(m.group(1)) for line in lines if (m := WRITES.search(line)))
