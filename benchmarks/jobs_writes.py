"""Writes with jobs in the graph: N apps shaped like examples/migrations.yaml (db -> migrate -> api -> web and a
nightly CronJob), all Ready; then the operator's mutating requests (the API server's apiserver_request_total, as
steady_writes.py counts them) over a steady window, and per change until the app is Ready (or Degraded) again:
a new api image alone (no new run), a release (new migrate and api images: a run, then api), and a release whose
migration fails (kwok fails its pod: hack/cluster/cluster.py's stages). Goal: zero in steady state; per change,
the children changed plus the status writes, one more apply for a run, one pod LIST for a failed run.

    .venv/bin/python benchmarks/jobs_writes.py --apps 20 --window 120
"""

from __future__ import annotations

import copy
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from common import log

from maestro.api import models as api
from maestro.kube import client as kube

EXAMPLE = common.ROOT / "examples" / "migrations.yaml"


def body(name: str, namespace: str) -> dict[str, Any]:
    app: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    app["metadata"] = {"name": name, "namespace": namespace}
    return app


def patch(namespace: str, app: str, operations: list[dict[str, Any]]) -> None:
    kube.request(
        "PATCH",
        kube._path(api.KIND, namespace, app),
        body=operations,
        content_type="application/json-patch+json",
    )


def phase_at_generation(namespace: str, app: str, phase: str) -> Callable[[], bool]:
    def check() -> bool:
        obj = kube.get(api.KIND, namespace, app)
        return obj is not None and common.in_sync(obj) and (obj.get("status") or {}).get("phase") == phase

    return check


def pod_lists(delta: Counter[common.Key]) -> int:
    return sum(v for (verb, _, res, _), v in delta.items() if res == "pods" and verb == "LIST")


def measure(
    op: common.Operator, namespace: str, app: str, operations: list[dict[str, Any]], phase: str
) -> dict[str, int]:
    before = common.request_counts()
    passes = op.passes()
    patch(namespace, app, operations)
    common.wait_until(f"{app} {phase}", phase_at_generation(namespace, app, phase), 180, 0.2)
    time.sleep(3)  # late passes (child events of the rollout) are counted too
    delta = common.diff(before, common.request_counts())
    counts = common.operator_requests(delta)
    counts["app_writes"] -= 1  # the benchmark's own spec patch
    counts["writes"] -= 1
    counts["pod_lists"] = pod_lists(delta)
    counts["passes"] = op.passes() - passes
    return counts


def image(index: int, tag: str) -> list[dict[str, Any]]:
    """The ops that set api's image (services[1]) and, with index 0 too, migrate's (jobs[0])."""
    ops = [
        {"op": "replace", "path": "/spec/services/1/image", "value": f"registry.example.com/blog/api:{tag}"}
    ]
    if index == 0:
        ops.append(
            {"op": "replace", "path": "/spec/jobs/0/image", "value": f"registry.example.com/blog/api:{tag}"}
        )
    return ops


def main() -> int:
    parser = common.base_parser(__doc__ or "")
    parser.add_argument("--apps", type=int, default=20, help="how many apps (default 20)")
    parser.add_argument("--window", type=float, default=120, help="seconds of steady state (default 120)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="maestro-bench-"))
    names = [f"blog-{i:03d}" for i in range(args.apps)]
    with common.cluster(args) as cluster:
        ns = cluster.namespace(f"jobs-{int(time.time())}")
        with common.operator(ns, workdir / "operator.log", verbose=True) as op:
            started = time.monotonic()
            for name in names:
                kube.request("POST", kube._path(api.KIND, ns), body=body(name, ns))
            for name in names:
                common.wait_until(f"{name} Ready", phase_at_generation(ns, name, "Ready"), 600, 0.5)
            log(f"{len(names)} apps Ready (each a migration run) after {time.monotonic() - started:.1f}s")
            time.sleep(5)
            before = common.request_counts()
            passes = op.passes()
            time.sleep(args.window)
            delta = common.diff(before, common.request_counts())
            steady = common.operator_requests(delta) | {"pod_lists": pod_lists(delta)}
            steady_passes = op.passes() - passes

            changes: list[tuple[str, dict[str, int]]] = []
            failing = copy.deepcopy(image(0, "4.0.0"))
            failing.append(
                {
                    "op": "add",
                    "path": "/spec/jobs/0/podAnnotations",
                    "value": {"kwok.maestro.dev/exit-code": "3", "kwok.maestro.dev/message": "boom"},
                }
            )
            for label, ops, phase in (
                ("a new api image alone (no run)", image(1, "3.1.1"), "Ready"),
                ("a release: new migrate and api images (a run, then api)", image(0, "3.2.0"), "Ready"),
                ("a release whose migration fails (backoffLimit 1)", failing, "Degraded"),
            ):
                for name in names[:3]:
                    changes.append((label, measure(op, ns, name, ops, phase)))

        print()
        print(f"jobs: N={len(names)} apps like examples/migrations.yaml, window {args.window:.0f} s")
        print(f"  steady: operator writes {steady['writes']} ({steady}); passes {steady_passes}")
        for label in dict.fromkeys(label for label, _ in changes):
            rows = [counts for each, counts in changes if each == label]
            print(f"  {label}:")
            for counts in rows:
                print(
                    f"    applies {counts['applies']}, app writes {counts['app_writes']}, pod lists "
                    f"{counts['pod_lists']}, passes {counts['passes']}"
                )
        print(f"  log: {workdir / 'operator.log'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
