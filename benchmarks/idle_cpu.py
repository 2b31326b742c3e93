"""Idle cost: the operator's CPU with N apps in sync and nothing changing, over a window (goal: 3 % of a core or
less at 5000 apps, over 5 minutes), with its requests in the window.

The apps are created in the namespace `idle` and kept there with --keep-cluster: a second run (another
window, another tree, a larger N) creates only the apps missing. Each tree compared (`--before REV`: that
commit's operator first, then this tree's) is started on the same apps, left until its resume pass is over
(its CPU quiet for two readings in a row), then measured over the window: side by side, on the same cluster
and apps. `--profile S` then samples it with py-spy (a path to its binary: install it into a throwaway venv)
for S more seconds and prints where the time went, by function (own and inclusive share of the samples).

    .venv/bin/python benchmarks/idle_cpu.py --apps 1000 --window 300 --before 68ddf21 --keep-cluster

`--all-namespaces`: the apps in sync of every namespace (left by `memory.py --spread K`; none is created), the
operator watching them all.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from common import log

from maestro.api import models as api
from maestro.kube import client as kube

SAFETY_INTERVAL = 60.0  # runtime/settings.py's default: the window should hold several safety passes


def not_ready(ns: str | None) -> int:
    return sum(
        1 for app in kube.list_pages(api.KIND, ns) if (app.get("status") or {}).get("phase") != "Ready"
    )


def wait_quiet(op: common.Operator, ns: str | None, *, reading: float = 10.0, timeout: float = 7200) -> float:
    """Until, for two readings in a row, the operator's CPU stayed below 15 % of a core and it made no write
    and no app GET (a resume pass that reads live waits on the API server more than it computes): its startup
    and resume pass are over. And every app is Ready: an operator waiting for pods still being made is quiet,
    but not idle (stop 27); the pods of 5000 apps just created took over 30 minutes here (stop 31), hence the
    creation's timeout. Returns the seconds waited."""
    started, quiet = time.monotonic(), 0
    while quiet < 2 or (waiting := not_ready(ns)):
        if quiet >= 2:
            log(f"quiet, but {waiting} apps are not Ready yet: waiting on")
            quiet = 0
        if time.monotonic() - started > timeout:
            raise TimeoutError("the operator never went quiet")
        before, requests = op.cpu_seconds(), common.request_counts()
        time.sleep(reading)
        made = common.operator_requests(common.diff(requests, common.request_counts()))
        calm = (op.cpu_seconds() - before) / reading < 0.15 and made["writes"] == 0 and made["app_gets"] <= 2
        quiet = quiet + 1 if calm else 0
    return time.monotonic() - started


def profile(py_spy: str, pid: int, seconds: float, out: Path) -> str:
    """py-spy's samples of every thread (idle ones left out), summarised by function."""
    sampling = ["--duration", str(int(seconds)), "--rate", "100", "--format", "raw", "--nonblocking"]
    subprocess.run(
        [py_spy, "record", "--pid", str(pid), *sampling, "--output", str(out)],
        check=True,
        capture_output=True,
    )
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]  # by function, not line
        total += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
    lines = [f"  {total} samples (100/s while a thread was busy)", "  inclusive:"]
    lines += [f"    {n / total:6.1%}  {frame}" for frame, n in inclusive.most_common(25)]
    lines += ["  own:"] + [f"    {n / total:6.1%}  {frame}" for frame, n in own.most_common(15)]
    return "\n".join(lines)


def main() -> int:
    parser = common.base_parser(__doc__ or "")
    parser.add_argument("--apps", type=int, default=1000, help="apps in sync (default 1000)")
    parser.add_argument("--window", type=float, default=300, help="idle seconds measured (default 300)")
    parser.add_argument(
        "--all-namespaces",
        action="store_true",
        help="measure on the apps of every namespace (none created), the operator watching them all",
    )
    common.add_before(parser)
    parser.add_argument(
        "--py-spy", metavar="PATH", help="py-spy's binary, to profile each tree after its window"
    )
    parser.add_argument(
        "--profile", type=float, default=120, help="seconds profiled with --py-spy (default 120)"
    )
    args = parser.parse_args()
    n = args.apps
    workdir = Path(tempfile.mkdtemp(prefix="maestro-bench-"))
    results: list[tuple[str, float, float, dict[str, int], float, str]] = []
    with common.cluster(args) as cluster:
        ns = None if args.all_namespaces else cluster.namespace("idle")
        compared = common.trees(args)
        have = len(common.apps_in(ns))
        if ns is None:
            n = have
        elif have < n:
            log(f"creating {n - have} apps in {ns} (the {compared[-1][0]} tree's operator converges them)")
            with common.operator(ns, workdir / "operator-create.log", source=compared[-1][1]):
                common.create_apps([f"app-{i:05d}" for i in range(have, n)], ns)
                took = common.wait_converged(ns, n, phase="Ready", timeout=7200)
                log(f"{n} apps in sync after {took:.0f}s")
        for label, source in compared:
            with common.operator(ns, workdir / f"operator-{label}.log", source=source) as op:
                settled = wait_quiet(op, ns)
                log(f"{label}: quiet {settled:.0f}s after its start; measuring {args.window:.0f}s")
                before_requests, cpu_before = common.request_counts(), op.cpu_seconds()
                time.sleep(args.window)
                cpu = op.cpu_seconds() - cpu_before
                requests = common.operator_requests(common.diff(before_requests, common.request_counts()))
                rss = op.rss_mib()
                log(f"{label}: {cpu:.1f} CPU s in {args.window:.0f}s ({cpu / args.window:.1%} of a core)")
                summary = ""
                if args.py_spy:
                    summary = profile(
                        args.py_spy,
                        op.process.pid if op.process else 0,
                        args.profile,
                        workdir / f"{label}.raw",
                    )
                results.append((label, cpu, rss, requests, settled, summary))
    print()
    print(
        f"idle operator, {n} apps in sync, window {args.window:.0f} s (safety interval {SAFETY_INTERVAL:.0f} s)"
    )
    for label, cpu, rss, requests, settled, _ in results:
        print(
            f"  {label:7s} {cpu:6.1f} CPU s = {cpu / args.window:6.1%} of a core   RSS {rss:6.1f} MiB   "
            f"writes {requests['writes']}, child LISTs {requests['child_lists']}, app reads {requests['app_gets']}"
            f"   (quiet {settled:.0f} s after start)"
        )
    if len(results) == 2:
        print(f"  ratio now/before: {results[1][1] / max(results[0][1], 1e-9):.2f}")
    for label, *_, summary in results:
        if summary:
            print(f"\nprofile of {label} (py-spy, {args.profile:.0f} s idle):\n{summary}")
    print(f"  logs: {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
