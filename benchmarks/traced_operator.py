"""`python -m maestro` under tracemalloc, for benchmarks/memory.py --trace: on SIGUSR1 it writes the live
allocations, grouped by the line of Maestro or kopf under which they were made
(growth since the first dump, largest first), to the file named by MAESTRO_TRACE_OUT.

Not part of the operator: tracemalloc slows every allocation, so its figures say where memory goes, while
the RSS figures come from untraced runs.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import tracemalloc
from pathlib import Path
from types import FrameType

FRAMES = 12  # deep enough to reach Maestro's or kopf's line under json, aiohttp and asyncio
TOP = 25
OURS = ("/maestro/", "/kopf/")
_first: dict[str, tuple[int, int]] | None = None  # the first dump's figures: later dumps print the growth


def holder(traceback: tracemalloc.Traceback) -> str:
    """The innermost line of Maestro or kopf under which the memory was allocated (else the innermost)."""
    for frame in reversed(traceback):  # tracemalloc lists the innermost frame last when limit > 1
        if any(part in frame.filename for part in OURS):
            return f"{frame.filename.split('site-packages/')[-1]}:{frame.lineno}"
    frame = traceback[-1]
    return f"{frame.filename}:{frame.lineno}"


def dump(_signum: int, _frame: FrameType | None) -> None:
    global _first
    gc.collect()
    snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    by_holder: dict[str, tuple[int, int]] = {}
    examples: dict[str, list[tracemalloc.Statistic]] = {}
    for stat in snapshot.statistics("traceback"):
        key = holder(stat.traceback)
        size, count = by_holder.get(key, (0, 0))
        by_holder[key] = (size + stat.size, count + stat.count)
        examples.setdefault(key, []).append(stat)
    base = _first or {}
    _first = _first or by_holder
    growth = {key: (size - base.get(key, (0, 0))[0], count) for key, (size, count) in by_holder.items()}
    total = sum(size for size, _ in by_holder.values())
    lines = [
        f"live: {total / 2**20:.1f} MiB; growth since the first dump: "
        f"{(total - sum(size for size, _ in base.values())) / 2**20:.1f} MiB, by line:"
    ]
    ranked = sorted(growth.items(), key=lambda item: -item[1][0])[:TOP]
    for key, (size, count) in ranked:
        lines.append(f"{size / 2**20:8.2f} MiB  ({count} blocks live)  {key}")
    lines.append("\nthe largest allocation sites under the five lines that grew most:")
    for key, _ in ranked[:5]:
        for stat in examples[key][:3]:  # statistics() sorts by size
            lines.append(f"\n{stat.size / 2**20:.2f} MiB ({stat.count} blocks) under {key}:")
            lines.extend(f"    {line}" for line in stat.traceback.format(limit=FRAMES))
    Path(os.environ["MAESTRO_TRACE_OUT"]).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    tracemalloc.start(FRAMES)
    signal.signal(signal.SIGUSR1, dump)
    from maestro.cli import main as cli

    sys.exit(cli.main(sys.argv[1:]))
