"""Change latency and restart.

1. Latency: one app's image changed, timed until its Deployment carries the new image and the app's status
   (in sync, Ready) reflects it; p50/p95 over --changes changes, first with that app alone, then with N other
   apps present. Beside it, a raw client doing the same work for an app of its own in the same namespace
   (raw_controller.py: a RawApp, which the operator leaves alone; the client watches it, renders it, applies
   the changed children, follows the rollout and writes the status), change for change in turn with the
   operator's.
2. Restart: with N+1 apps in sync, the operator is stopped and started again (verbose, to count passes): time
   until every app had its resume pass or was skipped by its settled mark, and the writes it made (goal 0),
   beside the time this client takes to list the apps and every child kind of the namespace a page at a time
   (what a start must read).
   `--before REV`: that commit's operator is restarted first, the same way.

`--existing NS`: the N apps are those already in sync in NS (left by `idle_cpu.py --keep-cluster`, say): none
is created, and the "alone" round is skipped. With `--all-namespaces`, they are every app of the cluster (left by
`memory.py --spread K`) and the operator watches every namespace; the changed apps are in NS.

    .venv/bin/python benchmarks/latency.py --apps 100 --changes 30
    .venv/bin/python benchmarks/latency.py --existing idle --changes 30 --keep-cluster --cluster-name perf-bench
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
import raw_controller
from common import log
from raw_controller import RawController
from steady_writes import image_rolled_out, set_image

from maestro import render
from maestro.api import models as api
from maestro.kube import client as kube
from maestro.render import kinds


@dataclass
class Change:
    """One image change, in seconds from the spec patch: until the Deployment carried the image (applied),
    until it was rolled out at it (the cluster's share), until the app's status showed it (done)."""

    applied: float = 0.0
    rolled_out: float = 0.0
    done: float = 0.0


def change(ns: str, app: str, image: str, kind: str = api.KIND) -> Change:
    """One image change of the app's `web` service, timed by phase (a GET of the app and its Deployment every
    20 ms)."""
    started = time.monotonic()
    timed = Change()
    set_image(ns, app, 0, image, kind)

    def done() -> bool:
        elapsed = time.monotonic() - started
        deployment = kube.get("Deployment", ns, render.child_name(app, "web"))
        if (
            deployment is not None
            and deployment["spec"]["template"]["spec"]["containers"][0]["image"] == image
        ):
            timed.applied = timed.applied or elapsed
            generation = int(deployment["metadata"]["generation"])
            if raw_controller.rolled_out(deployment, generation):
                timed.rolled_out = timed.rolled_out or elapsed
        return image_rolled_out(ns, app, "web", image, kind)

    common.wait_until(f"{app} to roll out {image}", done, 120, 0.02)
    timed.done = time.monotonic() - started
    return timed


def side_by_side(ns: str, count: int, round_: str) -> tuple[list[Change], list[Change]]:
    """`count` changes of the operator's app `solo` and of the raw client's RawApp `raw`, in turn."""
    operator, raw = [], []
    for i in range(count):
        operator.append(change(ns, "solo", f"registry.example.com/bench/web:{round_}.{i}"))
        raw.append(change(ns, "raw", f"registry.example.com/bench/web:raw-{round_}.{i}", raw_controller.KIND))
    return operator, raw


def create_raw_app(ns: str) -> None:
    """The raw client's RawApp `raw` (the benchmark app's spec), once: until the client has rolled it out."""
    if kube.get(raw_controller.KIND, ns, "raw") is None:
        kube.create(raw_controller.app_body(common.app_body("raw", ns)))
    common.wait_until("the raw client's app to be Ready", lambda: _raw_ready(ns), 120)


def _raw_ready(ns: str) -> bool:
    obj = kube.get(raw_controller.KIND, ns, "raw")
    return obj is not None and common.in_sync(obj) and (obj.get("status") or {}).get("phase") == "Ready"


def listing_seconds(ns: str | None) -> float:
    """This client's time to list the apps and every child kind of the namespace (None: of all), a page at a
    time."""
    started = time.monotonic()
    for kind in [api.KIND, *kinds.WATCHED]:
        for _ in kube.list_pages(kind, ns):
            pass
    return time.monotonic() - started


def restart(ns: str | None, n: int, label: str, source: Path, log_path: Path) -> dict[str, Any]:
    """Start the operator on n apps in sync: seconds until each had its resume pass or was skipped, the writes
    made."""
    op = common.Operator(ns, log_path, verbose=True, source=source)
    before = common.request_counts()
    started = time.monotonic()
    op.start()
    up = time.monotonic() - started
    try:
        common.wait_until(
            f"{label}: every app resumed or skipped",
            lambda: op.passes() + op.skipped_at_start() >= n,
            1800,
            0.1,
        )
        resumed = time.monotonic() - started
        cpu = op.cpu_seconds()
        time.sleep(5)
        requests = common.operator_requests(common.diff(before, common.request_counts()))
        passes, skipped = op.passes(), op.skipped_at_start()
        rss, peak = op.rss_mib(), op.rss_mib("VmHWM")
    finally:
        op.stop()
    return {
        "up": up,
        "resumed": resumed,
        "cpu": cpu,
        "passes": passes,
        "skipped": skipped,
        "requests": requests,
        "rss": rss,
        "peak": peak,
    }


def restart_line(label: str, r: dict[str, Any], listed: float) -> str:
    return (
        f"  {label:7s} start to startup handler done {r['up']:.1f} s; to every app resumed {r['resumed']:.1f} s"
        f" ({r['resumed'] / listed:.2f}x the listing), {r['cpu']:.1f} CPU s; passes {r['passes']}, skipped by"
        f" their mark {r['skipped']}, writes {r['requests']['writes']}, child LISTs"
        f" {r['requests']['child_lists']}, app reads {r['requests']['app_gets']}; RSS {r['rss']:.1f} MiB"
        f" (peak {r['peak']:.1f})"
    )


def summary(label: str, changes: list[Change]) -> str:
    """p50 and p95 of the whole change, then the p50 of each phase: to the apply, the rollout, the status."""
    ms = [c.done * 1000 for c in changes]

    def p50(phase: Callable[[Change], float]) -> float:
        return common.median([phase(c) * 1000 for c in changes])

    own = [(c.applied + c.done - c.rolled_out) * 1000 for c in changes]
    return (
        f"  {label:42s} p50 {common.median(ms):6.0f} ms   p95 {common.percentile(ms, 95):6.0f} ms   (n={len(ms)});"
        f" p50 of each phase: to the apply {p50(lambda c: c.applied):5.0f},"
        f" rollout {p50(lambda c: c.rolled_out - c.applied):5.0f},"
        f" to the status {p50(lambda c: c.done - c.rolled_out):5.0f} ms;"
        f" the client's own share (all but the rollout) p50 {common.median(own):4.0f}"
        f" p95 {common.percentile(own, 95):4.0f} ms"
    )


def ratios(label: str, operator: list[Change], raw: list[Change]) -> str:
    ours, theirs = [c.done for c in operator], [c.done for c in raw]
    return (
        f"  ratio operator/raw {label}: p50 {common.median(ours) / common.median(theirs):.2f},"
        f" p95 {common.percentile(ours, 95) / common.percentile(theirs, 95):.2f}"
    )


def main() -> int:
    parser = common.base_parser(__doc__ or "")
    parser.add_argument("--apps", type=int, default=500, help="other apps present (default 500)")
    parser.add_argument("--changes", type=int, default=30, help="changes per round (default 30)")
    parser.add_argument("--existing", metavar="NS", help="the other apps: those in sync in this namespace")
    parser.add_argument(
        "--all-namespaces",
        action="store_true",
        help="with --existing: the other apps are those of every namespace, the operator watching them all",
    )
    common.add_before(parser)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="maestro-bench-"))
    alone: list[Change] = []
    raw_alone: list[Change] = []
    with common.cluster(args) as cluster:
        if args.all_namespaces and not args.existing:
            parser.error("--all-namespaces needs --existing")
        ns = args.existing or cluster.namespace(f"latency-{int(time.time())}")
        scope = None if args.all_namespaces else ns  # the operator's, and the apps counted and listed
        others = [a for a in common.apps_in(scope) if a["metadata"]["name"] != "solo"]
        n = len(others) if args.existing else args.apps
        op = common.Operator(scope, workdir / "operator.log")
        op.start()
        try:
            raw_controller.install()
            with RawController(ns):
                create_raw_app(ns)
                if kube.get(api.KIND, ns, "solo") is None:
                    common.create_apps(["solo"], ns)
                if not args.existing:
                    common.wait_converged(ns, 1, phase="Ready", timeout=120)
                    alone, raw_alone = side_by_side(ns, args.changes, "alone")
                    log(summary("alone: operator", alone))
                    common.create_apps([f"app-{i:05d}" for i in range(n)], ns)
                took = common.wait_converged(scope, n + 1, phase="Ready", timeout=3600)
                log(f"{n} other apps Ready after {took:.0f}s")
                time.sleep(5)
                crowded, raw_crowded = side_by_side(ns, args.changes, f"crowded-{int(time.time())}")
                log(summary(f"with {n} others: operator", crowded))
            common.wait_converged(scope, n + 1, phase="Ready", timeout=600)
        finally:
            op.stop()
        # The client's listing varies run to run (15-23 s at 5000 apps on a quiet cluster): three, the median used.
        listings = [listing_seconds(scope) for _ in range(3)]
        listed = common.median(listings)
        restarts = [
            (label, restart(scope, n + 1, label, source, workdir / f"operator-restart-{label}.log"))
            for label, source in common.trees(args)
        ]

    print()
    print(f"change latency (image of one service; until its Deployment and the app's status show it), N={n}")
    if alone:
        print(summary("operator, the app alone", alone))
        print(summary("raw client, its app beside it", raw_alone))
        print(ratios("alone", alone, raw_alone))
    print(summary(f"operator, with {n} other apps", crowded))
    print(summary(f"raw client, among the operator's {n} apps", raw_crowded))
    print(ratios(f"with {n} apps", crowded, raw_crowded))
    print(
        f"restart with {n + 1} apps in sync; listing the apps and children takes this client {listed:.1f} s"
        f" (median of {', '.join(f'{t:.1f}' for t in listings)})"
    )
    for label, r in restarts:
        print(restart_line(label, r, listed))
    print(f"  logs: {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
