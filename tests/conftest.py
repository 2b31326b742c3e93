"""Cluster fixtures shared by tests/e2e and tests/faults: the test cluster, the CRD, a fresh namespace per test,
an API client independent of the operator's, and a dump of what went wrong. Here (not in tests/e2e) so both
suites get the very same session fixtures: one cluster per run. Unit tests request none of them and never start
a cluster."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import cluster as test_cluster_module
from tests.e2e.kubectl import Kubectl
from tests.e2e.waits import wait_until
from tests.faults.client import Client

ROOT = Path(__file__).resolve().parents[1]
CRD_FILE = ROOT / "crds" / "maestro.dev_microserviceapps.yaml"


@pytest.fixture(scope="session")
def test_cluster() -> Iterator[test_cluster_module.TestCluster]:
    cluster = test_cluster_module.acquire()
    previous = os.environ.get("KUBECONFIG")
    # Everything in this process (kubernetes client, kopf, subprocesses) sees only the test cluster.
    os.environ["KUBECONFIG"] = str(cluster.kubeconfig)
    try:
        yield cluster
    finally:
        if previous is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = previous
        test_cluster_module.release(cluster)


@pytest.fixture(scope="session")
def cluster_kubectl(test_cluster: test_cluster_module.TestCluster) -> Kubectl:
    """kubectl against the test cluster, without a namespace."""
    return Kubectl(test_cluster.kubectl, test_cluster.kubeconfig)


@pytest.fixture(scope="session")
def client(test_cluster: test_cluster_module.TestCluster) -> Client:
    """The tests' own API client (the official `kubernetes` client's pool), to act and to judge."""
    return Client(test_cluster.kubeconfig)


@pytest.fixture(scope="session")
def crd(cluster_kubectl: Kubectl) -> None:
    """The project's CRD, applied as a user would and Established."""
    cluster_kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_FILE))
    cluster_kubectl.wait_established("crd/microserviceapps.maestro.dev")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


# A namespace with this annotation runs its pods on the local cluster's real node (containerd and a kubelet in a
# network namespace, hack/cluster/node.py) rather than on kwok's simulated ones: the API server's PodNodeSelector
# admission gives every other namespace `type=kwok`. Other clusters (kind) ignore it: pods run on their nodes.
REAL_NODE_SELECTOR = {"scheduler.alpha.kubernetes.io/node-selector": "type=real"}
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}


def make_namespace(
    request: pytest.FixtureRequest,
    cluster_kubectl: Kubectl,
    *,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    real_pods: bool = False,
) -> Iterator[str]:
    """A fresh namespace for one test, with its default ServiceAccount; described when the test failed (with
    its containers' logs when its pods are real), then deleted (without waiting)."""
    name = f"e2e-{secrets.token_hex(3)}"
    metadata = {"name": name, "labels": labels or {}, "annotations": annotations or {}}
    cluster_kubectl(
        "create", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": metadata})
    )
    wait_until(
        f"the default ServiceAccount in {name}",
        lambda: cluster_kubectl.in_namespace(name).get("serviceaccount", "default"),
    )
    yield name
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        print(describe_namespace(cluster_kubectl.in_namespace(name), logs=real_pods))
    cluster_kubectl.run("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def namespace(request: pytest.FixtureRequest, cluster_kubectl: Kubectl) -> Iterator[str]:
    yield from make_namespace(request, cluster_kubectl)


@pytest.fixture
def real_namespace(request: pytest.FixtureRequest, cluster_kubectl: Kubectl) -> Iterator[str]:
    """A namespace whose pods are real: containers on the local cluster's real node (images from
    hack/images, docs/images.md), under the `restricted` Pod Security level, enforced. A module overrides
    `namespace` with it (`def namespace(real_namespace: str) -> str`) to run the usual fixtures (`kubectl`,
    the operator) there."""
    yield from make_namespace(
        request, cluster_kubectl, labels=RESTRICTED, annotations=REAL_NODE_SELECTOR, real_pods=True
    )


@pytest.fixture
def kubectl(cluster_kubectl: Kubectl, namespace: str) -> Kubectl:
    """kubectl bound to this test's namespace."""
    return cluster_kubectl.in_namespace(namespace)


def describe_namespace(kubectl: Kubectl, *, logs: bool = False) -> str:
    """What a person would look at first when a test fails: events and the objects in the namespace; with
    `logs`, the last lines of every container's log (real pods; kwok's have none)."""
    parts = [f"===== namespace {kubectl.namespace}: events ====="]
    parts.append(kubectl.run("get", "events", "--sort-by=.lastTimestamp", check=False).stdout)
    kinds = (
        "microserviceapps,deployments,replicasets,pods,services,horizontalpodautoscalers,poddisruptionbudgets,"
        "jobs,cronjobs"
    )
    parts.append("===== objects =====")
    parts.append(kubectl.run("get", kinds, "-o", "wide", check=False).stdout)
    parts.append(kubectl.run("get", "microserviceapps", "-o", "yaml", check=False).stdout)
    if logs:
        parts.append("===== container logs (last 20 lines each) =====")
        for pod in kubectl.run("get", "pods", "-o", "name", check=False).stdout.split():
            result = kubectl.run("logs", pod, "--all-containers", "--prefix", "--tail=20", check=False)
            parts.append(result.stdout + result.stderr)
    return "\n".join(parts)
