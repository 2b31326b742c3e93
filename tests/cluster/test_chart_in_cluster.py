"""The Helm chart installed for real: `helm install` with the image built from the Dockerfile (imported into the
real node's containerd by `cluster.py import-image`), into a namespace that runs its pods on the local cluster's
real node and enforces the restricted Pod Security Standard. The operator runs as the chart's two pods: in-cluster
config (its ServiceAccount token, the `kubernetes` Service), user 10001, read-only root filesystem, probes through
the kubelet, kopf peering between the replicas.

- the two replicas run, pass their probes, one acts, `/metrics` answers through the metrics Service;
- the installed operator reconciles an app whose pods run on the real node;
- killing the acting pod hands over to the other (a crash, a graceful delete, a forced delete): the takeover is
  measured as tests/e2e/test_ha.py measures it for processes (the time from the kill until a spec change made
  right after it is in the cluster) and printed (`-s` shows it);
- the operator suite's main cases (create, prune, drift, dependency order, config rollout, Invalid, delete) with
  the installed operator instead of an operator process: each test of tests/e2e/test_operator.py named in
  SUITE is collected here too, as test_in_cluster_<name>, and this module's `op` fixture is the Deployment. The
  chart is cluster-wide, as users install it by default, so it sees each test's fresh namespace (whose app pods
  run on kwok's simulated nodes: the operator's logic, not containers, is what those cases test).
"""

from __future__ import annotations

import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.cluster.in_cluster import (
    CHART,
    REAL_NODE,
    InClusterOperator,
    OperatorImage,
    Pods,
    import_operator_image,
    rbac_denials,
    real_namespace,
)
from tests.e2e import cluster as test_cluster_module
from tests.e2e import test_operator
from tests.e2e.kubectl import Kubectl
from tests.e2e.test_ha import peering_crds
from tests.e2e.test_install import helm
from tests.e2e.test_operator import msa, svc
from tests.e2e.waits import wait_until

__all__ = ["helm", "peering_crds"]  # fixtures used here

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "web.yaml"
BOUND = 120.0  # seconds: far above the expected takeover; the figures are printed, not asserted


@pytest.fixture(scope="module")
def operator_image(test_cluster: test_cluster_module.TestCluster) -> OperatorImage:
    return import_operator_image(test_cluster)


@pytest.fixture(scope="module")
def release(
    helm: Path, cluster_kubectl: Kubectl, crd: None, peering_crds: None, operator_image: OperatorImage
) -> Iterator[Pods]:
    """`helm install` of the chart, cluster-wide, with the locally built image (pull policy Never: from the node's
    containerd or not at all); its own peering object, so that no other install in the cluster shares it."""
    name = f"maestro-{secrets.token_hex(3)}"
    real_namespace(cluster_kubectl, name)
    kubectl = cluster_kubectl.in_namespace(name)
    started = time.monotonic()
    install = subprocess.run(
        [str(helm), "install", name, str(CHART), f"--kubeconfig={cluster_kubectl.kubeconfig}", "--namespace", name,
         "--set", f"image.repository={operator_image.repository}", "--set", f"image.tag={operator_image.tag}",
         "--set", "image.pullPolicy=Never", "--set", f"peering.name={name}", "--wait", "--timeout=180s"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    pods = Pods(
        kubectl, name, f"app.kubernetes.io/instance={name}", operator_image, service=f"{name}-metrics"
    )
    try:
        assert install.returncode == 0, install.stderr + "\n" + pods.describe()
        pods.wait_ready()
        print(f"helm install --wait, then one pod active: {time.monotonic() - started:.1f} s")
        yield pods
    finally:
        subprocess.run(
            [str(helm), "uninstall", name, f"--kubeconfig={cluster_kubectl.kubeconfig}", "--namespace", name,
             "--wait", "--timeout=60s"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        cluster_kubectl.run("delete", "clusterkopfpeering", name, "--wait=false", check=False)
        cluster_kubectl.run("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def pods(request: pytest.FixtureRequest, release: Pods) -> Iterator[Pods]:
    """The release, both replicas up (a test before may have scaled it down); its logs when the test failed."""
    if len(release.current()) != 2 or release.replicas != 2:
        release.scale(2)
    release.wait_ready()
    yield release
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        print(f"===== the operator pods =====\n{release.describe()}\n===== their logs =====")
        print(release.logs()[-30000:])


def test_two_replicas_run_on_the_real_node_one_acts_metrics_through_the_service(
    pods: Pods, cluster_kubectl: Kubectl, operator_image: OperatorImage
) -> None:
    namespace = cluster_kubectl.get("namespace", pods.kubectl.namespace)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for pod in pods.current():
        spec, status = pod["spec"], pod["status"]
        assert spec["nodeName"] == REAL_NODE
        (container,) = spec["containers"]
        assert container["image"] == operator_image.name and container["imagePullPolicy"] == "Never"
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert spec["securityContext"]["runAsUser"] == 10001
        assert spec["serviceAccountName"] == pods.deployment
        (container_status,) = status["containerStatuses"]
        assert container_status["ready"] and container_status["restartCount"] == 0, container_status
        # The probes ran: Ready needs the readiness probe through the kubelet; liveness restarts nothing.
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"

    roles = pods.roles()
    assert sorted(roles.values()) == ["active", "standby"], roles
    active = pods.active()
    (standby,) = set(roles) - {active}
    assert pods.metric(active, "maestro_leader") == 1 and pods.metric(standby, "maestro_leader") == 0
    ok, health = pods.pod_get(standby, "/healthz")
    assert ok, health

    # The Service in front of the replicas' metrics port: Prometheus' view; each scrape reaches one of them.
    seen = set()
    for _ in range(20):
        ok, text = pods.service_get("/metrics")
        assert ok, text
        assert "maestro_reconcile_total" in text
        seen |= {line for line in text.splitlines() if line.startswith("maestro_leader ")}
        if len(seen) == 2:
            break
    assert seen <= {"maestro_leader 1.0", "maestro_leader 0.0"} and seen, seen

    logs = pods.logs()
    assert not rbac_denials(logs)
    assert "Read-only file system" not in logs, logs[-5000:]
    assert "Traceback" not in logs, logs[-5000:]


def test_the_installed_operator_makes_an_app_ready_on_the_real_node(
    pods: Pods, cluster_kubectl: Kubectl
) -> None:
    namespace = f"shop-{secrets.token_hex(3)}"
    real_namespace(cluster_kubectl, namespace)
    try:
        kubectl = cluster_kubectl.in_namespace(namespace)
        kubectl("apply", "-f", str(EXAMPLE))
        name = yaml.safe_load(EXAMPLE.read_text())["metadata"]["name"]
        kubectl("wait", "--for=condition=Ready", f"msa/{name}", "--timeout=150s")
        app = kubectl.get("msa", name)
        assert app["status"]["observedGeneration"] == app["metadata"]["generation"]
        app_pods = kubectl.get("pods", selector="app.kubernetes.io/managed-by=maestro")
        assert app_pods and {p["spec"]["nodeName"] for p in app_pods} == {REAL_NODE}
        # The acting replica did the work.
        assert pods.metric(pods.active(), "maestro_apply_total") > 0
    finally:
        cluster_kubectl.run("delete", "namespace", namespace, "--wait=false", check=False)


def scale_of(kubectl: Kubectl) -> int | None:
    deployment = kubectl.get("deployment", "shop-web")
    return deployment["spec"]["replicas"] if deployment else None


def test_killing_the_acting_pod_hands_over_to_the_other(pods: Pods, kubectl: Kubectl) -> None:
    kubectl.apply(msa("shop", svc("web", replicas=1)))
    wait_until("the Deployment shop-web", lambda: scale_of(kubectl) == 1, timeout=60)

    rounds = [
        "crash (SIGKILL of its process)",
        "kubectl delete pod (SIGTERM)",
        "delete --grace-period=0 --force",
    ]
    measured: list[tuple[str, float]] = []
    for number, how in enumerate(rounds, start=1):
        active = pods.active()
        (other,) = set(pods.names()) - {active}
        restarts = pods.kubectl.get("pod", active)["status"]["containerStatuses"][0]["restartCount"]
        started = time.monotonic()
        if number == 1:
            pods.crash(active)
        elif number == 2:
            pods.kubectl("delete", "pod", active, "--wait=false")
        else:
            pods.kubectl("delete", "pod", active, "--grace-period=0", "--force", "--wait=false")
        wanted = number + 1  # a new replica count each round: the change the other pod must make
        kubectl("patch", "msa", "shop", "--type=json", "-p",
                f'[{{"op": "replace", "path": "/spec/services/0/replicas", "value": {wanted}}}]')  # fmt: skip
        wait_until(
            f"round {number} ({how}): the standby to scale shop-web to {wanted}",
            lambda wanted=wanted: scale_of(kubectl) == wanted,
            timeout=BOUND,
            describe=pods.describe,
        )
        elapsed = time.monotonic() - started
        measured.append((how, elapsed))
        print(f"takeover after {how}: the spec change was applied {elapsed:.1f} s after the kill")
        # The role it reports (/readyz, maestro_leader) follows within a keep-alive (test_ha.py waits too).
        wait_until(
            f"{other} to report itself active",
            lambda other=other: pods.role(other) == "active",
            describe=pods.describe,
        )
        assert pods.metric(other, "maestro_apply_total") > 0, "the change was made by the pod that stood by"
        # Back to two: a crashed container is restarted in its pod, a deleted pod replaced; either stands by.
        roles = pods.wait_ready()
        assert roles[other] == "active", roles
        if number == 1:
            status = pods.kubectl.get("pod", active)["status"]["containerStatuses"][0]
            assert status["restartCount"] == restarts + 1, status
            assert status["lastState"]["terminated"]["exitCode"] == 128 + signal.SIGKILL, status

    summary = ", ".join(f"{how}: {seconds:.1f} s" for how, seconds in measured)
    print(f"takeover times between the chart's pods (peering lifetime 10 s): {summary}")
    assert all(seconds < BOUND for _, seconds in measured)


# ---------------------------------------------------------------------------------------------------------------
# The operator suite's main cases, with the installed operator as `op`.

SUITE = (
    "test_app_becomes_ready_with_owned_children",  # create
    "test_removed_service_hpa_and_service_are_pruned",  # prune
    "test_deleted_or_edited_child_is_restored",  # drift
    "test_dependent_waits_for_its_dependency",  # dependency order
    "test_config_change_rolls_only_its_users",  # config rollout
    "test_invalid_spec_creates_nothing",  # Invalid
    "test_deleting_the_app_removes_children_without_the_operator",  # delete (the operator scaled to 0)
)


@pytest.fixture
def op(pods: Pods, namespace: str) -> Iterator[InClusterOperator]:
    operator = InClusterOperator(pods)
    yield operator
    assert not rbac_denials(pods.logs())


for _name in SUITE:
    globals()[f"test_in_cluster_{_name.removeprefix('test_')}"] = getattr(test_operator, _name)
