#!/usr/bin/env python3
"""Build and run a real, local Kubernetes control plane for Maestro's tests and demo.

kind needs a container engine; this machine has none. So this script builds the official binaries from their Go
modules (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and kwok, and for a real node
kubelet, kube-proxy, CoreDNS and metrics-server, pinned in `hack/cluster/gomod/*/go.mod`), caches them outside the
repository keyed by those pins, and runs them on loopback. kwok plays the kubelet: it keeps the simulated nodes
Ready and marks scheduled pods Running and Ready.

    cluster.py build              build (or reuse) the cached binaries
    cluster.py up [--nodes N]     start everything, write a kubeconfig, wait for the API and the nodes
    cluster.py status             what runs, and where the kubeconfig is
    cluster.py down               stop every process this script started and remove the state
    cluster.py env                print `export KUBECONFIG=...` for a shell
    cluster.py stop|start|restart COMPONENT
                                  stop or start one process (e.g. `apiserver`) with the same flags, ports,
                                  certificates and etcd data: for fault-injection tests

Only the standard library is used, so it runs before the project's virtualenv exists. `--name` selects a
cluster (default `maestro`); each has its own state directory, ports and kubeconfig.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # hack/: the shared gobuild module
import gobuild  # noqa: E402

GOMOD = HERE / "gomod"
CACHE_ROOT = Path(os.environ.get("MAESTRO_CACHE", Path.home() / ".cache" / "maestro"))
STATE_ROOT = Path(os.environ.get("MAESTRO_CLUSTER_STATE", CACHE_ROOT / "clusters"))


@dataclass(frozen=True)
class Binary:
    name: str
    module: str  # folder under gomod/
    package: str


BINARIES = (
    Binary("etcd", "kubernetes", "go.etcd.io/etcd/server/v3"),
    Binary("kube-apiserver", "kubernetes", "k8s.io/kubernetes/cmd/kube-apiserver"),
    Binary("kube-controller-manager", "kubernetes", "k8s.io/kubernetes/cmd/kube-controller-manager"),
    Binary("kube-scheduler", "kubernetes", "k8s.io/kubernetes/cmd/kube-scheduler"),
    Binary("kubectl", "kubernetes", "k8s.io/kubernetes/cmd/kubectl"),
    # The real node's binaries.
    Binary("kubelet", "kubernetes", "k8s.io/kubernetes/cmd/kubelet"),
    Binary("kube-proxy", "kubernetes", "k8s.io/kubernetes/cmd/kube-proxy"),
    # CoreDNS with only the plugins a cluster DNS needs (gomod/coredns/main.go says why). Its Corefile needs one
    # server block for `cluster.local:PORT in-addr.arpa:PORT ip6.arpa:PORT` with `bind ADDRESS`, and in it
    # `kubernetes cluster.local in-addr.arpa ip6.arpa { kubeconfig FILE }` (without a kubeconfig it expects to run
    # in a pod; no `fallthrough`: there is nothing to fall through to), plus `errors`, `cache 30`, `reload`,
    # `loadbalance`, `loop`, and `health ADDRESS:PORT` and `ready ADDRESS:PORT` (by default :8080 and :8181 on
    # every address). Any other name is answered REFUSED (no `.` block, no forward).
    Binary("coredns", "coredns", "maestro.dev/hack/cluster/coredns"),
    Binary("kwok", "kwok", "sigs.k8s.io/kwok/cmd/kwok"),
    # metrics-server runs as a host process with the admin kubeconfig (--kubeconfig, --authentication-kubeconfig,
    # --authorization-kubeconfig); aggregated requests need a front-proxy CA (--requestheader-client-ca-file here,
    # the API server's --requestheader-* and --proxy-client-* flags), --node-selector=type!=kwok keeps it from
    # scraping kwok's fake nodes (their 10.0.0.1 leaves the machine), and the kubelet's self-signed serving
    # certificate needs --kubelet-insecure-tls, or a certificate from the cluster CA for the node IP and
    # --kubelet-certificate-authority.
    Binary("metrics-server", "metrics-server", "sigs.k8s.io/metrics-server/cmd/metrics-server"),
)
PROCESSES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


def log(message: str) -> None:
    print(f"[cluster {time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---------------------------------------------------------------------------------------------------------------
# build


def module_version(module: str, path: str) -> str:
    """The version of `path` that gomod/<module>/go.mod requires (inside or outside a require block)."""
    for line in (GOMOD / module / "go.mod").read_text().splitlines():
        words = line.split("//")[0].split()
        if words[:1] == ["require"]:
            words = words[1:]
        if len(words) == 2 and words[0] == path:
            return words[1]
    raise SystemExit(f"{path} is not required in gomod/{module}/go.mod")


def kubernetes_version() -> str:
    return module_version("kubernetes", "k8s.io/kubernetes")


def cache_key() -> str:
    """Binaries are rebuilt only when a gomod/ folder's files (go.mod, go.sum, coredns's main.go) or the Go
    toolchain change."""
    digest = hashlib.sha256()
    for module in sorted({b.module for b in BINARIES}):
        for path in sorted((GOMOD / module).iterdir()):
            digest.update(f"{module}/{path.name}\n".encode())
            digest.update(path.read_bytes())
    digest.update(go_version().encode())
    return f"k8s-{kubernetes_version()}-{digest.hexdigest()[:12]}"


def go_version() -> str:
    if shutil.which("go") is None:
        raise SystemExit(
            "Go is needed to build the local control plane (https://go.dev/dl); it is not on PATH."
        )
    return subprocess.run(
        ["go", "env", "GOVERSION"], capture_output=True, text=True, check=True
    ).stdout.strip()


def bin_dir() -> Path:
    return CACHE_ROOT / cache_key() / "bin"


def version_ldflags(module: str) -> str:
    """Stamp the release into the binaries, as the upstream builds do, so `kubectl version` tells the truth.

    metrics-server stamps its own release into client-go's version package only, as its Makefile does: the
    component-base version is the Kubernetes version its API server library checks features against. CoreDNS
    keeps its version in its source.
    """
    flags = ["-s", "-w"]
    if module == "coredns":
        return " ".join(flags)
    if module == "metrics-server":
        version = module_version(module, "sigs.k8s.io/metrics-server")
        return " ".join([*flags, f"-X k8s.io/client-go/pkg/version.gitVersion={version}"])
    version = kubernetes_version()
    major, minor = version.lstrip("v").split(".")[:2]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate=1970-01-01T00:00:00Z",
        ]
    return " ".join(flags)


def go_build(module: str, binaries: list[Binary], out: Path) -> None:
    names = ", ".join(b.name for b in binaries)
    gobuild.go_build(names, GOMOD / module, [b.package for b in binaries], out, version_ldflags(module), log)
    # go names a binary after its package path's last element, skipping a major-version suffix (`server/v3`).
    for binary in binaries:
        elements = binary.package.split("/")
        built = out / (elements[-2] if re.fullmatch(r"v\d+", elements[-1]) else elements[-1])
        if built.name != binary.name and built.exists():
            built.rename(out / binary.name)


# kwok ships its behaviour as Stage objects inside its Go module; these make nodes Ready (with leases) and pods
# Running/Ready at once, like kwokctl's defaults.
KWOK_STAGES = (
    "node/fast/node-initialize.yaml",
    "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "pod/fast/pod-ready.yaml",
    "pod/fast/pod-complete.yaml",
    "pod/fast/pod-delete.yaml",
)


# Maestro's own stages, on top of kwok's: a pod of a Job that carries one of these annotations (a job's
# podAnnotations) runs for `duration` ("5s") before it ends, and with a non-zero `exit-code` it fails with that
# code and `message` as its termination message, as its container would on a real node. Their weight makes kwok
# pick them over its own pod-complete stage (which completes every Job's pod at once). The tests that use them
# also give the container a command doing the same, so that they hold on a real node too.
JOB_POD_ANNOTATIONS = {
    "duration": "kwok.maestro.dev/duration",
    "exit-code": "kwok.maestro.dev/exit-code",
    "message": "kwok.maestro.dev/message",
}


def _annotation(name: str) -> str:
    return f'.metadata.annotations["{JOB_POD_ANNOTATIONS[name]}"]'


_JOB_POD_RUNNING = [
    {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"},
    {"key": ".status.phase", "operator": "In", "values": ["Running"]},
    {"key": ".metadata.ownerReferences.[].kind", "operator": "In", "values": ["Job"]},
]
_ENDED = """{{ $now := Now }}
{{ $annotations := or .metadata.annotations dict }}
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: false
  restartCount: 0
  started: false
  state:
    terminated:
      exitCode: EXIT_CODE
      finishedAt: {{ $now | Quote }}
      reason: REASON
      MESSAGE
      startedAt: {{ $now | Quote }}
{{ end }}
phase: PHASE
"""
MAESTRO_KWOK_STAGES: list[dict[str, object]] = [
    {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Stage",
        "metadata": {"name": f"maestro-job-pod-{outcome}"},
        "spec": {
            "resourceRef": {"apiGroup": "v1", "kind": "Pod"},
            "selector": {"matchExpressions": [*_JOB_POD_RUNNING, *selector]},
            "weight": 100,
            "delay": {"durationMilliseconds": 0, "durationFrom": {"expressionFrom": _annotation("duration")}},
            "next": {"statusTemplate": template},
        },
    }
    for outcome, selector, template in (
        (
            "succeeded",
            [
                {"key": _annotation("duration"), "operator": "Exists"},
                {"key": _annotation("exit-code"), "operator": "DoesNotExist"},
            ],
            _ENDED.replace("EXIT_CODE", "0")
            .replace("REASON", "Completed")
            .replace("MESSAGE", "")
            .replace("PHASE", "Succeeded"),
        ),
        (
            "failed",
            [{"key": _annotation("exit-code"), "operator": "Exists"}],
            _ENDED.replace("EXIT_CODE", f'{{{{ index $annotations "{JOB_POD_ANNOTATIONS["exit-code"]}" }}}}')
            .replace("REASON", "Error")
            .replace(
                "MESSAGE",
                f'message: {{{{ or (index $annotations "{JOB_POD_ANNOTATIONS["message"]}") "" | Quote }}}}',
            )
            .replace("PHASE", "Failed"),
        ),
    )
]


def write_maestro_stages(cluster: Cluster) -> Path:
    """Maestro's stages as a second kwok config file, in the cluster's own state (not the binaries' cache)."""
    path = cluster.state / "kwok-maestro-stages.yaml"
    path.write_text("\n---\n".join(json.dumps(stage, indent=1) for stage in MAESTRO_KWOK_STAGES))
    return path


def write_kwok_stages(out: Path) -> None:
    module_dir = subprocess.run(
        ["go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/kwok"],
        cwd=GOMOD / "kwok",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    stages = [(Path(module_dir) / "kustomize" / "stage" / name).read_text() for name in KWOK_STAGES]
    (out / "kwok-stages.yaml").write_text("\n---\n".join(stages))


def build() -> Path:
    target = bin_dir()
    if all((target / b.name).exists() for b in BINARIES) and (target / "kwok-stages.yaml").exists():
        log(f"binaries are cached in {target}")
        return target
    started = time.monotonic()
    staging = target.parent / "bin.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for module in sorted({b.module for b in BINARIES}, reverse=True):
        go_build(module, [b for b in BINARIES if b.module == module], staging)
    write_kwok_stages(staging)
    missing = [b.name for b in BINARIES if not (staging / b.name).exists()]
    if missing:
        raise SystemExit(f"build finished without {missing}")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)  # atomic: a cache directory is either complete or absent
    log(f"built {len(BINARIES)} binaries in {int(time.monotonic() - started)}s into {target}")
    return target


# ---------------------------------------------------------------------------------------------------------------
# up / down / status


@dataclass(frozen=True)
class Cluster:
    name: str

    @property
    def state(self) -> Path:
        return STATE_ROOT / self.name

    @property
    def kubeconfig(self) -> Path:
        return self.state / "kubeconfig"

    @property
    def pki(self) -> Path:
        return self.state / "pki"

    def pid_file(self, process: str) -> Path:
        return self.state / "pids" / process

    def log_file(self, process: str) -> Path:
        return self.state / "logs" / f"{process}.log"

    def argv_file(self, process: str) -> Path:
        return self.state / "argv" / f"{process}.json"

    def running(self) -> dict[str, int]:
        alive = {}
        for process in PROCESSES:
            try:
                pid = int(self.pid_file(process).read_text())
            except (FileNotFoundError, ValueError):
                continue
            if pid_alive(pid):
                alive[process] = pid
        return alive


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (FileNotFoundError, IndexError):
        return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(pki: Path) -> None:
    """A CA, the API server's serving certificate, an admin client certificate and the service-account key."""
    if (pki / "admin.crt").exists():
        return
    pki.mkdir(parents=True, exist_ok=True)
    days = "3650"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
            "-days", days, "-subj", "/CN=maestro-local-ca", cwd=pki)  # fmt: skip
    (pki / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,"
        "DNS:kubernetes.default.svc,IP:10.96.0.1\nextendedKeyUsage=serverAuth\n"
    )
    (pki / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name, subject, ext in (
        ("server", "/CN=kube-apiserver", "server.ext"),
        ("admin", "/O=system:masters/CN=maestro-admin", "client.ext"),
    ):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", subject, cwd=pki)  # fmt: skip
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.crt", "-days", days, "-extfile", ext, cwd=pki)  # fmt: skip
    openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
    openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)


def write_kubeconfig(cluster: Cluster, port: int) -> None:
    import base64

    def b64(name: str) -> str:
        return base64.b64encode((cluster.pki / name).read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster.name,
                "cluster": {
                    "server": f"https://127.0.0.1:{port}",
                    "certificate-authority-data": b64("ca.crt"),
                },
            }
        ],
        "users": [
            {
                "name": f"{cluster.name}-admin",
                "user": {"client-certificate-data": b64("admin.crt"), "client-key-data": b64("admin.key")},
            }
        ],
        "contexts": [
            {"name": cluster.name, "context": {"cluster": cluster.name, "user": f"{cluster.name}-admin"}}
        ],
        "current-context": cluster.name,
    }
    cluster.kubeconfig.write_text(json.dumps(config, indent=2))  # JSON is YAML; no PyYAML needed here
    cluster.kubeconfig.chmod(0o600)


def spawn(cluster: Cluster, name: str, argv: list[str]) -> int:
    # Kept so that `start` can bring one process back exactly as `up` started it.
    cluster.argv_file(name).parent.mkdir(parents=True, exist_ok=True)
    cluster.argv_file(name).write_text(json.dumps(argv))
    log_file = cluster.log_file(name).open("ab")
    proc = subprocess.Popen(
        argv, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
    )
    cluster.pid_file(name).write_text(str(proc.pid))
    return proc.pid


def wait_for(what: str, check: Callable[[], bool], timeout: float, cluster: Cluster, process: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if process not in cluster.running():
            tail = cluster.log_file(process).read_text(errors="replace")[-4000:]
            raise SystemExit(f"{process} exited while waiting for {what}; its log ends with:\n{tail}")
        time.sleep(0.25)
    raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}; see {cluster.log_file(process)}")


def https_ok(cluster: Cluster, port: int, path: str) -> bool:
    import ssl

    context = ssl.create_default_context(cafile=str(cluster.pki / "ca.crt"))
    context.load_cert_chain(str(cluster.pki / "admin.crt"), str(cluster.pki / "admin.key"))
    try:
        with urllib.request.urlopen(
            f"https://127.0.0.1:{port}{path}", context=context, timeout=2
        ) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def kubectl(bins: Path, cluster: Cluster, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [str(bins / "kubectl"), f"--kubeconfig={cluster.kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def node_manifest(index: int) -> dict[str, object]:
    """A node that kwok manages: labelled like a real one, with room for many pods (10,000: the benchmarks at
    the issue's sizes run up to 20,000 simulated pods on the 3 nodes; 1,000 left 500 apps never Ready)."""
    name = f"kwok-node-{index}"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/role": "agent",
                "node-role.kubernetes.io/agent": "",
                "topology.kubernetes.io/zone": f"zone-{'abc'[index % 3]}",
                "type": "kwok",
            },
        },
        "spec": {},
        "status": {
            "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "10000"},
            "capacity": {"cpu": "64", "memory": "256Gi", "pods": "10000"},
            "phase": "Running",
        },
    }


def up(cluster: Cluster, nodes: int) -> None:
    bins = build()
    alive = cluster.running()
    if alive and set(alive) == set(PROCESSES) and cluster.kubeconfig.exists():
        log(f"cluster {cluster.name!r} is already running; kubeconfig: {cluster.kubeconfig}")
        return
    if alive:
        log(f"cluster {cluster.name!r} is half running ({', '.join(alive)}); restarting it")
        down(cluster)
    started = time.monotonic()
    for sub in ("pids", "logs", "etcd"):
        (cluster.state / sub).mkdir(parents=True, exist_ok=True)
    make_pki(cluster.pki)
    pki = cluster.pki
    etcd_port, etcd_peer, api_port = free_port(), free_port(), free_port()
    kcm_port, sched_port, kwok_port = free_port(), free_port(), free_port()
    (cluster.state / "ports.json").write_text(
        json.dumps({"etcd": etcd_port, "kube-apiserver": api_port, "kwok": kwok_port})
    )

    log(f"starting etcd on 127.0.0.1:{etcd_port}")
    spawn(cluster, "etcd", [
        str(bins / "etcd"), "--name=maestro", f"--data-dir={cluster.state / 'etcd'}",
        f"--listen-client-urls=http://127.0.0.1:{etcd_port}", f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
        f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
        f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
        f"--initial-cluster=maestro=http://127.0.0.1:{etcd_peer}",
        "--unsafe-no-fsync",  # a throwaway test store: durability is not worth the latency
        "--quota-backend-bytes=4294967296", "--log-level=warn",
    ])  # fmt: skip
    wait_for("etcd health", lambda: http_ok(f"http://127.0.0.1:{etcd_port}/health"), 60, cluster, "etcd")

    log(f"starting kube-apiserver on https://127.0.0.1:{api_port}")
    spawn(cluster, "kube-apiserver", [
        str(bins / "kube-apiserver"), f"--etcd-servers=http://127.0.0.1:{etcd_port}",
        "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={api_port}",
        f"--tls-cert-file={pki / 'server.crt'}", f"--tls-private-key-file={pki / 'server.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        f"--service-account-key-file={pki / 'sa.pub'}", f"--service-account-signing-key-file={pki / 'sa.key'}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        "--service-cluster-ip-range=10.96.0.0/16", "--authorization-mode=Node,RBAC", "--allow-privileged=true",
        # Loopback cannot be the `kubernetes` Service's endpoint, and nothing here needs that endpoint.
        "--endpoint-reconciler-type=none",
        # Room for the benchmarks' burst of applies; the machine, not the limiter, should be the bound.
        "--max-requests-inflight=1000", "--max-mutating-requests-inflight=500",
        "--profiling=false", "--v=1",
    ])  # fmt: skip
    wait_for(
        "kube-apiserver /readyz",
        lambda: https_ok(cluster, api_port, "/readyz"),
        120,
        cluster,
        "kube-apiserver",
    )
    write_kubeconfig(cluster, api_port)

    log("starting kube-controller-manager and kube-scheduler")
    spawn(cluster, "kube-controller-manager", [
        str(bins / "kube-controller-manager"), f"--kubeconfig={cluster.kubeconfig}",
        f"--authentication-kubeconfig={cluster.kubeconfig}", f"--authorization-kubeconfig={cluster.kubeconfig}",
        "--leader-elect=false", "--bind-address=127.0.0.1", f"--secure-port={kcm_port}",
        f"--service-account-private-key-file={pki / 'sa.key'}", f"--root-ca-file={pki / 'ca.crt'}",
        "--use-service-account-credentials=true",
        # Lifted client limits: the default 20 QPS would make the controllers, not Maestro, the bottleneck.
        "--kube-api-qps=1000", "--kube-api-burst=2000",
        "--concurrent-deployment-syncs=20", "--concurrent-replicaset-syncs=20", "--concurrent-gc-syncs=50",
        "--controllers=*,-nodeipam",  # no pod CIDRs to hand out: kwok assigns pod IPs
        "--v=1",
    ])  # fmt: skip
    scheduler_config = cluster.state / "scheduler.yaml"
    scheduler_config.write_text(json.dumps({
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "clientConnection": {"kubeconfig": str(cluster.kubeconfig), "qps": 1000, "burst": 2000},
        "leaderElection": {"leaderElect": False},
    }))  # fmt: skip
    spawn(cluster, "kube-scheduler", [
        str(bins / "kube-scheduler"), f"--config={scheduler_config}", f"--kubeconfig={cluster.kubeconfig}",
        f"--authentication-kubeconfig={cluster.kubeconfig}", f"--authorization-kubeconfig={cluster.kubeconfig}",
        "--bind-address=127.0.0.1", f"--secure-port={sched_port}", "--v=1",
    ])  # fmt: skip

    log(f"starting kwok and registering {nodes} simulated nodes")
    spawn(cluster, "kwok", [
        str(bins / "kwok"), f"--config={bins / 'kwok-stages.yaml'}", f"--config={write_maestro_stages(cluster)}",
        f"--kubeconfig={cluster.kubeconfig}", "--manage-all-nodes=false",
        "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
        "--cidr=10.244.0.1/16", "--node-ip=10.0.0.1", "--node-lease-duration-seconds=40",
        f"--server-address=127.0.0.1:{kwok_port}",
    ])  # fmt: skip
    nodes_doc = {"apiVersion": "v1", "kind": "List", "items": [node_manifest(i) for i in range(nodes)]}
    kubectl(bins, cluster, "apply", "-f", "-", stdin=json.dumps(nodes_doc))
    wait_for(
        f"{nodes} nodes Ready",
        lambda: ready_nodes(bins, cluster) >= nodes,
        120,
        cluster,
        "kwok",
    )
    wait_for(
        "the default ServiceAccount",
        lambda: (
            subprocess.run(
                [
                    str(bins / "kubectl"),
                    f"--kubeconfig={cluster.kubeconfig}",
                    "get",
                    "serviceaccount",
                    "default",
                ],
                capture_output=True,
            ).returncode
            == 0
        ),
        60,
        cluster,
        "kube-controller-manager",
    )
    log(
        f"cluster {cluster.name!r} is up in {time.monotonic() - started:.1f}s; kubeconfig: {cluster.kubeconfig}"
    )


def ready_nodes(bins: Path, cluster: Cluster) -> int:
    result = subprocess.run(
        [str(bins / "kubectl"), f"--kubeconfig={cluster.kubeconfig}", "get", "nodes", "-o", "json"],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        return 0
    count = 0
    for node in json.loads(result.stdout)["items"]:
        conditions = node.get("status", {}).get("conditions", [])
        if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
            count += 1
    return count


def down(cluster: Cluster) -> None:
    alive = cluster.running()
    # Stop in reverse start order so nothing spends its last seconds retrying a vanished API server.
    for process in reversed(PROCESSES):
        if process in alive:
            signal_group(alive[process], signal.SIGTERM)
    # The API server drains its watches on SIGTERM; a throwaway cluster need not wait long for that.
    if not wait_gone(cluster, 10):
        for process, pid in cluster.running().items():
            log(f"{process} ({pid}) is still stopping after SIGTERM; killing it")
            signal_group(pid, signal.SIGKILL)
        if not wait_gone(cluster, 10):
            raise SystemExit(f"could not stop {', '.join(cluster.running())}")
    if alive:
        log(f"stopped {', '.join(alive)}")
    if cluster.state.exists():
        shutil.rmtree(cluster.state)
        log(f"removed {cluster.state}")


def signal_group(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signum)


def wait_gone(cluster: Cluster, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while cluster.running():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


ALIASES = {
    "apiserver": "kube-apiserver",
    "controller-manager": "kube-controller-manager",
    "scheduler": "kube-scheduler",
}


def component(name: str) -> str:
    process = ALIASES.get(name, name)
    if process not in PROCESSES:
        raise SystemExit(
            f"unknown component {name!r}; one of {', '.join(PROCESSES)} (or {', '.join(ALIASES)})"
        )
    return process


def stop_one(cluster: Cluster, process: str) -> None:
    """Stop one process (SIGTERM, then SIGKILL after 10 s); its state, ports and data stay."""
    pid = cluster.running().get(process)
    if pid is None:
        log(f"{process} is not running")
        return
    signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid_alive(pid):
        signal_group(pid, signal.SIGKILL)
        while pid_alive(pid):
            time.sleep(0.1)
    log(f"stopped {process} ({pid})")


def start_one(cluster: Cluster, process: str) -> None:
    """Start one stopped process with the argv `up` gave it; for the API server, wait until it is ready."""
    if process in cluster.running():
        log(f"{process} is already running")
        return
    if not cluster.argv_file(process).exists():
        raise SystemExit(
            f"cluster {cluster.name!r} was never started with `up`: nothing to start {process} from"
        )
    pid = spawn(cluster, process, json.loads(cluster.argv_file(process).read_text()))
    if process == "kube-apiserver":
        port = json.loads((cluster.state / "ports.json").read_text())["kube-apiserver"]
        wait_for("kube-apiserver /readyz", lambda: https_ok(cluster, port, "/readyz"), 120, cluster, process)
    elif process == "etcd":
        port = json.loads((cluster.state / "ports.json").read_text())["etcd"]
        wait_for("etcd health", lambda: http_ok(f"http://127.0.0.1:{port}/health"), 60, cluster, process)
    log(f"started {process} ({pid})")


def status(cluster: Cluster) -> int:
    alive = cluster.running()
    for process in PROCESSES:
        print(f"{process:<25} {'running, pid ' + str(alive[process]) if process in alive else 'stopped'}")
    if alive:
        print(f"kubeconfig: {cluster.kubeconfig}")
    return 0 if set(alive) == set(PROCESSES) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--name", default=os.environ.get("MAESTRO_CLUSTER_NAME", "maestro"), help="cluster name"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build or reuse the cached binaries")
    up_parser = sub.add_parser("up", help="start the control plane and the simulated nodes")
    up_parser.add_argument("--nodes", type=int, default=3, help="how many simulated nodes (default 3)")
    sub.add_parser("down", help="stop every process and remove the state")
    sub.add_parser("status", help="show what runs")
    sub.add_parser("env", help="print shell exports for this cluster")
    sub.add_parser("bin-dir", help="print where the binaries are cached")
    for verb in ("stop", "start", "restart"):
        one = sub.add_parser(verb, help=f"{verb} one component, keeping ports, certificates and etcd data")
        one.add_argument("component", help=f"one of {', '.join(PROCESSES)}, or apiserver")
    args = parser.parse_args(argv)
    cluster = Cluster(args.name)
    if args.command == "build":
        build()
    elif args.command == "up":
        up(cluster, args.nodes)
    elif args.command == "down":
        down(cluster)
    elif args.command == "status":
        return status(cluster)
    elif args.command == "env":
        print(f"export KUBECONFIG={cluster.kubeconfig}\nexport PATH={bin_dir()}:$PATH")
    elif args.command == "bin-dir":
        print(bin_dir())
    elif args.command in ("stop", "restart"):
        stop_one(cluster, component(args.component))
        if args.command == "restart":
            start_one(cluster, component(args.component))
    elif args.command == "start":
        start_one(cluster, component(args.component))
    return 0


if __name__ == "__main__":
    sys.exit(main())
