"""Restart with the apps of a namespace in sync (issue 19's resume row): the operator is started on them,
`--rounds` times, and timed until every app had its resume pass or was skipped by its settled mark, beside
this client's time to list the apps and every child kind of the namespace a page at a time, measured right
before and right after each start (their mean is the round's baseline: one listing alone strays by a fifth
here). With each, the CPU the control plane's processes used meanwhile: what the API server spent serving it.
`--all-namespaces`: the apps of every namespace (left by `memory.py --spread K`), the operator watching them all.

The rounds start once every app is Ready with a settled mark of this tree's code: until then a start passes and
writes, which measures a convergence, not a resume (docs/benchmarks.md, stop 36). If some app is not, the
operator first runs until all are.

    .venv/bin/python benchmarks/restart.py --existing idle --rounds 3 --keep-cluster --cluster-name perf-bench
    .venv/bin/python benchmarks/restart.py --all-namespaces --rounds 3 --keep-cluster --cluster-name perf-bench
"""

from __future__ import annotations

import functools
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from common import log
from latency import listing_seconds, restart, restart_line

from maestro.controller import settledmark
from maestro.runtime.codedigest import code_digest

T = TypeVar("T")


def with_cpu(cluster: common.Cluster, work: Callable[[], T]) -> tuple[T, dict[str, float]]:
    """`work`'s result, and the CPU seconds each process of the control plane used meanwhile."""
    before = cluster.cpu_seconds()
    result = work()
    after = cluster.cpu_seconds()
    return result, {name: after[name] - before.get(name, 0.0) for name in after if name != "client"}


def cpu_line(used: dict[str, float]) -> str:
    shown = {name: seconds for name, seconds in used.items() if seconds >= 0.5}
    return "(" + ", ".join(f"{name} {seconds:.1f}" for name, seconds in sorted(shown.items())) + ")"


def unsettled(scope: str | None) -> int:
    """How many apps a start would pass: not Ready, or without a settled mark of this tree's code."""
    code = code_digest() or "no code digest"
    return sum(
        1
        for app in common.apps_in(scope)
        if (app.get("status") or {}).get("phase") != "Ready"
        or not str((app.get("status") or {}).get(settledmark.FIELD, "")).startswith(code)
    )


def settle(scope: str | None, log_path: Path) -> None:
    """Run the operator until every app is Ready with a mark of this tree's code."""
    left = unsettled(scope)
    if not left:
        return
    log(f"{left} apps not yet Ready with a mark of this code: the operator runs until every one is")
    with common.operator(scope, log_path):

        def settled() -> bool:
            left = unsettled(scope)
            log(f"{left} apps to settle")
            return left == 0

        common.wait_until("every app settled", settled, timeout=3600, interval=15)
        # The last passes' marks are written with their Ready status; a moment for the final writes.
        time.sleep(10)


def main() -> int:
    parser = common.base_parser(__doc__ or "")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--existing", metavar="NS", help="the namespace of the apps in sync")
    where.add_argument("--all-namespaces", action="store_true", help="the apps in sync of every namespace")
    parser.add_argument("--rounds", type=int, default=3, help="starts (default 3)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="maestro-bench-"))
    ratios: list[float] = []
    with common.cluster(args) as cluster:
        scope = None if args.all_namespaces else args.existing
        settle(scope, workdir / "operator-settle.log")
        n = len(common.apps_in(scope))
        print(
            f"restart with {n} apps in sync in {scope or 'all namespaces'}, {args.rounds} rounds", flush=True
        )
        for round_ in range(args.rounds):
            before, cpu_before = with_cpu(cluster, lambda: listing_seconds(scope))
            log_path = workdir / f"operator-{round_}.log"
            r, cpu_start = with_cpu(
                cluster,
                functools.partial(restart, scope, n, "now", common.ROOT / "operator", log_path),
            )
            after, cpu_after = with_cpu(cluster, lambda: listing_seconds(scope))
            listed = (before + after) / 2
            ratios.append(r["resumed"] / listed)
            print(
                f"round {round_ + 1}: this client's listing {before:.1f} s before, {after:.1f} s after;"
                f" the control plane's CPU s meanwhile: {cpu_line(cpu_before)} before, {cpu_line(cpu_after)}"
                f" after, {cpu_line(cpu_start)} during the start (till the operator stopped)",
                flush=True,
            )
            print(restart_line("now", r, listed), flush=True)
    print(f"x the listing: {', '.join(f'{v:.2f}' for v in ratios)}; median {common.median(ratios):.2f}")
    print(f"  logs: {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
