"""What the control plane spends on a cluster as it is (issue 19's latency row: a change's rollout is the
controller manager's work, and it shares the cores): over `--window` seconds, each process's CPU, the controller
manager's work queues (items added, seconds of work, mean wait in the queue and mean work per item, from its
/metrics), and the API server's requests by verb and resource.

    .venv/bin/python benchmarks/control_plane.py --window 60 --keep-cluster --cluster-name perf-bench
"""

from __future__ import annotations

import json
import re
import ssl
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from restart import cpu_line

QUEUE_METRIC = re.compile(
    r"^workqueue_(depth|adds_total|work_duration_seconds_(?:sum|count)|queue_duration_seconds_(?:sum|count))"
    r'\{[^}]*\bname="([^"]+)"[^}]*\} (\S+)$'
)


class Queue(NamedTuple):
    """One work queue's totals so far, and its depth now."""

    depth: float = 0.0
    adds: float = 0.0
    work_seconds: float = 0.0
    works: float = 0.0
    wait_seconds: float = 0.0
    waits: float = 0.0

    def minus(self, earlier: Queue) -> Queue:
        """The totals since `earlier`, the depth now."""
        return Queue(self.depth, *(now - then for now, then in zip(self[1:], earlier[1:], strict=True)))


FIELDS = {
    "depth": "depth",
    "adds_total": "adds",
    "work_duration_seconds_sum": "work_seconds",
    "work_duration_seconds_count": "works",
    "queue_duration_seconds_sum": "wait_seconds",
    "queue_duration_seconds_count": "waits",
}


def parse_queues(metrics: str) -> dict[str, Queue]:
    """Each work queue's totals from a component's Prometheus text."""
    fields: dict[str, dict[str, float]] = {}
    for line in metrics.splitlines():
        match = QUEUE_METRIC.match(line)
        if match:
            metric, name, value = match.groups()
            queue = fields.setdefault(name, {})
            queue[FIELDS[metric]] = queue.get(FIELDS[metric], 0.0) + float(value)
    return {name: Queue(**values) for name, values in fields.items()}


def controller_manager_metrics(state: Path) -> str:
    """The controller manager's /metrics, as the admin (its serving certificate is its own, self-signed)."""
    argv = json.loads((state / "argv" / "kube-controller-manager.json").read_text())
    port = next(arg.split("=", 1)[1] for arg in argv if arg.startswith("--secure-port="))
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.load_cert_chain(str(state / "pki" / "admin.crt"), str(state / "pki" / "admin.key"))
    with urllib.request.urlopen(f"https://127.0.0.1:{port}/metrics", context=context, timeout=30) as response:
        return str(response.read().decode())


def queue_lines(used: dict[str, Queue], window: float, top: int) -> list[str]:
    """The queues with the most work, each: items added per second, its workers' busy time over the window (a
    queue's workers run in parallel: 2.0 is two of them busy all along, on the CPU or waiting for the API
    server), the mean wait of an item in the queue before a worker took it, the mean work per item, and how many
    items wait at the end."""
    busiest = sorted(used.items(), key=lambda item: item[1].work_seconds, reverse=True)[:top]
    return [
        f"  {name:32s} {q.adds / window:6.1f} adds/s   workers busy {q.work_seconds / window:5.2f}"
        f"   mean wait {1000 * q.wait_seconds / max(q.waits, 1):8.1f} ms"
        f"   mean work {1000 * q.work_seconds / max(q.works, 1):6.1f} ms   waiting {q.depth:5.0f}"
        for name, q in busiest
        if q.adds or q.works
    ]


def request_lines(delta: Counter[common.Key], window: float, top: int) -> list[str]:
    return [
        f"  {verb:8s} {'/'.join(part for part in (group, resource, sub) if part):40s} {count / window:7.1f}/s"
        for (verb, group, resource, sub), count in delta.most_common(top)
    ]


def main() -> int:
    parser = common.base_parser(__doc__ or "")
    parser.add_argument("--window", type=float, default=60, help="seconds measured (default 60)")
    parser.add_argument("--top", type=int, default=12, help="queues and request kinds shown (default 12)")
    args = parser.parse_args()
    with common.cluster(args) as cluster:
        state = Path(cluster.env["KUBECONFIG"]).parent
        cpu_before, requests_before = cluster.cpu_seconds(), common.request_counts()
        queues_before = parse_queues(controller_manager_metrics(state))
        started = time.monotonic()
        time.sleep(args.window)
        queues_after = parse_queues(controller_manager_metrics(state))
        requests = common.diff(requests_before, common.request_counts())
        cpu_after = cluster.cpu_seconds()
        window = time.monotonic() - started
        cpu = {name: cpu_after[name] - cpu_before.get(name, 0.0) for name in cpu_after if name != "client"}
        used = {name: q.minus(queues_before.get(name, Queue())) for name, q in queues_after.items()}
        print(f"the control plane over {window:.0f} s: CPU s {cpu_line(cpu)}")
        print("the controller manager's busiest work queues:")
        print("\n".join(queue_lines(used, window, args.top)))
        print(
            f"the API server's requests ({sum(requests.values()) / window:.0f}/s in all), the most frequent:"
        )
        print("\n".join(request_lines(requests, window, args.top)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
