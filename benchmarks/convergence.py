"""Convergence: N apps created at once, operator time versus a raw server-side-apply client, side by side.

Baseline first (its own namespace): CONCURRENCY threads, each creating an app, applying its pre-rendered
children (maestro.render.render_app, with the app's uid so they carry the ownerReference) and patching the
status once: the same work the operator must do, at the operator's concurrency. Then the control plane is
started afresh (empty, as the baseline found it) and the operator (`maestro run`) runs: the same N apps created
by the same threads, timed until every app has status.observedGeneration == metadata.generation and all
children exist. Each side's CPU seconds are printed by process (the machine is CPU-bound: the time ratio follows
the CPU ratio). `--same-cluster` runs the operator beside the baseline's apps instead, as before stop 12.

`--before REV` runs that commit's operator too, and `--rounds K` repeats the whole: each round a baseline, then
each tree (in turn: before-now, now-before, ...), every side on a fresh control plane, and each tree's ratio to
its round's baseline. Run so, two trees' ratios are side by side in one run.

    .venv/bin/python benchmarks/convergence.py --apps 100
    .venv/bin/python benchmarks/convergence.py --apps 500 --before ef100f6 --rounds 3
"""

from __future__ import annotations

import functools
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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


@dataclass(frozen=True)
class OperatorRun:
    """One operator's convergence: seconds until in sync and until Ready, its requests, CPU and memory."""

    in_sync: float
    requests: dict[str, int]
    ready: float
    ready_requests: dict[str, int]
    cpu: str
    rss: float


def fresh_control_plane(cluster: common.Cluster, why: str) -> None:
    # Each side in an empty cluster: beside another side's apps, the controllers' periodic work on their
    # objects (HPA syncs every 15 s, ...) fell on the later side alone (stop 12; stop 28: 234 s instead of 102).
    log(f"a fresh control plane for {why}")
    cluster.restart()


def run_operator(cluster: common.Cluster, n: int, source: Path, log_path: Path) -> OperatorRun:
    op_ns = cluster.namespace(f"conv-op-{int(time.time())}")
    with common.operator(op_ns, log_path, source=source) as op:
        log(f"operator: {n} apps created with {common.CONCURRENCY} threads, waiting for convergence")
        before = common.request_counts()
        cpu_before = cluster.cpu_seconds(operator=op.cpu_seconds())
        started = time.monotonic()
        common.create_apps([f"app-{i:05d}" for i in range(n)], op_ns)
        created = time.monotonic() - started
        common.wait_converged(op_ns, n, timeout=1800)
        in_sync = time.monotonic() - started
        cpu = common.cpu_used(cpu_before, cluster.cpu_seconds(operator=op.cpu_seconds()))
        requests = common.operator_requests(common.diff(before, common.request_counts()))
        log(f"operator converged in {in_sync:.1f}s (apps created after {created:.1f}s); waiting for Ready")
        ready = common.wait_converged(op_ns, n, phase="Ready", timeout=1800) + in_sync
        ready_requests = common.operator_requests(common.diff(before, common.request_counts()))
        return OperatorRun(in_sync, requests, ready, ready_requests, cpu, op.rss_mib())


def round_order(compared: list[tuple[str, Path]], index: int) -> list[tuple[str, Path]]:
    """The trees in turn: the first round in the given order, the next reversed, and so on, so that a drift of
    the machine's load over the run falls on each tree alike."""
    return compared if index % 2 == 0 else compared[::-1]


def main() -> int:
    parser = common.base_parser(__doc__ or "")
    parser.add_argument("--apps", type=int, default=500, help="how many apps (default 500)")
    parser.add_argument(
        "--rounds", type=int, default=1, help="rounds, each a baseline and every tree (default 1)"
    )
    common.add_before(parser)
    parser.add_argument(
        "--same-cluster",
        action="store_true",
        help="run the operator in the baseline's cluster, beside its apps (the measurement before stop 12)",
    )
    args = parser.parse_args()
    if args.same_cluster and (args.before or args.rounds != 1):
        parser.error("--same-cluster runs one operator once: not with --before or --rounds")
    n = args.apps
    workdir = Path(tempfile.mkdtemp(prefix="maestro-bench-"))
    compared = common.trees(args)
    ratios: dict[str, list[float]] = {label: [] for label, _ in compared}
    with common.cluster(args) as cluster:
        for index in range(args.rounds):
            if index > 0 or (not args.same_cluster and holds_pods()):
                fresh_control_plane(cluster, "the baseline")
            base_ns = cluster.namespace(f"conv-base-{int(time.time())}")
            log(
                f"round {index + 1}: baseline, {n} apps, raw SSA of pre-rendered children, {common.CONCURRENCY} threads"
            )
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
                    functools.partial(deployments_settled, base_ns, n * 3),
                    600,
                    2,
                )
            print()
            print(f"convergence, round {index + 1}, N={n} apps, concurrency {common.CONCURRENCY}")
            print(f"  baseline (raw SSA)        {base_time:8.1f} s   {base_delta}")
            print(f"  CPU, baseline:  {base_cpu}", flush=True)
            for label, source in round_order(compared, index):
                if not args.same_cluster:
                    fresh_control_plane(cluster, f"the operator ({label})")
                run = run_operator(cluster, n, source, workdir / f"operator-{label}-{index + 1}.log")
                ratios[label].append(run.in_sync / base_time)
                print_run(label, run, base_time, n)
    print()
    print(f"convergence ratios, operator in sync / baseline, N={n}, {args.rounds} round(s); logs: {workdir}")
    for label, values in ratios.items():
        listed = ", ".join(f"{v:.2f}" for v in values)
        print(f"  {label:7s} {listed}   median {common.median(values):.2f}   (goal <= 1.15)")
    return 0


def print_run(label: str, run: OperatorRun, base_time: float, n: int) -> None:
    print(f"  operator {label:7s} in sync  {run.in_sync:8.1f} s   {run.requests}")
    print(f"  operator {label:7s} all Ready {run.ready:7.1f} s   {run.ready_requests}")
    print(f"  CPU, operator {label} until in sync:  {run.cpu}")
    print(
        f"  ratio {label} / baseline {run.in_sync / base_time:6.2f};"
        f" per app: baseline {base_time / n * 1000:.0f} ms, operator {run.in_sync / n * 1000:.0f} ms;"
        f" app GETs per app until Ready {run.ready_requests['app_gets'] / n:.1f} (one per pass),"
        f" child LISTs per app {run.ready_requests['child_lists'] / n:.1f}; RSS at the end {run.rss:.0f} MiB",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
