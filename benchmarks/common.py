"""Shared helpers of the benchmark scripts: the local cluster, the operator as a subprocess, the app shape,
waits with timeouts, and counting API requests from the API server's own metrics.

The scripts are plain Python (not tests): `.venv/bin/python benchmarks/<name>.py --help`. They talk to the API
through `maestro.kube.client` (the operator's own thin REST layer over pykube's session), so the raw-client baselines
use the same HTTP stack as the operator.

Attribution of requests: `apiserver_request_total` has no user-agent label, so the operator's requests are told
apart by what only the operator does in these runs: every request on `microserviceapps` (the app GETs, its
status patches, kopf's own patches), server-side applies (verb APPLY: the controllers and kwok never apply; dry runs counted apart, as they store
nothing) and
the Events it posts about apps (counted separately, as the controllers post Events too).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / ".venv" / "bin" / "python"
CLUSTER = ROOT / "hack" / "cluster" / "cluster.py"
CRD_FILE = ROOT / "crds" / "maestro.dev_microserviceapps.yaml"
# The local control plane's name (--cluster-name; MAESTRO_BENCH_CLUSTER): two benchmarks, or a benchmark and a
# test run, on one machine each need their own.
CLUSTER_NAME = os.environ.get("MAESTRO_BENCH_CLUSTER", "maestro-bench")
# = the operator's pass threads (runtime/settings.py, Settings.workers): baselines run at the same concurrency
CONCURRENCY = 8
STARTED_MARKER = "configure' succeeded"

sys.path.insert(0, str(ROOT / "operator"))

from maestro import render  # noqa: E402
from maestro.api import models as api  # noqa: E402
from maestro.kube import client as kube  # noqa: E402
from maestro.render import kinds  # noqa: E402
from maestro.runtime import childwatch  # noqa: E402

WRITE_VERBS = {"APPLY", "PATCH", "CREATE", "UPDATE", "DELETE", "DELETECOLLECTION", "POST", "PUT"}
CHILD_RESOURCES = {kind.plural for kind in kinds.CHILD_KINDS}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---------------------------------------------------------------------------------------------------------------
# cluster


class Cluster:
    """The local control plane (`maestro-bench` unless named): `up` (harmless when running) and `down` at the
    end."""

    def __init__(self, keep: bool, name: str = CLUSTER_NAME) -> None:
        self.keep = keep
        self.name = name
        self.env: dict[str, str] = {}

    def up(self) -> None:
        # Simulated nodes only: every pod here is kwok's, and a real node's kube-proxy (iptables for every
        # Service) and kube-router (every policy re-synced on each pod change) would take a core from what is
        # measured; the Services and policies are still created. Steady nodes: under thousands of pods kwok's
        # lease renewals fall behind, and the node lifecycle controller would evict and re-create pods for good.
        self.script("up", "--no-real-node", "--steady-nodes")
        out = subprocess.run(
            [str(PYTHON), str(CLUSTER), "--name", self.name, "env"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        for line in out.splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            self.env[key] = value.replace("$PATH", os.environ.get("PATH", ""))
        os.environ["KUBECONFIG"] = self.env["KUBECONFIG"]
        kube.load_config()
        self.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_FILE))
        # Until the apps are served, not only Established (which is not enough: a new API server answers 429
        # "storage is (re)initializing" to lists of the apps for some seconds, and an operator started then
        # lists its apps late, kopf retrying, and takes the apps created meanwhile for apps found at startup: a
        # live pass each, four LISTs). No `kubectl wait` before it: it fails at once on a CRD just created, whose
        # status has no conditions yet.
        wait_until("the apps' storage to serve lists", lambda: listable(api.KIND), timeout=120, interval=0.5)

    def down(self, *, even_if_kept: bool = False) -> None:
        if self.keep and not even_if_kept:
            log(f"keeping cluster {self.name} (--keep-cluster)")
            return
        self.script("down", check=even_if_kept)

    def script(self, *args: str, check: bool = True) -> None:
        """hack/cluster/cluster.py on this cluster: `up`, `down`, `stop kube-apiserver`, ..."""
        subprocess.run([str(PYTHON), str(CLUSTER), "--name", self.name, *args], check=check, cwd=ROOT)

    def restart(self) -> None:
        """Down and up again: a fresh, empty control plane (also with --keep-cluster)."""
        self.down(even_if_kept=True)
        self.up()

    def cpu_seconds(self, **others: float) -> dict[str, float]:
        """CPU time used so far by each process of the control plane (etcd, kube-apiserver, ...) and by
        this benchmark ("client"), with `others` (the operator's, say)."""
        pids = Path(self.env["KUBECONFIG"]).parent / "pids"
        used = {path.name: cpu_seconds(int(path.read_text())) for path in sorted(pids.iterdir())}
        return {**used, "client": own_cpu_seconds(), **others}

    def kubectl(self, *args: str) -> str:
        env = dict(os.environ, **self.env)
        return subprocess.run(["kubectl", *args], check=True, capture_output=True, text=True, env=env).stdout

    def namespace(self, name: str) -> str:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.kubectl("create", "namespace", name)
        return name


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far, from /proc (fields 14 and 15 of its stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """This process's CPU time so far (the raw client's work, and the waits' watch)."""
    times = os.times()
    return times.user + times.system


def cpu_used(before: dict[str, float], after: dict[str, float]) -> str:
    """Each process's CPU seconds between two readings, largest first, and their total."""
    used = sorted(((after[name] - before.get(name, 0.0), name) for name in after), reverse=True)
    parts = ", ".join(f"{name} {seconds:.0f}" for seconds, name in used)
    return f"{sum(seconds for seconds, _ in used):.0f} CPU s ({parts})"


@contextlib.contextmanager
def cluster(args: argparse.Namespace) -> Iterator[Cluster]:
    c = Cluster(keep=args.keep_cluster, name=args.cluster_name)
    c.up()
    try:
        yield c
    finally:
        c.down()


def export_tree(rev: str) -> Path:
    """The `operator/` directory of another commit (`git archive`), to run that tree's operator beside this
    one's: the parent of its `maestro` package."""
    target = Path(tempfile.mkdtemp(prefix=f"maestro-tree-{rev[:12]}-"))
    archive = subprocess.run(["git", "archive", rev, "operator"], check=True, capture_output=True, cwd=ROOT)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target / "operator"


def add_before(parser: argparse.ArgumentParser) -> None:
    """`--before REV`, which `trees` reads: that commit's operator runs first, side by side with this tree's."""
    parser.add_argument(
        "--before", metavar="REV", help="also run this commit's operator, first, on the same cluster"
    )


def trees(args: argparse.Namespace) -> list[tuple[str, Path]]:
    """(label, operator source) to compare: `--before REV` first, then this tree ("now")."""
    before = [("before", export_tree(args.before))] if getattr(args, "before", None) else []
    return [*before, ("now", ROOT / "operator")]


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--keep-cluster", action="store_true", help="leave the cluster running at the end")
    parser.add_argument(
        "--cluster-name",
        default=CLUSTER_NAME,
        help=f"the local cluster's name (default {CLUSTER_NAME}; MAESTRO_BENCH_CLUSTER)",
    )
    return parser


# ---------------------------------------------------------------------------------------------------------------
# the operator


class Operator:
    """`maestro run --namespace NS` (NS None: every namespace) as a subprocess, its log in a file."""

    def __init__(
        self,
        namespace: str | None,
        log_path: Path,
        *,
        verbose: bool = False,
        env: dict[str, str] | None = None,
        trace_out: Path | None = None,
        source: Path = ROOT / "operator",
    ):
        self.namespace = namespace
        self.log_path = log_path
        self.verbose = verbose
        self.env = env or {}
        # Run under tracemalloc (benchmarks/traced_operator.py): `trace()` writes the live allocations there.
        self.trace_out = trace_out
        self.source = source  # the `maestro` package's parent: another tree's, to compare side by side
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1", **self.env)
        env["PYTHONPATH"] = str(self.source)
        entry = ["-m", "maestro"]
        if self.trace_out is not None:
            env["MAESTRO_TRACE_OUT"] = str(self.trace_out)
            entry = [str(ROOT / "benchmarks" / "traced_operator.py")]
        offset = self.log().count(STARTED_MARKER)
        # No metrics port: the figures come from the API server and /proc, and port 8080 stays free for a demo
        # or the tests running meanwhile (a benchmark's operator on it once failed the demo test).
        scope = ["--namespace", self.namespace] if self.namespace else ["--all-namespaces"]
        argv = [str(PYTHON), *entry, "run", *scope, "--metrics-port", "0"]
        if self.verbose:
            argv.append("--verbose")
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)

        def started() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"the operator exited:\n{self.log()[-5000:]}")
            return self.log().count(STARTED_MARKER) > offset

        wait_until("the operator to start", started, timeout=60)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def rss_mib(self, field: str = "VmRSS") -> float:
        """Its resident memory now (VmHWM: the most it has held)."""
        assert self.process is not None
        text = Path(f"/proc/{self.process.pid}/status").read_text()
        match = re.search(rf"{field}:\s+(\d+) kB", text)
        assert match
        return int(match.group(1)) / 1024

    def cpu_seconds(self) -> float:
        assert self.process is not None
        return cpu_seconds(self.process.pid)

    def trace(self) -> str:
        """The live allocations by line, largest first (only when started with `trace_out`)."""
        assert self.process is not None and self.trace_out is not None
        self.trace_out.unlink(missing_ok=True)
        self.process.send_signal(signal.SIGUSR1)
        wait_until("the allocation trace", self.trace_out.exists, timeout=300, interval=1)
        time.sleep(1)  # written in one call, but let it finish
        return self.trace_out.read_text()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def passes(self) -> int:
        return self.log().count("pass done:")

    def skipped_at_start(self) -> int:
        """The apps its start gave no pass, their settled mark matching (verbose only)."""
        return self.log().count("settled as its mark says")


@contextlib.contextmanager
def operator(namespace: str | None, log_path: Path, **kwargs: Any) -> Iterator[Operator]:
    op = Operator(namespace, log_path, **kwargs)
    op.start()
    try:
        yield op
    finally:
        op.stop()


# ---------------------------------------------------------------------------------------------------------------
# the app shape: three services, autoscaling on one (no dependsOn, so nothing is gated)


def app_body(name: str, namespace: str, tag: str = "1.0.0") -> dict[str, Any]:
    return {
        "apiVersion": api.API_VERSION,
        "kind": api.KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "services": [
                {
                    "name": "web",
                    "image": f"registry.example.com/bench/web:{tag}",
                    "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
                },
                {
                    "name": "api",
                    "image": f"registry.example.com/bench/api:{tag}",
                    "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
                    "autoscaling": {"minReplicas": 2, "maxReplicas": 4, "targetCPUUtilizationPercentage": 70},
                },
                {"name": "worker", "image": f"registry.example.com/bench/worker:{tag}"},
            ]
        },
    }


def create_app(name: str, namespace: str) -> dict[str, Any]:
    body = app_body(name, namespace)
    path = kube._path(api.KIND, namespace)
    created: dict[str, Any] = kube.request("POST", path, body=body)
    return created


def create_apps(names: list[str], namespace: str) -> list[dict[str, Any]]:
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        return list(pool.map(lambda n: create_app(n, namespace), names))


def spread_namespace(base: str, index: int, spread: int) -> str:
    """Where app number `index` goes when the apps are spread over `spread` namespaces: `base` itself when 1,
    else base-00, base-01, ... in turn."""
    return base if spread <= 1 else f"{base}-{index % spread:02d}"


def create_spread_apps(indices: range, base: str, spread: int) -> None:
    """Apps app-NNNNN for these indices, each in its `spread_namespace`."""
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(lambda i: create_app(f"app-{i:05d}", spread_namespace(base, i, spread)), indices))


def apps_in(scope: str | None) -> list[dict[str, Any]]:
    """The apps of a namespace, or (None) of every namespace, a page at a time."""
    return list(kube.list_pages(api.KIND, scope))


def expected_children(namespace: str) -> int:
    return len(render.render_app(app_body("x", namespace)))


def delete_apps(namespace: str) -> None:
    prefix, plural = kube.KINDS[api.KIND]
    kube.request("DELETE", f"{prefix}/namespaces/{namespace}/{plural}")


def in_sync(app: dict[str, Any]) -> bool:
    st = app.get("status") or {}
    return bool(st.get("observedGeneration") == app["metadata"].get("generation"))


def count_children(scope: str | None) -> int:
    """Maestro's children in a namespace, or (None) in every namespace."""
    managed = {render.LABEL_MANAGED_BY: render.MANAGED_BY}
    return sum(sum(1 for _ in kube.list_pages(kind, scope, managed)) for kind in kinds.KIND_NAMES)


class AppWatch:
    """The apps of one namespace (None: of all), followed by one list+watch in a thread (the operator's own
    `KindWatch`).

    The convergence waits read this copy instead of listing every app twice a second (with 500 apps, about
    400 listings of 1.5 MiB each per run). That polling turned out not to move the convergence figure (1.38
    polling, 1.39 watching, docs/benchmarks.md), but its cost grew with N and fell on the operator's run only."""

    def __init__(self, namespace: str | None) -> None:
        self.apps: dict[tuple[str, str], dict[str, Any]] = {}  # by (namespace, name)
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.watch = childwatch.KindWatch(
            api.KIND, namespace, self._take, self.stopping, on_relist=self._keep
        )

    def __enter__(self) -> AppWatch:
        self.watch.list()
        threading.Thread(target=self.watch.follow, name="bench-app-watch", daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()  # the daemon thread ends at its next event; nothing waits for it

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.apps.values())

    def _take(self, event_type: str | None, obj: Mapping[str, Any]) -> None:
        name = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        with self.lock:
            if event_type == "DELETED":
                self.apps.pop(name, None)
            else:
                self.apps[name] = dict(obj)

    def _keep(self, _kind: str, _namespace: str | None, uids: set[str]) -> None:
        with self.lock:  # listed again after a gap: what is no longer listed was deleted meanwhile
            self.apps = {k: v for k, v in self.apps.items() if v["metadata"].get("uid") in uids}


def wait_converged(
    namespace: str | None, n: int, *, phase: str | None = None, timeout: float = 900, interval: float = 0.2
) -> float:
    """Until n apps are in sync (and in `phase`, if given) and all their children exist; returns seconds.
    The apps are read from a watch (AppWatch); the children are counted (four LISTs) once the apps are done."""
    started = time.monotonic()
    want_children = n * expected_children(namespace or "default")

    def apps_done(apps: list[dict[str, Any]]) -> bool:
        if len(apps) < n or not all(in_sync(a) for a in apps):
            return False
        return not phase or all((a.get("status") or {}).get("phase") == phase for a in apps)

    with AppWatch(namespace) as watch:
        wait_until(
            f"{n} apps in {namespace or 'all namespaces'} to converge" + (f" ({phase})" if phase else ""),
            lambda: apps_done(watch.snapshot()) and count_children(namespace) >= want_children,
            timeout,
            interval,
        )
    return time.monotonic() - started


def listable(kind: str) -> bool:
    """Whether the API server lists `kind` (in default): a custom resource's storage answers 429 for some
    seconds after its CRD is Established."""
    try:
        kube.list_objects(kind, "default")
    except (kube.ApiError, OSError):  # an error status, or no answer (requests' errors are OSErrors)
        return False
    return True


def wait_until(what: str, check: Callable[[], bool], timeout: float, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------------------------
# API server metrics

Key = tuple[str, str, str, str]  # verb, group, resource, subresource
METRIC = re.compile(r"^apiserver_request_total\{([^}]*)\} (\S+)$")
LABEL = re.compile(r'(\w+)="([^"]*)"')


def request_counts() -> Counter[Key]:
    http = kube.client()
    text = http.session.get(http.url.rstrip("/") + "/metrics", timeout=30).text
    counts: Counter[Key] = Counter()
    for line in text.splitlines():
        match = METRIC.match(line)
        if not match:
            continue
        labels = dict(LABEL.findall(match.group(1)))
        # A dry run stores nothing: it is a request, not a write (reconcile dry-runs each new rendering).
        dry_run = "-DRYRUN" if labels.get("dry_run") else ""
        key = (
            labels.get("verb", "") + dry_run,
            labels.get("group", ""),
            labels.get("resource", ""),
            labels.get("subresource", ""),
        )
        counts[key] += int(float(match.group(2)))
    return counts


def diff(before: Counter[Key], after: Counter[Key]) -> Counter[Key]:
    out: Counter[Key] = Counter()
    for key, value in after.items():
        if value - before.get(key, 0) > 0:
            out[key] = value - before.get(key, 0)
    return out


def operator_requests(delta: Counter[Key]) -> dict[str, int]:
    """The requests attributable to the operator (see the module docstring), summarised."""
    app_reads = sum(
        v
        for (verb, _, res, _), v in delta.items()
        if res == "microserviceapps" and verb in {"GET", "LIST", "WATCH"}
    )
    app_writes = sum(
        v for (verb, _, res, _), v in delta.items() if res == "microserviceapps" and verb in WRITE_VERBS
    )
    applies = sum(v for (verb, _, res, _), v in delta.items() if res in CHILD_RESOURCES and verb == "APPLY")
    dry_run_applies = sum(
        v for (verb, _, res, _), v in delta.items() if res in CHILD_RESOURCES and verb == "APPLY-DRYRUN"
    )
    child_lists = sum(
        v for (verb, _, res, _), v in delta.items() if res in CHILD_RESOURCES and verb == "LIST"
    )
    child_gets = sum(v for (verb, _, res, _), v in delta.items() if res in CHILD_RESOURCES and verb == "GET")
    child_deletes = sum(
        v for (verb, _, res, _), v in delta.items() if res in CHILD_RESOURCES and verb == "DELETE"
    )
    events = sum(
        v for (verb, _, res, _), v in delta.items() if res == "events" and verb in {"CREATE", "POST"}
    )
    # The app's revisions (issue 16): only the operator writes ControllerRevisions here (no StatefulSets).
    revision_writes = sum(
        v for (verb, _, res, _), v in delta.items() if res == "controllerrevisions" and verb in WRITE_VERBS
    )
    return {
        "writes": app_writes + applies + child_deletes + revision_writes,
        "app_writes": app_writes,
        "revision_writes": revision_writes,
        "applies": applies,
        "child_deletes": child_deletes,
        "dry_run_applies": dry_run_applies,
        "app_gets": app_reads,
        "child_lists": child_lists,
        "child_gets": child_gets,
        # a rollout's new ReplicaSet and its pods (controller/rollout.py); the controllers and kwok watch them
        "rollout_lists": sum(
            v for (verb, _, res, _), v in delta.items() if res in {"replicasets", "pods"} and verb == "LIST"
        ),
        "events_all_clients": events,
    }


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values)
