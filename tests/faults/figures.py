"""Figures the fault cases measure (trials, failures, recovery times), to quote in docs/reliability.md.

Each case calls `record`; the line goes to a JSON-lines file (MAESTRO_FAULTS_FIGURES, default
.faults/figures.jsonl at the repository root) and is printed in pytest's terminal summary.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from tests.faults import scale

ROOT = Path(__file__).resolve().parents[2]
FILE = Path(os.environ.get("MAESTRO_FAULTS_FIGURES", ROOT / ".faults" / "figures.jsonl"))
SESSION: list[dict[str, Any]] = []


def summary(seconds: list[float]) -> dict[str, float]:
    """min / median / max of some durations, rounded for reading."""
    if not seconds:
        return {}
    return {
        "min": round(min(seconds), 1),
        "median": round(statistics.median(seconds), 1),
        "max": round(max(seconds), 1),
    }


def record(case: str, **figures: Any) -> None:
    line = {
        "case": case,
        "mode": scale.MODE,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **figures,
    }
    SESSION.append(line)
    FILE.parent.mkdir(parents=True, exist_ok=True)
    with FILE.open("a") as out:
        out.write(json.dumps(line) + "\n")
    print(f"[faults] {json.dumps(line)}", flush=True)
