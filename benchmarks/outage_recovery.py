"""Recovery after an API server outage: N apps in sync, every app's image changed, and at once the API server
stopped (`hack/cluster/cluster.py stop kube-apiserver`) for --outage seconds, so that most of the passes the
change starts fail and back off while it is away. Then it is started again: the time from its answering
(the first listing of the apps that succeeds) until every app is in sync at the new generation with its Deployment
carrying the new image (goal: 10 s or less for 100 apps), and until every app is Ready.

Each tree compared (`--before REV`: that commit's operator first, then this tree's) gets its own namespace
and its own outage, one after the other on the same cluster.

    .venv/bin/python benchmarks/outage_recovery.py --apps 100 --outage 30 --before 68ddf21
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from common import log
from steady_writes import set_image

from maestro import render
from maestro.api import models as api
from maestro.kube import client as kube


def images_rolled_out(namespace: str, image: str, n: int) -> bool:
    """Whether n Deployments of the `web` service carry the image (one LIST)."""
    deployments = kube.list_objects("Deployment", namespace, {render.LABEL_MANAGED_BY: render.MANAGED_BY})
    web = [d for d in deployments if d["metadata"]["name"].endswith("-web")]
    rolled = [d for d in web if d["spec"]["template"]["spec"]["containers"][0]["image"] == image]
    return len(rolled) >= n


def all_in_sync(watch: common.AppWatch, n: int, phase: str | None = None) -> bool:
    apps = watch.snapshot()
    if len(apps) < n or not all(common.in_sync(a) for a in apps):
        return False
    return phase is None or all((a.get("status") or {}).get("phase") == phase for a in apps)


def recover(cluster: common.Cluster, ns: str, n: int, outage: float, ready_timeout: float) -> dict[str, Any]:
    """Change every app, stop the API server for `outage` s, start it: seconds until in sync and Ready."""
    image = f"registry.example.com/bench/web:outage.{int(time.time())}"
    names = [f"app-{i:05d}" for i in range(n)]
    with ThreadPoolExecutor(common.CONCURRENCY) as pool:
        list(pool.map(lambda name: set_image(ns, name, 0, image), names))
    cluster.script("stop", "kube-apiserver")
    stopped = time.monotonic()
    time.sleep(max(0.0, outage - (time.monotonic() - stopped)))
    # `start` returns once the server is ready by its own checks, seconds after it serves the first requests:
    # the clock starts at the first listing of the apps that succeeds (what the operator's passes need).
    starting = threading.Thread(target=cluster.script, args=("start", "kube-apiserver"))
    starting.start()
    common.wait_until("the API server to answer", lambda: common.listable(api.KIND), 300, 0.1)
    back = time.monotonic()
    log(f"the API server answers again after {back - stopped:.1f} s away")
    result: dict[str, Any] = {"away": back - stopped}
    with common.AppWatch(ns) as watch:
        common.wait_until(
            "every app in sync with the new image",
            lambda: all_in_sync(watch, n) and images_rolled_out(ns, image, n),
            900,
            0.2,
        )
        result["in_sync"] = time.monotonic() - back
        log(f"every app in sync {result['in_sync']:.1f} s after the API server answered")
        # Ready needs the pods Ready again: an outage longer than the node monitor's grace period has the
        # controller manager mark the simulated nodes' pods not ready, which kwok may not undo for minutes.
        try:
            common.wait_until("every app Ready", lambda: all_in_sync(watch, n, "Ready"), ready_timeout, 0.5)
            result["ready"] = time.monotonic() - back
        except TimeoutError:
            result["ready"] = None
    starting.join()
    return result


def main() -> int:
    parser = common.base_parser(__doc__ or "")
    parser.add_argument("--apps", type=int, default=100, help="apps (default 100)")
    parser.add_argument("--outage", type=float, default=30, help="seconds without an API server (default 30)")
    common.add_before(parser)
    parser.add_argument(
        "--ready-timeout", type=float, default=180, help="seconds to wait for every app Ready (default 180)"
    )
    args = parser.parse_args()
    n = args.apps
    workdir = Path(tempfile.mkdtemp(prefix="maestro-bench-"))
    results: list[tuple[str, dict[str, Any]]] = []
    with common.cluster(args) as cluster:
        for label, source in common.trees(args):
            ns = cluster.namespace(f"outage-{label}-{int(time.time())}")
            with common.operator(ns, workdir / f"operator-{label}.log", source=source):
                common.create_apps([f"app-{i:05d}" for i in range(n)], ns)
                took = common.wait_converged(ns, n, phase="Ready", timeout=1800)
                log(f"{label}: {n} apps Ready after {took:.0f}s")
                result = recover(cluster, ns, n, args.outage, args.ready_timeout)
                results.append((label, result))
            # The next tree's run does not share the API server with these (best effort: it may be slow still).
            with contextlib.suppress(kube.ApiError, OSError):
                common.delete_apps(ns)
    print()
    print(f"recovery after a {args.outage:.0f} s API server outage, {n} apps changed just before it")
    for label, r in results:
        print(
            f"  {label:7s} away {r['away']:5.1f} s; after it answered: every app in sync {r['in_sync']:6.1f} s, "
            + (f"every app Ready {r['ready']:6.1f} s" if r["ready"] is not None else "not all Ready in time")
        )
    print(f"  logs: {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
