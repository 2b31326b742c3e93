"""Convergence: N apps created at once, operator time versus a raw server-side-apply client, side by side.

Baseline first (its own namespace): CONCURRENCY threads, each creating an app, applying its pre-rendered
children (maestro.render.render_app, with the app's uid so they carry the ownerReference) and patching the
status once: the same work the operator must do, at the operator's concurrency. Then the control plane is
started afresh (empty, as the baseline found it) and the operator (`maestro run`) runs: the same N apps created
by the same threads, timed until every app has status.observedGeneration == metadata.generation and all
children exist. Each side's CPU seconds are printed by process (the machine is CPU-bound: the time ratio follows
the CPU ratio). `--same-cluster` runs the operator beside the baseline's apps instead, as before stop 12.

    .venv/bin/python benchmarks/convergence.py --apps 100
"""

from __future__ import annotations

import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from common import log

from maestro import render
from maestro.kube import client as kube


def baseline_one(name: str, namespace: str) -> int:
    app = common.create_app(name, namespace)
    children = render.render_app(app)
    for child in children:
        kube.apply(child)
    kube.patch_status(app, {"observedGeneration": app["metadata"]["generation"]})
    return len(children) + 2


def baseline(n: int, namespace: str) -> tuple[float, int]:
    names = [f"app-{i:05d}" for i in range(n)]
    started = time.monotonic()
    with ThreadPoolExecutor(common.CONCURRENCY) as pool:
        requests = sum(pool.map(lambda name: baseline_one(name, namespace), names))
    return time.monotonic() - started, requests


def deployments_settled(namespace: str, n: int) -> bool:
    deps = kube.list_objects("Deployment", namespace)
    return len(deps) >= n and all(
        (d.get("status") or {}).get("availableReplicas", 0) >= (d["spec"].get("replicas") or 1) for d in deps
    )


def holds_pods() -> bool:
    """Whether any pod is in the cluster (one page of one)."""
    return next(iter(kube.list_pages("Pod", None, page=1)), None) is not None


def main() -> int:
    parser = common.base_parser(__doc__ or "")
    parser.add_argument("--apps", type=int, default=500, help="how many apps (default 500)")
    parser.add_argument(
        "--same-cluster",
        action="store_true",
        help="run the operator in the baseline's cluster, beside its apps (the measurement before stop 12)",
    )
    args = parser.parse_args()
    n = args.apps
    workdir = Path(tempfile.mkdtemp(prefix="maestro-bench-"))
    with common.cluster(args) as cluster:
        if not args.same_cluster and holds_pods():
            # A kept cluster with another benchmark's apps: the baseline would run beside them (stop 28: 234 s
            # instead of 102), so it gets a fresh control plane too.
            log("the cluster holds pods already: a fresh control plane for the baseline")
            cluster.restart()
        base_ns = cluster.namespace(f"conv-base-{int(time.time())}")
        log(f"baseline: {n} apps, raw SSA of pre-rendered children, {common.CONCURRENCY} threads")
        before = common.request_counts()
        cpu_before = cluster.cpu_seconds()
        base_time, base_requests = baseline(n, base_ns)
        base_cpu = common.cpu_used(cpu_before, cluster.cpu_seconds())
        base_delta = common.operator_requests(common.diff(before, common.request_counts()))
        log(f"baseline done in {base_time:.1f}s ({base_requests} requests)")
        if args.same_cluster:
            log("letting the baseline's pods settle")
            common.wait_until(
                "the baseline's Deployments to be available",
                lambda: deployments_settled(base_ns, n * 3),
                600,
                2,
            )
        else:
            # Each side in an empty cluster: beside the baseline's apps, the controllers' periodic work on
            # their objects (HPA syncs every 15 s, ...) fell on the operator's run alone (CPU figures below).
            log("a fresh control plane for the operator")
            cluster.restart()
        op_ns = cluster.namespace(f"conv-op-{int(time.time())}")

        with common.operator(op_ns, workdir / "operator.log") as op:
            log(f"operator: {n} apps created with {common.CONCURRENCY} threads, waiting for convergence")
            before = common.request_counts()
            cpu_before = cluster.cpu_seconds(operator=op.cpu_seconds())
            started = time.monotonic()
            common.create_apps([f"app-{i:05d}" for i in range(n)], op_ns)
            created = time.monotonic() - started
            common.wait_converged(op_ns, n, timeout=1800)
            op_time = time.monotonic() - started
            op_cpu = common.cpu_used(cpu_before, cluster.cpu_seconds(operator=op.cpu_seconds()))
            op_delta = common.operator_requests(common.diff(before, common.request_counts()))
            log(
                f"operator converged in {op_time:.1f}s (apps created after {created:.1f}s); waiting for Ready"
            )
            ready = common.wait_converged(op_ns, n, phase="Ready", timeout=1800) + op_time
            ready_delta = common.operator_requests(common.diff(before, common.request_counts()))
            rss = op.rss_mib()

        children = common.expected_children(op_ns)
        print()
        print(f"convergence, N={n} apps ({children} children each), concurrency {common.CONCURRENCY}")
        print(f"  baseline (raw SSA)        {base_time:8.1f} s   {base_delta}")
        print(f"  operator (in sync)        {op_time:8.1f} s   {op_delta}")
        print(f"  operator (all Ready)      {ready:8.1f} s   {ready_delta}")
        print(f"  CPU, baseline:  {base_cpu}")
        print(f"  CPU, operator until in sync:  {op_cpu}")
        print(f"  ratio operator/baseline   {op_time / base_time:8.2f}     (goal <= 1.3)")
        print(
            f"  per app: baseline {base_time / n * 1000:.0f} ms, operator {op_time / n * 1000:.0f} ms;"
            f" operator app GETs per app until Ready {ready_delta['app_gets'] / n:.1f}"
            f" (one per pass), child LISTs per app {ready_delta['child_lists'] / n:.1f}"
        )
        print(f"  operator RSS at the end: {rss:.0f} MiB; log: {workdir / 'operator.log'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
