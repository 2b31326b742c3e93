"""Change latency and restart.

1. Latency: one app's image changed, timed until its Deployment carries the new image and the app's status
   (in sync, Ready) reflects it; p50/p95 over --changes changes, first with that app alone, then with N other
   apps present. Beside it, the raw client's time for the same apply (one SSA of the changed Deployment).
2. Restart: with N+1 apps in sync, the operator is stopped and started again (verbose, to count passes): time
   until its resume pass has reconciled every app, and the writes it made (goal 0).

    .venv/bin/python benchmarks/latency.py --apps 100 --changes 30
"""

from __future__ import annotations

import copy
import functools
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from common import log
from steady_writes import image_rolled_out, set_image

from maestro import render
from maestro.kube import client as kube


def changes(ns: str, app: str, count: int, round_: str) -> list[float]:
    times = []
    for i in range(count):
        image = f"registry.example.com/bench/web:{round_}.{i}"
        started = time.monotonic()
        set_image(ns, app, 0, image)
        common.wait_until(
            f"{app} to roll out {image}",
            functools.partial(image_rolled_out, ns, app, "web", image),
            120,
            0.02,
        )
        times.append(time.monotonic() - started)
    return times


def raw_applies(ns: str, count: int) -> list[float]:
    """The same Deployment apply by the raw client (an unowned copy in its own namespace)."""
    body = common.app_body("raw", ns)
    deployment = next(c for c in render.render_app(body) if c["kind"] == "Deployment")
    times = []
    for i in range(count):
        child: dict[str, Any] = copy.deepcopy(deployment)
        child["spec"]["template"]["spec"]["containers"][0]["image"] = (
            f"registry.example.com/bench/web:raw.{i}"
        )
        started = time.monotonic()
        kube.apply(child)
        times.append(time.monotonic() - started)
    return times


def summary(label: str, times: list[float]) -> str:
    ms = [t * 1000 for t in times]
    return f"  {label:34s} p50 {common.median(ms):7.0f} ms   p95 {common.percentile(ms, 95):7.0f} ms   (n={len(ms)})"


def main() -> int:
    parser = common.base_parser(__doc__ or "")
    parser.add_argument("--apps", type=int, default=500, help="other apps present (default 500)")
    parser.add_argument("--changes", type=int, default=30, help="changes per round (default 30)")
    args = parser.parse_args()
    n = args.apps
    workdir = Path(tempfile.mkdtemp(prefix="maestro-bench-"))
    with common.cluster(args) as cluster:
        ns = cluster.namespace(f"latency-{int(time.time())}")
        raw_ns = cluster.namespace(f"latency-raw-{int(time.time())}")
        op = common.Operator(ns, workdir / "operator.log")
        op.start()
        try:
            common.create_apps(["solo"], ns)
            common.wait_converged(ns, 1, phase="Ready", timeout=120)
            alone = changes(ns, "solo", args.changes, "alone")
            log(f"alone: p50 {common.median(alone) * 1000:.0f} ms")
            raw = raw_applies(raw_ns, args.changes)
            common.create_apps([f"app-{i:05d}" for i in range(n)], ns)
            took = common.wait_converged(ns, n + 1, phase="Ready", timeout=1800)
            log(f"{n} other apps Ready after {took:.0f}s")
            time.sleep(5)
            crowded = changes(ns, "solo", args.changes, "crowded")
            log(f"with {n} others: p50 {common.median(crowded) * 1000:.0f} ms")
            common.wait_converged(ns, n + 1, phase="Ready", timeout=600)
        finally:
            op.stop()

        restart = common.Operator(ns, workdir / "operator-restart.log", verbose=True)
        before = common.request_counts()
        started = time.monotonic()
        restart.start()
        up = time.monotonic() - started
        try:
            common.wait_until("the resume pass over every app", lambda: restart.passes() >= n + 1, 900, 0.1)
            resumed = time.monotonic() - started
            time.sleep(5)
            writes = common.operator_requests(common.diff(before, common.request_counts()))
            passes = restart.passes()
        finally:
            restart.stop()

    print()
    print(f"change latency (image of one service; until its Deployment and the app's status show it), N={n}")
    print(summary("operator, the app alone", alone))
    print(summary(f"operator, with {n} other apps", crowded))
    print(summary("raw client, one SSA of the Deployment", raw))
    print(f"  ratio p50 crowded/alone {common.median(crowded) / common.median(alone):.2f}")
    print(f"restart with {n + 1} apps in sync")
    print(f"  process start to startup handler done {up:.1f} s; to {n + 1} passes done {resumed:.1f} s")
    print(f"  passes {passes}, writes {writes['writes']} ({writes})")
    print(f"  logs: {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
