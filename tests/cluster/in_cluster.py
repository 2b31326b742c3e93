"""The operator as pods, from its image, on the local cluster's real node: what the in-cluster tests share.

- `operator_image`: the image built from the Dockerfile (hack/image/image.py, cached) and imported into the real
  node's containerd by `cluster.py import-image`, the cluster-side step users run too;
- `real_namespace()`: a namespace whose pods run on the real node and that enforces the restricted Pod Security
  Standard, as the chart's namespace should;
- `Pods`: the operator's pods as a test sees them: their role (/readyz), their metrics (through the API server's
  pod and service proxies: the host routes to the node's pod range), their logs, and the containerd task of each
  (to crash one: SIGKILL of its process, as an OOM kill would end it);
- `InClusterOperator`: the `op` fixture's part for the operator suite's tests, played by the installed Deployment
  (stop and start: scaled to 0 and back).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import cluster as test_cluster_module
from tests.e2e.kubectl import Kubectl
from tests.e2e.waits import wait_until
from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "maestro"
NODE_SELECTOR_ANNOTATION = "scheduler.alpha.kubernetes.io/node-selector"
REAL_NODE = "real-node"


@dataclass(frozen=True)
class OperatorImage:
    repository: str
    tag: str
    containerd_socket: Path

    @property
    def name(self) -> str:
        return f"{self.repository}:{self.tag}"


def import_operator_image(test_cluster: test_cluster_module.TestCluster) -> OperatorImage:
    """`cluster.py import-image` on the test cluster: build (or reuse) the image, import it into the real node."""
    if not test_cluster.local or os.geteuid() != 0:
        pytest.fail(
            "the operator's pods run on the local cluster's real node: run the tests as root, without "
            "MAESTRO_TEST_KUBECONFIG"
        )
    # Its progress (build, import) goes to the terminal; the names it prints, to us.
    result = subprocess.run(
        [sys.executable, str(test_cluster_module.CLUSTER_SCRIPT), f"--name={test_cluster_module.LOCAL_CLUSTER_NAME}",
         "import-image"],
        stdout=subprocess.PIPE, text=True, check=False, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, f"cluster.py import-image failed:\n{result.stdout}"
    names = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    cluster_script = load_script("hack/cluster/cluster.py")
    socket = cluster_script.Cluster(test_cluster_module.LOCAL_CLUSTER_NAME).node_paths.containerd_socket
    return OperatorImage(names["MAESTRO_IMAGE_REPOSITORY"], names["MAESTRO_IMAGE_TAG"], Path(socket))


def real_namespace(cluster_kubectl: Kubectl, name: str) -> None:
    """A namespace whose pods go to the real node, enforcing the restricted Pod Security Standard."""
    cluster_kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": name,
                "annotations": {NODE_SELECTOR_ANNOTATION: "type=real"},
                "labels": {
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/warn": "restricted",
                },
            },
        }
    )


def wait_namespace_gone(cluster_kubectl: Kubectl, name: str) -> None:
    wait_until(
        f"namespace {name} of an earlier run to be gone",
        lambda: cluster_kubectl.get("namespace", name) is None,
        timeout=120,
    )


@dataclass
class Pods:
    """The operator pods of one Deployment (`namespace`, `deployment`, pods selected by `selector`)."""

    kubectl: Kubectl  # bound to the operator's namespace
    deployment: str
    selector: str
    image: OperatorImage
    replicas: int = 2
    pod_port: int = 8080
    service: str | None = None  # the metrics Service
    notes: list[str] = field(default_factory=list)

    def current(self) -> list[dict[str, Any]]:
        pods: list[dict[str, Any]] = self.kubectl.get("pods", selector=self.selector)
        return [p for p in pods if not p["metadata"].get("deletionTimestamp")]

    def names(self) -> list[str]:
        return sorted(p["metadata"]["name"] for p in self.current())

    def raw(self, path: str) -> tuple[bool, str]:
        result = self.kubectl.run("get", "--raw", path, check=False)
        return result.returncode == 0, result.stdout if result.returncode == 0 else result.stderr

    def pod_get(self, pod: str, path: str) -> tuple[bool, str]:
        """GET `path` of the pod's metrics port through the API server's pod proxy."""
        return self.raw(f"/api/v1/namespaces/{self.kubectl.namespace}/pods/{pod}:{self.pod_port}/proxy{path}")

    def service_get(self, path: str) -> tuple[bool, str]:
        """GET `path` through the metrics Service (the API server's service proxy picks one of its endpoints)."""
        assert self.service
        return self.raw(
            f"/api/v1/namespaces/{self.kubectl.namespace}/services/{self.service}:metrics/proxy{path}"
        )

    def role(self, pod: str) -> str:
        ok, body = self.pod_get(pod, "/readyz")
        return body.strip().removeprefix("ok: ") if ok else "unready"

    def roles(self) -> dict[str, str]:
        return {name: self.role(name) for name in self.names()}

    def metric(self, pod: str, name: str) -> float:
        from prometheus_client.parser import text_string_to_metric_families

        ok, text = self.pod_get(pod, "/metrics")
        assert ok, text
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name
        )

    def wait_ready(self, timeout: float = 180) -> dict[str, str]:
        """`replicas` pods, all Ready on the real node, one active and the others standing by: their roles."""

        def settled() -> dict[str, str] | None:
            pods = self.current()
            ready = [
                p
                for p in pods
                if any(
                    c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", [])
                )
            ]
            if len(pods) != self.replicas or len(ready) != self.replicas:
                return None
            roles = self.roles()
            return (
                roles
                if sorted(roles.values()) == sorted(["active"] + ["standby"] * (self.replicas - 1))
                else None
            )

        return wait_until(
            f"{self.replicas} operator pods Ready, one active",
            settled,
            timeout=timeout,
            describe=self.describe,
        )

    def active(self) -> str:
        (name,) = (name for name, role in self.roles().items() if role == "active")
        return name

    def container_id(self, pod: str) -> str:
        (status,) = self.kubectl.get("pod", pod)["status"]["containerStatuses"]
        return str(status["containerID"]).removeprefix("containerd://")

    def crash(self, pod: str) -> None:
        """SIGKILL of the operator's process in its container, by containerd, as an OOM kill or a crash ends it:
        no graceful stop, the peering record stays until it expires. The kubelet restarts the container."""
        subprocess.run(
            ["ctr", "--address", str(self.image.containerd_socket), "-n", "k8s.io", "task", "kill", "--signal",
             "SIGKILL", self.container_id(pod)],
            check=True, capture_output=True, text=True, timeout=30,
        )  # fmt: skip

    def logs(self) -> str:
        result = self.kubectl.run(
            "logs", "-l", self.selector, "--prefix", "--tail=-1", "--max-log-requests=10", check=False
        )
        previous = self.kubectl.run(
            "logs", "-l", self.selector, "--prefix", "--tail=-1", "--previous", check=False
        )
        return result.stdout + result.stderr + (previous.stdout if previous.returncode == 0 else "")

    def describe(self) -> str:
        pods = self.kubectl.run("get", "pods", "-o", "wide", "-l", self.selector, check=False).stdout
        events = self.kubectl.run("get", "events", "--sort-by=.lastTimestamp", check=False).stdout
        return f"pods:\n{pods}\nroles: {json.dumps(self.roles())}\nevents:\n{events[-4000:]}"

    def scale(self, replicas: int) -> None:
        self.kubectl("scale", f"deployment/{self.deployment}", f"--replicas={replicas}")
        if replicas == 0:
            wait_until("the operator pods to be gone", lambda: not self.kubectl.get("pods", selector=self.selector),
                       timeout=90, describe=self.describe)  # fmt: skip
        else:
            self.replicas = replicas
            self.wait_ready()


def rbac_denials(logs: str) -> list[str]:
    """Log lines of requests the operator's ServiceAccount was denied (RBAC's 403: `... is forbidden: User
    "system:serviceaccount:..." cannot ...`). Other 403s are not about its rights: a cluster-wide operator also
    sees namespaces being deleted ("unable to create new content in namespace ... because it is being
    terminated")."""
    return [
        line for line in logs.splitlines() if "forbidden: User" in line or "Not enough permissions" in line
    ]


class InClusterOperator:
    """The `op` fixture's interface (tests/e2e/operator_process.OperatorProcess) for the installed Deployment:
    the operator suite's tests use stop() and start() (here: scale to 0, and back), log() and metric() (of the
    acting pod)."""

    def __init__(self, pods: Pods) -> None:
        self.pods = pods

    def stop(self) -> None:
        self.pods.scale(0)

    def start(self) -> None:
        self.pods.scale(2)

    def log(self) -> str:
        return self.pods.logs()

    def metric(self, name: str, **labels: str) -> float:
        assert not labels, "by name only here"
        return self.pods.metric(self.pods.active(), name)

    def passes(self) -> int:
        raise NotImplementedError("the chart logs at info level: no per-pass lines to count")
