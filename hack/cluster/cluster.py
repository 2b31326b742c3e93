#!/usr/bin/env python3
"""Build and run a real, local Kubernetes control plane for Maestro's tests and demo.

kind needs a container engine; this machine has none. So this script builds the official binaries from their Go
modules (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and kwok, and for a real node
kubelet, kube-proxy, CoreDNS, metrics-server and kube-router, pinned in `hack/cluster/gomod/*/go.mod`), caches
them outside the repository keyed by those pins, and runs them on loopback. kwok plays the kubelet: it keeps the
simulated nodes Ready and marks scheduled pods Running and Ready.

    cluster.py build              build (or reuse) the cached binaries
    cluster.py up [--nodes N]     start everything, write a kubeconfig, wait for the API and the nodes
                                  (`--no-network-policies`: the real node without kube-router)
    cluster.py status             what runs, and where the kubeconfig is
    cluster.py down               stop every process this script started and remove the state
    cluster.py env                print `export KUBECONFIG=...` for a shell
    cluster.py import-image       the operator image (hack/image/image.py: built from the Dockerfile, or its
                                  cached archive) into the real node's containerd, also under the name the
                                  chart's default values give it (repository:appVersion): `helm install` runs it
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
import crdwait  # noqa: E402
import debian  # noqa: E402
import gobuild  # noqa: E402

sys.path.insert(0, str(HERE.parent / "images"))
import images  # noqa: E402

sys.path.insert(0, str(HERE))
import node  # noqa: E402

sys.path.insert(0, str(HERE.parent / "image"))
import image  # noqa: E402

GOMOD = HERE / "gomod"
SERVICE_CIDR = "10.96.0.0/16"
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
    # kube-router's network policy controller alone (`--run-firewall`, without its router and service proxy, the
    # parts with reported flaws: docs/real-node.md) enforces NetworkPolicies on the real node with iptables and
    # ipsets. It needs the node object (start it once the kubelet registered it), the `ipset` and `iptables`
    # commands, and --service-cluster-ip-range. It lets in what comes from the node's own addresses (kubelet
    # probes); everything it programs lives in the node's network namespace.
    Binary("kube-router", "kube-router", "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"),
)
PROCESSES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
# With a real node; kube-router only with network policies on (`up --no-network-policies` leaves it out).
NODE_PROCESSES = ("containerd", "kubelet", "kube-proxy", "coredns", "metrics-server", "kube-router")
POLICY_PROCESS = "kube-router"


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
    keeps its version in its source; kube-router takes its release in its own version package, as its Makefile
    does.
    """
    flags = ["-s", "-w"]
    if module == "coredns":
        return " ".join(flags)
    if module == "kube-router":
        version = module_version(module, "github.com/cloudnativelabs/kube-router/v2")
        return " ".join(
            [*flags, f"-X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version={version}"]
        )
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

# A service's pods that fail as a broken release would (issue 16's failed rollouts), keyed on the annotation
# `kwok.maestro.dev/fault` (a service's podAnnotations): `crash-loop` runs and crashes with exit code 1 (and
# `kwok.maestro.dev/message` as its termination message) every `kwok.maestro.dev/duration` (default 2s), its
# restart count growing, in CrashLoopBackOff between runs; `never-ready` runs and never gets ready;
# `image-pull` and `config-error` stay Pending, their container waiting in ImagePullBackOff or
# CreateContainerConfigError. Their weight makes kwok pick them over its own pod-ready stage.
FAULT_ANNOTATION = "kwok.maestro.dev/fault"
_FAULT = f'.metadata.annotations["{FAULT_ANNOTATION}"]'
_POD_ALIVE = {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"}
_NOT_READY = """{{ $now := Now }}
conditions:
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: Initialized
- lastTransitionTime: {{ $now | Quote }}
  status: "False"
  type: Ready
- lastTransitionTime: {{ $now | Quote }}
  status: "False"
  type: ContainersReady
"""
_CRASHED = """{{ $annotations := or .metadata.annotations dict }}
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: false
  restartCount: RESTARTS
  started: false
  state:
    waiting:
      reason: CrashLoopBackOff
      message: back-off restarting failed container
  lastState:
    terminated:
      exitCode: 1
      reason: Error
      message: {{ or (index $annotations "kwok.maestro.dev/message") "" | Quote }}
      startedAt: {{ $now | Quote }}
      finishedAt: {{ $now | Quote }}
{{ end }}
phase: Running
startTime: {{ or .status.startTime $now | Quote }}
"""


def _fault_stage(name: str, fault: list[str], phase: str, template: str, **spec: object) -> dict[str, object]:
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Stage",
        "metadata": {"name": f"maestro-pod-{name}"},
        "spec": {
            "resourceRef": {"apiGroup": "v1", "kind": "Pod"},
            "selector": {
                "matchExpressions": [
                    _POD_ALIVE,
                    {"key": ".status.phase", "operator": "In", "values": [phase]},
                    {"key": _FAULT, "operator": "In", "values": fault},
                ]
            },
            "weight": 100,
            "next": {"statusTemplate": template},
            **spec,
        },
    }


MAESTRO_KWOK_STAGES += [
    # The first run ends at once; then, while the pod lives, one more crash every `duration`.
    _fault_stage(
        "crash-loop-start", ["crash-loop"], "Pending", _NOT_READY + _CRASHED.replace("RESTARTS", "1")
    ),
    _fault_stage(
        "crash-loop-restart",
        ["crash-loop"],
        "Running",
        "{{ $now := Now }}\n"
        + _CRASHED.replace("RESTARTS", "{{ add1 (or (index $.status.containerStatuses 0).restartCount 0) }}"),
        delay={"durationMilliseconds": 2000, "durationFrom": {"expressionFrom": _annotation("duration")}},
    ),
    _fault_stage(
        "never-ready",
        ["never-ready"],
        "Pending",
        _NOT_READY
        + """containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: false
  restartCount: 0
  started: true
  state:
    running:
      startedAt: {{ $now | Quote }}
{{ end }}
phase: Running
startTime: {{ $now | Quote }}
""",
    ),
    # No timestamp in it: applied a second time, it changes nothing, so kwok's pod-ready never gets the pod.
    _fault_stage(
        "waiting",
        ["image-pull", "config-error"],
        "Pending",
        """{{ $fault := index .metadata.annotations "kwok.maestro.dev/fault" }}
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: false
  restartCount: 0
  started: false
  state:
    waiting:
{{ if eq $fault "image-pull" }}
      reason: ImagePullBackOff
      message: {{ printf "Back-off pulling image %q" .image | Quote }}
{{ else }}
      reason: CreateContainerConfigError
      message: simulated configuration error
{{ end }}
{{ end }}
phase: Pending
""",
    ),
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

    @property
    def node_paths(self) -> node.NodePaths:
        return node.NodePaths(self.state)

    def network(self) -> node.NodeNetwork | None:
        """The real node's addresses, or None for a cluster without one."""
        try:
            saved = json.loads((self.node_paths.root / "network.json").read_text())
        except FileNotFoundError:
            return None
        return node.NodeNetwork(int(saved["slot"]), self.name)

    def network_policies(self) -> bool:
        """Whether `up` started kube-router on the real node (a node saved before it existed: no)."""
        try:
            saved = json.loads((self.node_paths.root / "network.json").read_text())
        except FileNotFoundError:
            return False
        return bool(saved.get("networkPolicies", False))

    def expected(self) -> tuple[str, ...]:
        """The processes `up` started: the control plane, and the node's when it has one."""
        if not self.network():
            return PROCESSES
        return PROCESSES + tuple(p for p in NODE_PROCESSES if p != POLICY_PROCESS or self.network_policies())

    def ports(self) -> dict[str, object]:
        return dict(json.loads((self.state / "ports.json").read_text()))

    def running(self) -> dict[str, int]:
        alive = {}
        for process in PROCESSES + NODE_PROCESSES:
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


def issue_cert(pki: Path, name: str, subject: str, ext: str, ca: str = "ca", days: str = "3650") -> None:
    """A key and a certificate signed by `ca`, with `ext` as its extensions (SANs, key usage)."""
    (pki / f"{name}.ext").write_text(ext)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
            "-subj", subject, cwd=pki)  # fmt: skip
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", "-CAcreateserial",
            "-out", f"{name}.crt", "-days", days, "-extfile", f"{name}.ext", cwd=pki)  # fmt: skip


def make_ca(pki: Path, name: str, subject: str) -> None:
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.crt",
            "-days", "3650", "-subj", subject, cwd=pki)  # fmt: skip


CLIENT = "extendedKeyUsage=clientAuth\n"


def make_pki(pki: Path, api_ip: str, net: node.NodeNetwork | None) -> None:
    """A CA, the API server's serving certificate, an admin client certificate and the service-account key;
    with a real node also the node's identities (kubelet, kube-proxy) and the front-proxy pair the API server
    uses to call aggregated APIs (metrics-server) as the requesting user."""
    if (pki / "admin.crt").exists():
        return
    pki.mkdir(parents=True, exist_ok=True)
    make_ca(pki, "ca", "/CN=maestro-local-ca")
    server_ips = sorted({"127.0.0.1", api_ip, "10.96.0.1"})
    issue_cert(pki, "server", "/CN=kube-apiserver",
               "subjectAltName=" + ",".join([f"IP:{ip}" for ip in server_ips] + [
                   "DNS:localhost", "DNS:kubernetes", "DNS:kubernetes.default", "DNS:kubernetes.default.svc",
                   "DNS:kubernetes.default.svc.cluster.local"]) + "\nextendedKeyUsage=serverAuth\n")  # fmt: skip
    issue_cert(pki, "admin", "/O=system:masters/CN=maestro-admin", CLIENT)
    openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
    openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)
    if net is None:
        return
    issue_cert(pki, "kubelet", f"/CN={node.NODE_NAME}",
               f"subjectAltName=IP:{net.node_ip},DNS:{node.NODE_NAME}\nextendedKeyUsage=serverAuth\n")  # fmt: skip
    issue_cert(pki, "node", f"/O=system:nodes/CN=system:node:{node.NODE_NAME}", CLIENT)
    issue_cert(pki, "kube-proxy", "/CN=system:kube-proxy", CLIENT)  # bound to system:node-proxier by default
    # The aggregator checks the name of the APIService's Service, not the address it dials.
    issue_cert(pki, "metrics-server", "/CN=metrics-server",
               f"subjectAltName=IP:{net.node_ip},DNS:metrics-server.kube-system.svc\nextendedKeyUsage=serverAuth\n")  # fmt: skip
    make_ca(pki, "front-proxy-ca", "/CN=maestro-front-proxy-ca")
    issue_cert(pki, "front-proxy-client", "/CN=front-proxy-client", CLIENT, ca="front-proxy-ca")


def write_kubeconfig(cluster: Cluster, path: Path, server: str, identity: str) -> None:
    """A kubeconfig for `server` with the client certificate pki/<identity>.crt, certificates inline."""
    import base64

    def b64(name: str) -> str:
        return base64.b64encode((cluster.pki / name).read_bytes()).decode()

    user = f"{cluster.name}-{identity}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": cluster.name, "cluster": {"server": server, "certificate-authority-data": b64("ca.crt")}}
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": b64(f"{identity}.crt"),
                    "client-key-data": b64(f"{identity}.key"),
                },
            }
        ],
        "contexts": [{"name": cluster.name, "context": {"cluster": cluster.name, "user": user}}],
        "current-context": cluster.name,
    }
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML; no PyYAML needed here
    path.chmod(0o600)


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


def https_ok(cluster: Cluster, host: str, port: int, path: str) -> bool:
    import ssl

    context = ssl.create_default_context(cafile=str(cluster.pki / "ca.crt"))
    context.load_cert_chain(str(cluster.pki / "admin.crt"), str(cluster.pki / "admin.key"))
    try:
        with urllib.request.urlopen(f"https://{host}:{port}{path}", context=context, timeout=2) as response:
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


def gateway_api_crds() -> list[Path]:
    """The standard channel's CRDs of the Gateway API release pinned in gomod/gateway-api (from the Go module
    cache: `go mod download` fetches the module through the Go module proxy when it is not there yet)."""
    module_dir = subprocess.run(
        ["go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/gateway-api"],
        cwd=GOMOD / "gateway-api",
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if not module_dir or not Path(module_dir).is_dir():
        subprocess.run(
            ["go", "mod", "download", "sigs.k8s.io/gateway-api"], cwd=GOMOD / "gateway-api", check=True
        )
        return gateway_api_crds()
    standard = Path(module_dir) / "config" / "crd" / "standard"
    return sorted(p for p in standard.glob("gateway.networking.k8s.io_*.yaml") if "vap" not in p.name)


def install_gateway_api(cluster: Cluster, bins: Path) -> None:
    """The Gateway API's CRDs (HTTPRoute, Gateway, ...): Maestro renders HTTPRoutes, so the tests apply real
    ones. No gateway implementation runs: nothing accepts the routes."""
    crds = gateway_api_crds()
    kubectl(bins, cluster, "apply", "--server-side", "--force-conflicts", *[f"--filename={p}" for p in crds])
    crd = "crd/httproutes.gateway.networking.k8s.io"
    waited = crdwait.wait_established([str(bins / "kubectl"), f"--kubeconfig={cluster.kubeconfig}"], crd)
    if waited.returncode != 0:
        raise SystemExit(f"{crd} was not Established:\n{waited.stderr}")
    log(f"Gateway API CRDs installed ({module_version('gateway-api', 'sigs.k8s.io/gateway-api')})")


def up(
    cluster: Cluster, nodes: int, real_node: bool, network_policies: bool = True, steady_nodes: bool = False
) -> None:
    bins = build()
    alive = cluster.running()
    if alive and set(alive) == set(cluster.expected()) and cluster.kubeconfig.exists():
        log(f"cluster {cluster.name!r} is already running; kubeconfig: {cluster.kubeconfig}")
        install_gateway_api(cluster, bins)
        return
    if alive or cluster.state.exists():
        log(f"cluster {cluster.name!r} is half running ({', '.join(alive) or 'state left'}); restarting it")
        down(cluster)
    started = time.monotonic()
    for sub in ("pids", "logs", "etcd"):
        (cluster.state / sub).mkdir(parents=True, exist_ok=True)
    net = None
    if real_node:
        debian.need(node.HOST_TOOLS, log, "the real node")
        net = node.NodeNetwork(node.free_slot(STATE_ROOT, cluster.name), cluster.name)
        cluster.node_paths.root.mkdir(parents=True)
        (cluster.node_paths.root / "network.json").write_text(
            json.dumps({"slot": net.slot, "networkPolicies": network_policies})
        )  # claims the slot
        log(f"creating the node's network namespace {net.netns} (node {net.node_ip}, pods {net.pod_cidr})")
        node.create_network(net)
    # With a real node the API server listens where the node and its pods reach it; else on loopback only.
    api_ip = net.host_ip if net else "127.0.0.1"
    make_pki(cluster.pki, api_ip, net)
    api_port = start_control_plane(cluster, bins, api_ip, net, steady_nodes)
    start_kwok(cluster, bins, nodes)
    if net:
        start_node(cluster, bins, net, f"https://{api_ip}:{api_port}")
        if network_policies:
            start_network_policies(cluster, bins, net)
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
    install_gateway_api(cluster, bins)
    log(
        f"cluster {cluster.name!r} is up in {time.monotonic() - started:.1f}s; kubeconfig: {cluster.kubeconfig}"
    )


def start_control_plane(
    cluster: Cluster, bins: Path, api_ip: str, net: node.NodeNetwork | None, steady_nodes: bool = False
) -> int:
    pki = cluster.pki
    etcd_port, etcd_peer, api_port = free_port(), free_port(), free_port()
    kcm_port, sched_port, kwok_port = free_port(), free_port(), free_port()
    (cluster.state / "ports.json").write_text(json.dumps(
        {"etcd": etcd_port, "kube-apiserver": api_port, "kube-apiserver-ip": api_ip, "kwok": kwok_port}
    ))  # fmt: skip

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

    admission = write_admission_config(cluster.state)
    if net:
        node_flags = [
            # The `kubernetes` Service gets this address as its endpoint, so pods' in-cluster config works.
            "--endpoint-reconciler-type=lease",
            "--kubelet-preferred-address-types=InternalIP,Hostname",
            f"--kubelet-client-certificate={pki / 'admin.crt'}", f"--kubelet-client-key={pki / 'admin.key'}",
            f"--kubelet-certificate-authority={pki / 'ca.crt'}",
            # Aggregated APIs (metrics-server) are called as the requesting user through a front proxy identity.
            f"--requestheader-client-ca-file={pki / 'front-proxy-ca.crt'}",
            "--requestheader-allowed-names=front-proxy-client", "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group", "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={pki / 'front-proxy-client.crt'}",
            f"--proxy-client-key-file={pki / 'front-proxy-client.key'}",
            "--enable-aggregator-routing=true",  # to metrics-server's endpoint: the host has no kube-proxy
        ]  # fmt: skip
    else:
        # Loopback cannot be the `kubernetes` Service's endpoint, and nothing here needs that endpoint.
        node_flags = ["--endpoint-reconciler-type=none"]
    log(f"starting kube-apiserver on https://{api_ip}:{api_port}")
    spawn(cluster, "kube-apiserver", [
        str(bins / "kube-apiserver"), f"--etcd-servers=http://127.0.0.1:{etcd_port}",
        f"--bind-address={api_ip}", f"--advertise-address={api_ip}", f"--secure-port={api_port}",
        f"--tls-cert-file={pki / 'server.crt'}", f"--tls-private-key-file={pki / 'server.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        f"--service-account-key-file={pki / 'sa.pub'}", f"--service-account-signing-key-file={pki / 'sa.key'}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-cluster-ip-range={SERVICE_CIDR}", "--authorization-mode=Node,RBAC", "--allow-privileged=true",
        "--enable-admission-plugins=NodeRestriction,PodNodeSelector", f"--admission-control-config-file={admission}",
        *node_flags,
        # Room for the benchmarks' burst of applies; the machine, not the limiter, should be the bound.
        "--max-requests-inflight=1000", "--max-mutating-requests-inflight=500",
        "--profiling=false", "--v=1",
    ])  # fmt: skip
    wait_for(
        "kube-apiserver /readyz",
        lambda: https_ok(cluster, api_ip, api_port, "/readyz"),
        120,
        cluster,
        "kube-apiserver",
    )
    write_kubeconfig(cluster, cluster.kubeconfig, f"https://{api_ip}:{api_port}", "admin")

    # Steady nodes: an hour's grace before the node lifecycle controller calls a node whose lease renewal fell
    # behind unhealthy (and taints it, marks its pods not ready, evicts them). Not that controller switched
    # off: it also lifts the not-ready taint every new node is created with, without which nothing schedules.
    steady = ["--node-monitor-grace-period=1h"] if steady_nodes else []
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
        "--controllers=*,-nodeipam",  # no pod CIDRs to hand out: kwok and the node's CNI assign pod IPs
        *steady,
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
    return api_port


# Pods go to kwok's simulated nodes unless their namespace asks for the real node (REAL_NODE_ANNOTATION), so the
# scale tests and benchmarks never land on it and the demo and the real-pod tests never land on a simulated one.
NODE_SELECTOR_ANNOTATION = "scheduler.alpha.kubernetes.io/node-selector"
REAL_NODE_SELECTOR = "type=real"
KWOK_NODE_SELECTOR = "type=kwok"


def write_admission_config(state: Path) -> Path:
    selector = state / "podnodeselector.yaml"
    selector.write_text(
        json.dumps({"podNodeSelectorPluginConfig": {"clusterDefaultNodeSelector": KWOK_NODE_SELECTOR}})
    )
    config = state / "admission.yaml"
    config.write_text(json.dumps({
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AdmissionConfiguration",
        "plugins": [{"name": "PodNodeSelector", "path": str(selector)}],
    }))  # fmt: skip
    return config


def start_kwok(cluster: Cluster, bins: Path, nodes: int) -> None:
    kwok_port = cluster.ports()["kwok"]
    log(f"starting kwok and registering {nodes} simulated nodes")
    spawn(cluster, "kwok", [
        str(bins / "kwok"), f"--config={bins / 'kwok-stages.yaml'}", f"--config={write_maestro_stages(cluster)}",
        f"--kubeconfig={cluster.kubeconfig}", "--manage-all-nodes=false",
        "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
        "--cidr=10.244.0.1/16", "--node-ip=10.0.0.1", "--node-lease-duration-seconds=40",
        f"--server-address=127.0.0.1:{kwok_port}",
    ])  # fmt: skip
    if nodes == 0:  # `kubectl apply` refuses an empty list
        return
    nodes_doc = {"apiVersion": "v1", "kind": "List", "items": [node_manifest(i) for i in range(nodes)]}
    kubectl(bins, cluster, "apply", "-f", "-", stdin=json.dumps(nodes_doc))
    wait_for(
        f"{nodes} nodes Ready",
        lambda: ready_nodes(bins, cluster, "type=kwok") >= nodes,
        120,
        cluster,
        "kwok",
    )


def start_node(cluster: Cluster, bins: Path, net: node.NodeNetwork, server: str) -> None:
    """containerd, the images, the kubelet, kube-proxy, CoreDNS and metrics-server, in the node's namespace."""
    paths = cluster.node_paths
    for directory in (paths.cni_conf_dir, paths.kubelet_dir, paths.pod_logs):
        directory.mkdir(parents=True, exist_ok=True)
    node.create_cgroups(net)
    node.save_host_sysctls(STATE_ROOT)
    inside = net.nsenter()

    log("starting containerd in the node's namespace")
    paths.file("containerd.toml").write_text(node.containerd_config(paths, images.PAUSE.ref))
    (paths.cni_conf_dir / "10-maestro.conflist").write_text(json.dumps(node.cni_config(net, paths), indent=2))
    spawn(cluster, "containerd", [*inside, "containerd", f"--config={paths.file('containerd.toml')}"])
    wait_for("containerd's socket", paths.containerd_socket.exists, 30, cluster, "containerd")
    log("importing the pause and sample images into containerd")
    images.import_images(paths.containerd_socket, images.default_names(), log=log)

    paths.file("resolv.conf").write_text("")
    for identity in ("node", "kube-proxy"):
        write_kubeconfig(cluster, paths.file(f"{identity}.kubeconfig"), server, identity)
    paths.file("kubelet.yaml").write_text(json.dumps(node.kubelet_config(net, paths, cluster.pki)))
    log(f"starting the kubelet: node {node.NODE_NAME} at {net.node_ip}")
    spawn(cluster, "kubelet", [
        *inside, str(bins / "kubelet"), f"--config={paths.file('kubelet.yaml')}",
        f"--kubeconfig={paths.file('node.kubeconfig')}", f"--root-dir={paths.kubelet_dir}",
        f"--hostname-override={node.NODE_NAME}", f"--node-ip={net.node_ip}",
        "--node-labels=type=real,maestro.dev/real-node=true", "--v=1",
    ])  # fmt: skip
    paths.file("kube-proxy.yaml").write_text(
        json.dumps(node.kube_proxy_config(net, paths.file("kube-proxy.kubeconfig")))
    )
    spawn(
        cluster,
        "kube-proxy",
        [*inside, str(bins / "kube-proxy"), f"--config={paths.file('kube-proxy.yaml')}", "--v=1"],
    )

    paths.file("Corefile").write_text(node.corefile(net, cluster.kubeconfig, cluster.name))
    log(f"starting CoreDNS on {net.node_ip}:53")
    spawn(cluster, "coredns", [*inside, str(bins / "coredns"), "-conf", str(paths.file("Corefile"))])
    start_metrics_server(cluster, bins, net)
    wait_for(
        f"node {node.NODE_NAME} Ready",
        lambda: ready_nodes(bins, cluster, "type=real") >= 1,
        120,
        cluster,
        "kubelet",
    )
    wait_for("CoreDNS ready", lambda: http_ok(f"http://{net.node_ip}:8181/ready"), 60, cluster, "coredns")
    wait_for(
        "the metrics API (metrics-server through the aggregation layer)",
        lambda: https_ok(
            cluster, net.host_ip, int(str(cluster.ports()["kube-apiserver"])), "/apis/metrics.k8s.io/v1beta1"
        ),
        120,
        cluster,
        "metrics-server",
    )


def start_network_policies(cluster: Cluster, bins: Path, net: node.NodeNetwork) -> None:
    """kube-router's network policy controller in the node's namespace, once the node object exists; ready when
    its chains hook the node's filter table (its first full sync follows at once)."""
    started = time.monotonic()
    version = module_version("kube-router", "github.com/cloudnativelabs/kube-router/v2")
    log(f"starting kube-router {version} (its network policy controller only) in the node's namespace")
    node.let_host_through(net)
    spawn(cluster, POLICY_PROCESS, [
        *net.nsenter(), str(bins / "kube-router"), f"--kubeconfig={cluster.kubeconfig}",
        f"--hostname-override={node.NODE_NAME}", *node.KUBE_ROUTER_FLAGS,
        f"--service-cluster-ip-range={SERVICE_CIDR}", "--v=1",
    ])  # fmt: skip
    wait_for(
        "kube-router's network policy chains",
        lambda: node.policy_chains_present(net),
        60,
        cluster,
        POLICY_PROCESS,
    )
    log(f"NetworkPolicies enforced on {node.NODE_NAME} ({time.monotonic() - started:.1f}s)")


METRICS_SERVER_PORT = 4443


def start_metrics_server(cluster: Cluster, bins: Path, net: node.NodeNetwork) -> None:
    """metrics-server runs on the node, reached by the API server through an APIService and a selectorless
    Service whose EndpointSlice names the node's address."""
    pki = cluster.pki
    log(f"starting metrics-server on {net.node_ip}:{METRICS_SERVER_PORT}")
    spawn(cluster, "metrics-server", [
        *net.nsenter(), str(bins / "metrics-server"), f"--kubeconfig={cluster.kubeconfig}",
        f"--authentication-kubeconfig={cluster.kubeconfig}", f"--authorization-kubeconfig={cluster.kubeconfig}",
        f"--bind-address={net.node_ip}", f"--secure-port={METRICS_SERVER_PORT}",
        f"--tls-cert-file={pki / 'metrics-server.crt'}", f"--tls-private-key-file={pki / 'metrics-server.key'}",
        f"--kubelet-certificate-authority={pki / 'ca.crt'}", "--kubelet-preferred-address-types=InternalIP",
        f"--requestheader-client-ca-file={pki / 'front-proxy-ca.crt'}", "--requestheader-allowed-names=front-proxy-client",
        "--node-selector=type!=kwok",  # kwok's nodes report 10.0.0.1, which is off this machine
        "--metric-resolution=15s",
    ])  # fmt: skip
    kubectl(bins, cluster, "apply", "-f", "-", stdin=json.dumps(metrics_api_objects(net, pki)))


def metrics_api_objects(net: node.NodeNetwork, pki: Path) -> dict[str, object]:
    import base64

    meta = {"name": "metrics-server", "namespace": "kube-system"}
    return {"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Service", "metadata": meta,
         "spec": {"ports": [{"name": "https", "port": 443, "targetPort": METRICS_SERVER_PORT}]}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {**meta, "labels": {"kubernetes.io/service-name": "metrics-server"}},
         "addressType": "IPv4", "endpoints": [{"addresses": [net.node_ip], "conditions": {"ready": True}}],
         "ports": [{"name": "https", "port": METRICS_SERVER_PORT, "protocol": "TCP"}]},
        {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": "v1beta1.metrics.k8s.io"},
         "spec": {"service": {"name": "metrics-server", "namespace": "kube-system", "port": 443},
                  "group": "metrics.k8s.io", "version": "v1beta1",
                  "caBundle": base64.b64encode((pki / "ca.crt").read_bytes()).decode(),
                  "groupPriorityMinimum": 100, "versionPriority": 100}},
    ]}  # fmt: skip


def ready_nodes(bins: Path, cluster: Cluster, selector: str) -> int:
    result = subprocess.run(
        [
            str(bins / "kubectl"),
            f"--kubeconfig={cluster.kubeconfig}",
            "get",
            "nodes",
            "-l",
            selector,
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        return 0
    count = 0
    for item in json.loads(result.stdout)["items"]:
        conditions = item.get("status", {}).get("conditions", [])
        if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
            count += 1
    return count


def down(cluster: Cluster) -> None:
    alive = cluster.running()
    net = cluster.network()
    # Stop in reverse start order so nothing spends its last seconds retrying a vanished API server.
    for process in reversed(PROCESSES + NODE_PROCESSES):
        if process in alive:
            signal_group(alive[process], signal.SIGTERM)
    if net:
        # Containers outlive the kubelet and containerd: kill them, then undo every host change the node made.
        node.kill_pods(net, log)
        node.kill_shims(cluster.node_paths.containerd_socket)
    # The API server drains its watches on SIGTERM; a throwaway cluster need not wait long for that.
    if not wait_gone(cluster, 10):
        for process, pid in cluster.running().items():
            log(f"{process} ({pid}) is still stopping after SIGTERM; killing it")
            signal_group(pid, signal.SIGKILL)
        if not wait_gone(cluster, 10):
            raise SystemExit(f"could not stop {', '.join(cluster.running())}")
    if alive:
        log(f"stopped {', '.join(alive)}")
    if net:
        node.unmount_under(cluster.state)
        node.remove_network(net)
        node.remove_cgroups(net)
        log(f"removed the node's network namespace {net.netns}, its mounts and cgroups")
    if cluster.state.exists():
        shutil.rmtree(cluster.state)
        log(f"removed {cluster.state}")
    if net:
        node.restore_host_sysctls(STATE_ROOT, log)


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
    if process not in PROCESSES + NODE_PROCESSES:
        raise SystemExit(
            f"unknown component {name!r}; one of {', '.join(PROCESSES + NODE_PROCESSES)} (or {', '.join(ALIASES)})"
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
    ports = cluster.ports()
    if process == "kube-apiserver":
        host, port = str(ports.get("kube-apiserver-ip", "127.0.0.1")), int(str(ports["kube-apiserver"]))
        wait_for(
            "kube-apiserver /readyz", lambda: https_ok(cluster, host, port, "/readyz"), 120, cluster, process
        )
    elif process == "etcd":
        port = int(str(ports["etcd"]))
        wait_for("etcd health", lambda: http_ok(f"http://127.0.0.1:{port}/health"), 60, cluster, process)
    log(f"started {process} ({pid})")


def status(cluster: Cluster) -> int:
    alive = cluster.running()
    for process in cluster.expected():
        print(f"{process:<25} {'running, pid ' + str(alive[process]) if process in alive else 'stopped'}")
    if alive:
        print(f"kubeconfig: {cluster.kubeconfig}")
    net = cluster.network()
    if net:
        print(
            f"real node: {node.NODE_NAME} at {net.node_ip}, pods {net.pod_cidr}, network namespace {net.netns}"
        )
    return 0 if set(alive) == set(cluster.expected()) else 1


def import_operator_image(cluster: Cluster) -> image.Image:
    """The operator image into the real node's containerd: built (about a minute and a half cold) or taken from
    the cache, imported (a few seconds), and tagged as the chart's default values name it, so that `helm install
    deploy/helm/maestro` and `kubectl apply -k deploy/manifests` run it as they are (pull policy IfNotPresent: the
    kubelet finds it and pulls nothing)."""
    socket = cluster.node_paths.containerd_socket
    if "containerd" not in cluster.running() or not socket.exists():
        raise SystemExit(
            f"cluster {cluster.name!r} has no real node running (its containerd): start it as root with `up`"
        )
    return image.import_into(str(socket), also=[image.chart_default_name()])


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
    up_parser.add_argument(
        "--real-node",
        action=argparse.BooleanOptionalAction,
        default=os.geteuid() == 0,
        help="also run a real node (containerd, kubelet, kube-proxy, CoreDNS, metrics-server, kube-router); "
        "needs root "
        "(default: on as root)",
    )
    up_parser.add_argument(
        "--network-policies",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="enforce NetworkPolicies on the real node with kube-router (default: on); the benchmarks, whose "
        "thousands of simulated pods would keep it re-syncing, turn it off",
    )
    up_parser.add_argument(
        "--steady-nodes",
        action="store_true",
        help="give nodes an hour before they count as unhealthy: simulated nodes stay Ready and keep their pods "
        "even when kwok's lease renewals fall behind (the benchmarks with thousands of pods)",
    )
    sub.add_parser("down", help="stop every process and remove the state")
    sub.add_parser("status", help="show what runs")
    sub.add_parser("env", help="print shell exports for this cluster")
    sub.add_parser("bin-dir", help="print where the binaries are cached")
    sub.add_parser(
        "import-image",
        help="build (or reuse) the operator image and import it into the real node's containerd; prints its name",
    )
    for verb in ("stop", "start", "restart"):
        one = sub.add_parser(verb, help=f"{verb} one component, keeping ports, certificates and etcd data")
        one.add_argument("component", help=f"one of {', '.join(PROCESSES)}, or apiserver")
    args = parser.parse_args(argv)
    cluster = Cluster(args.name)
    if args.command == "build":
        build()
    elif args.command == "up":
        up(cluster, args.nodes, args.real_node, args.network_policies, args.steady_nodes)
    elif args.command == "down":
        down(cluster)
    elif args.command == "status":
        return status(cluster)
    elif args.command == "env":
        print(f"export KUBECONFIG={cluster.kubeconfig}\nexport PATH={bin_dir()}:$PATH")
    elif args.command == "bin-dir":
        print(bin_dir())
    elif args.command == "import-image":
        print(import_operator_image(cluster).env(), end="")
    elif args.command in ("stop", "restart"):
        stop_one(cluster, component(args.component))
        if args.command == "restart":
            start_one(cluster, component(args.component))
    elif args.command == "start":
        start_one(cluster, component(args.component))
    return 0


if __name__ == "__main__":
    sys.exit(main())
