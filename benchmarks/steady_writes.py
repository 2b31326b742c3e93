"""Steady-state writes: after N apps have converged (all Ready), count the operator's mutating API requests over
a window (the API server's apiserver_request_total; see common.py for how the operator's requests are told
apart), cross-checked by the resourceVersions of every app and child. Then per spec change (one image changed,
so one Deployment): the writes made until the app is Ready again. Goal: zero in steady state; per change, no
more than the children changed plus one status write.

    .venv/bin/python benchmarks/steady_writes.py --apps 100 --window 300 --changes 5
"""

from __future__ import annotations

import functools
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from common import log

from maestro import render
from maestro.api import models as api
from maestro.kube import client as kube
from maestro.render import kinds


def versions(namespace: str) -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    for kind in (*kinds.KIND_NAMES, api.KIND):
        for obj in kube.list_objects(kind, namespace):
            out[(kind, obj["metadata"]["name"])] = obj["metadata"]["resourceVersion"]
    return out


def set_image(namespace: str, app: str, service_index: int, image: str, kind: str = api.KIND) -> None:
    patch = [{"op": "replace", "path": f"/spec/services/{service_index}/image", "value": image}]
    kube.request(
        "PATCH", kube._path(kind, namespace, app), body=patch, content_type="application/json-patch+json"
    )


def image_rolled_out(namespace: str, app: str, service: str, image: str, kind: str = api.KIND) -> bool:
    obj = kube.get(kind, namespace, app)
    assert obj is not None
    st: dict[str, Any] = obj.get("status") or {}
    if not common.in_sync(obj) or st.get("phase") != "Ready":
        return False
    images = {s.get("name"): s.get("image") for s in st.get("services") or []}
    dep = kube.get("Deployment", namespace, render.child_name(app, service))
    return (
        images.get(service) == image
        and dep is not None
        and (dep["spec"]["template"]["spec"]["containers"][0]["image"] == image)
    )


def quiet(op: common.Operator, seconds: float, timeout: float) -> float:
    """Wait until the operator has finished no pass for `seconds` (its event backlog is drained)."""
    started = time.monotonic()
    last, since = op.passes(), time.monotonic()
    while time.monotonic() - since < seconds:
        if time.monotonic() - started > timeout:
            raise TimeoutError("the operator kept making passes")
        time.sleep(0.5)
        if op.passes() != last:
            last, since = op.passes(), time.monotonic()
    return time.monotonic() - started


def main() -> int:
    parser = common.base_parser(__doc__ or "")
    parser.add_argument("--apps", type=int, default=100, help="how many apps (default 100)")
    parser.add_argument(
        "--window", type=float, default=300, help="seconds of steady state to watch (default 300)"
    )
    parser.add_argument("--changes", type=int, default=5, help="spec changes to count (default 5)")
    args = parser.parse_args()
    n = args.apps
    workdir = Path(tempfile.mkdtemp(prefix="maestro-bench-"))
    with common.cluster(args) as cluster:
        ns = cluster.namespace(f"steady-{int(time.time())}")
        with common.operator(ns, workdir / "operator.log", verbose=True) as op:
            common.create_apps([f"app-{i:05d}" for i in range(n)], ns)
            took = common.wait_converged(ns, n, phase="Ready", timeout=1800)
            log(f"{n} apps Ready after {took:.1f}s; waiting for the operator's backlog of events to drain")
            rss_ready = op.rss_mib()
            drained = quiet(op, 5, 600)
            rss_drained = op.rss_mib()
            log(f"no pass for 5 s after {drained:.1f}s more; watching {args.window:.0f} s")
            rv_before = versions(ns)
            passes_before = op.passes()
            before = common.request_counts()
            time.sleep(args.window)
            steady = common.operator_requests(common.diff(before, common.request_counts()))
            rv_after = versions(ns)
            changed = sorted(k for k, v in rv_after.items() if rv_before.get(k) != v)
            steady_passes = op.passes() - passes_before

            per_change: list[dict[str, int]] = []
            for i in range(args.changes):
                app = f"app-{i:05d}"
                image = f"registry.example.com/bench/web:2.0.{i}"
                before = common.request_counts()
                passes_before = op.passes()
                set_image(ns, app, 0, image)
                common.wait_until(
                    f"{app} to roll out {image}",
                    functools.partial(image_rolled_out, ns, app, "web", image),
                    120,
                    0.2,
                )
                time.sleep(3)  # late passes (child events of the rollout) are counted too
                counts = common.operator_requests(common.diff(before, common.request_counts()))
                counts["passes"] = op.passes() - passes_before
                counts["app_writes"] -= 1  # the benchmark's own spec patch
                counts["writes"] -= 1
                per_change.append(counts)

        print()
        print(f"steady-state writes, N={n} apps, window {args.window:.0f} s (safety pass every 60 s)")
        print(f"  operator writes in the window: {steady['writes']}  ({steady}); passes: {steady_passes}")
        print(
            f"  operator RSS when all were Ready {rss_ready:.0f} MiB, once its backlog drained ({drained:.0f} s later) "
            f"{rss_drained:.0f} MiB"
        )
        print(f"  objects whose resourceVersion changed: {len(changed)} {changed[:10]}")
        print(
            f"per spec change (one image: 1 Deployment changes; the Deployment and the Service (version label) change; goal <= 2 applies + 1 status write + 1 revision record), {args.changes} changes"
        )
        for counts in per_change:
            print(
                f"  applies {counts['applies']}, app writes {counts['app_writes']}, "
                f"revision writes {counts['revision_writes']}, passes {counts['passes']}, "
                f"rollout lists {counts['rollout_lists']}, events (all clients) {counts['events_all_clients']}"
            )
        print(f"  median writes per change: {common.median([c['writes'] for c in per_change])}")
        print(f"  log: {workdir / 'operator.log'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
