"""Memory: the operator's RSS (VmRSS from /proc/<pid>/status) with 0, N1 and N2 apps in its namespace, each
measured once every app is in sync and the operator has been idle a few seconds; prints the increment per 1000
apps. Goal: 50 MiB or less per 1000 apps.

    .venv/bin/python benchmarks/memory.py --apps 1000 5000

`--namespace idle --keep-cluster` leaves the apps where `idle_cpu.py` and `latency.py --existing idle` measure them
next: one creation of 5000 apps (half an hour here) serves all three. `--spread K`: the apps go to K namespaces
(idle-00, idle-01, ...) in turn and the operator watches every namespace, as a platform team's would; then
`latency.py --existing idle-00 --all-namespaces` and `restart.py --all-namespaces` measure them.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from common import log


def report_trace(op: common.Operator, apps: int, workdir: Path) -> None:
    """Print the first lines of the allocation trace; the whole one stays in the work directory."""
    text = op.trace()
    path = workdir / f"trace-{apps}.txt"
    path.write_text(text)
    log(f"live allocations with {apps} apps (all of it: {path}):")
    print("\n".join(text.splitlines()[:200]), flush=True)


def main() -> int:
    parser = common.base_parser(__doc__ or "")
    parser.add_argument("--apps", type=int, nargs=2, default=[1000, 5000], metavar=("N1", "N2"))
    parser.add_argument(
        "--settle", type=float, default=5, help="idle seconds before each reading (default 5)"
    )
    parser.add_argument(
        "--trace",
        action="store_true",
        help="run the operator under tracemalloc and print where its live memory is at each reading "
        "(slower; its RSS is not the untraced figure)",
    )
    parser.add_argument(
        "--idle-window",
        type=float,
        default=0,
        help="after the last reading, the operator's CPU seconds and RSS over this many idle seconds "
        "(e.g. 130: two safety passes; default 0: not measured)",
    )
    parser.add_argument(
        "--namespace", help="where to create the apps (default memory-<time>); it must hold none yet"
    )
    parser.add_argument(
        "--spread",
        type=int,
        default=1,
        metavar="K",
        help="spread the apps over K namespaces, NAMESPACE-00 to NAMESPACE-<K-1>, the operator watching every "
        "namespace (default 1: all in NAMESPACE); the cluster must hold no app yet",
    )
    args = parser.parse_args()
    n1, n2 = args.apps
    workdir = Path(tempfile.mkdtemp(prefix="maestro-bench-"))
    readings: list[tuple[int, float]] = []
    with common.cluster(args) as cluster:
        base = args.namespace or f"memory-{int(time.time())}"
        for i in range(args.spread):
            cluster.namespace(common.spread_namespace(base, i, args.spread))
        scope = base if args.spread <= 1 else None  # None: every namespace
        if common.apps_in(scope):
            raise SystemExit(f"{scope or 'the cluster'} holds apps already: the readings start from 0 apps")
        trace_out = workdir / "trace.txt" if args.trace else None
        with common.operator(scope, workdir / "operator.log", trace_out=trace_out) as op:
            time.sleep(args.settle)
            readings.append((0, op.rss_mib()))
            log(f"0 apps: {readings[-1][1]:.1f} MiB")
            if args.trace:
                report_trace(op, 0, workdir)
            have = 0
            for n in (n1, n2):
                common.create_spread_apps(range(have, n), base, args.spread)
                have = n
                took = common.wait_converged(scope, n, timeout=3600)
                time.sleep(args.settle)
                readings.append((n, op.rss_mib()))
                log(f"{n} apps (in sync after {took:.0f}s): {readings[-1][1]:.1f} MiB")
                if args.trace:
                    report_trace(op, n, workdir)
            if args.idle_window:
                log(f"idle for {args.idle_window:.0f}s with {n2} apps in sync")
                cpu_before = op.cpu_seconds()
                time.sleep(args.idle_window)
                idle_cpu, idle_rss = op.cpu_seconds() - cpu_before, op.rss_mib()
    print()
    print("operator memory (VmRSS)")
    for n, rss in readings:
        print(f"  {n:6d} apps  {rss:8.1f} MiB")
    (_, r0), (_, r1), (_, r2) = readings
    print(
        f"  per 1000 apps: 0->{n1}: {(r1 - r0) / n1 * 1000:.1f} MiB, {n1}->{n2}: "
        f"{(r2 - r1) / (n2 - n1) * 1000:.1f} MiB, 0->{n2}: {(r2 - r0) / n2 * 1000:.1f} MiB  (goal <= 50)"
    )
    if args.idle_window:
        print(
            f"  idle with {n2} apps: {idle_cpu:.1f} CPU s in {args.idle_window:.0f} s "
            f"({idle_cpu / args.idle_window * 100:.0f}% of a core), RSS after it {idle_rss:.1f} MiB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
