"""Least privilege, proven: install the Helm chart (namespaced mode, in the test's namespace), then run the
operator out of cluster with the chart's ServiceAccount token instead of admin credentials; an app still becomes
Ready, and the ServiceAccount can do nothing outside its role.

The chart's operator Deployment is installed too; here its pod lands on a simulated node (kwok only marks it
Ready), so `maestro run` plays its part, which also runs on kind. The chart's pods run for real, from the image
built here, on the local cluster's real node in tests/cluster/test_chart_in_cluster.py. The plain manifests are
applied as a user would (`kubectl apply -k deploy/manifests`).
"""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import helm_script as helm_script_module
from tests.e2e import test_jobs, test_operator, test_rollout
from tests.e2e.kubectl import Kubectl
from tests.e2e.operator_process import OperatorProcess, running
from tests.e2e.waits import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "maestro"
EXAMPLE = ROOT / "examples" / "web.yaml"


@pytest.fixture(scope="session")
def helm() -> Path:
    return helm_script_module.binary(helm_script_module.load())


class Installed:
    """The chart rendered and applied for one test: release `maestro-<namespace>`, watching that namespace."""

    def __init__(self, namespace: str, manifest: Path, docs: list[dict[str, Any]]) -> None:
        self.namespace = namespace
        self.manifest = manifest
        self.docs = docs
        (sa,) = (d for d in docs if d["kind"] == "ServiceAccount")
        self.service_account: str = sa["metadata"]["name"]

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"


@pytest.fixture
def installed(
    helm: Path, cluster_kubectl: Kubectl, crd: None, namespace: str, tmp_path: Path
) -> Iterator[Installed]:
    release = f"maestro-{namespace}"  # cluster-scoped names (the discovery ClusterRole) stay unique per test
    rendered = subprocess.run(
        [
            str(helm),
            "template",
            release,
            str(CHART),
            "--namespace",
            namespace,
            "--set",
            f"watchNamespaces={{{namespace}}}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    manifest = tmp_path / "chart.yaml"
    manifest.write_text(rendered)
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    cluster_kubectl("apply", "-f", str(manifest))
    try:
        yield Installed(namespace, manifest, docs)
    finally:
        # The namespace's deletion removes the rest; the cluster-scoped objects go here.
        for doc in docs:
            if doc["kind"] in ("ClusterRole", "ClusterRoleBinding"):
                cluster_kubectl.run(
                    "delete", doc["kind"], doc["metadata"]["name"], "--wait=false", check=False
                )


def service_account_kubeconfig(cluster_kubectl: Kubectl, installed: Installed, path: Path) -> Path:
    """A kubeconfig with the test cluster's server and CA, and a token of the chart's ServiceAccount."""
    token = cluster_kubectl(
        "--namespace", installed.namespace, "create", "token", installed.service_account, "--duration=1h"
    ).strip()
    admin = yaml.safe_load(cluster_kubectl.kubeconfig.read_text())
    current = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    cluster = next(c for c in admin["clusters"] if c["name"] == current["context"]["cluster"])["cluster"]
    server_entry: dict[str, Any] = {"server": cluster["server"]}
    if "certificate-authority-data" in cluster:
        server_entry["certificate-authority-data"] = cluster["certificate-authority-data"]
    elif "certificate-authority" in cluster:
        ca = Path(cluster["certificate-authority"])
        if not ca.is_absolute():
            ca = cluster_kubectl.kubeconfig.parent / ca
        server_entry["certificate-authority-data"] = base64.b64encode(ca.read_bytes()).decode()
    else:
        server_entry["insecure-skip-tls-verify"] = bool(cluster.get("insecure-skip-tls-verify"))
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": server_entry}],
        "users": [{"name": "maestro", "user": {"token": token}}],
        "contexts": [
            {
                "name": "maestro",
                "context": {"cluster": "test", "user": "maestro", "namespace": installed.namespace},
            }
        ],
        "current-context": "maestro",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def can_i(cluster_kubectl: Kubectl, installed: Installed, *args: str) -> str:
    result = cluster_kubectl.run("auth", "can-i", f"--as={installed.user}", *args, check=False)
    return result.stdout.strip()


def test_chart_objects_exist(cluster_kubectl: Kubectl, installed: Installed) -> None:
    kubectl = cluster_kubectl.in_namespace(installed.namespace)
    assert kubectl.get("serviceaccount", installed.service_account)
    assert kubectl.get("role", installed.service_account)
    assert kubectl.get("rolebinding", installed.service_account)
    deployment = kubectl.get("deployment", installed.service_account)
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == installed.service_account


def test_operator_works_with_the_service_account_token(
    cluster_kubectl: Kubectl, installed: Installed, tmp_path: Path
) -> None:
    kubeconfig = service_account_kubeconfig(cluster_kubectl, installed, tmp_path / "maestro.kubeconfig")
    # The token really is the ServiceAccount's, not an admin's.
    who = Kubectl(cluster_kubectl.binary, kubeconfig).run(
        "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"
    )
    assert who.stdout.strip() == installed.user

    operator = OperatorProcess(kubeconfig, installed.namespace, tmp_path / "operator.log")
    operator.start()
    try:
        kubectl = cluster_kubectl.in_namespace(installed.namespace)
        kubectl("apply", "-f", str(EXAMPLE))
        name = yaml.safe_load(EXAMPLE.read_text())["metadata"]["name"]
        kubectl("wait", "--for=condition=Ready", f"msa/{name}", "--timeout=120s")
        app = kubectl.get("msa", name)
        assert app["status"]["observedGeneration"] == app["metadata"]["generation"]
        assert kubectl.get("deployment", f"{name}-web")
        log = operator.log()
        assert "Not enough permissions" not in log, log[-5000:]
        assert "Forbidden" not in log, log[-5000:]  # every 403 carries the reason Forbidden
    except BaseException:
        print(f"===== operator log ({operator.log_path}) =====")
        print(operator.log()[-60000:])
        raise
    finally:
        operator.stop()


def test_a_failed_rollout_is_told_early_with_the_service_account_token(
    cluster_kubectl: Kubectl, installed: Installed, tmp_path: Path, test_cluster: Any
) -> None:
    """Reading a rollout's new ReplicaSet and its pods (controller/rollout.py) needs nothing the role lacks."""
    if not test_cluster.local:
        pytest.skip("the crash-looping pods are kwok's stages: local cluster only")
    kubeconfig = service_account_kubeconfig(cluster_kubectl, installed, tmp_path / "maestro.kubeconfig")
    operator = OperatorProcess(kubeconfig, installed.namespace, tmp_path / "operator.log")
    operator.start()
    try:
        kubectl = cluster_kubectl.in_namespace(installed.namespace)
        kubectl.apply(test_operator.msa("crash", test_operator.svc("api")))
        test_operator.wait_ready(kubectl, "crash")
        kubectl.apply(test_operator.msa("crash", test_rollout.faulty("api", "crash-loop")))
        app = wait_until("the app to be Degraded", lambda: test_rollout.failed(kubectl, "crash"), timeout=90)
        assert " restarts in " in test_operator.condition(app, "Degraded")["message"]
        log = operator.log()
        assert "Forbidden" not in log, log[-5000:]
    except BaseException:
        print(f"===== operator log ({operator.log_path}) =====")
        print(operator.log()[-60000:])
        raise
    finally:
        operator.stop()


def test_service_account_can_do_nothing_else(cluster_kubectl: Kubectl, installed: Installed) -> None:
    ns = installed.namespace
    # Inside its namespace, what the operator needs.
    assert can_i(cluster_kubectl, installed, "patch", "deployments", "-n", ns) == "yes"
    assert (
        # `--subresource`: kubectl reads `resource/status` as the object named "status", not the subresource.
        can_i(
            cluster_kubectl,
            installed,
            "patch",
            "microserviceapps.maestro.dev",
            "--subresource=status",
            "-n",
            ns,
        )
        == "yes"
    )
    # Outside its role: nothing.
    assert can_i(cluster_kubectl, installed, "delete", "nodes") == "no"
    assert can_i(cluster_kubectl, installed, "create", "deployments", "-n", "default") == "no"
    assert can_i(cluster_kubectl, installed, "get", "secrets", "-n", "kube-system") == "no"
    # config snapshots (configFrom[].snapshot) are created and deleted; a Secret is never updated
    assert can_i(cluster_kubectl, installed, "create", "secrets", "-n", ns) == "yes"
    assert can_i(cluster_kubectl, installed, "update", "secrets", "-n", ns) == "no"
    assert can_i(cluster_kubectl, installed, "patch", "configmaps", "-n", ns) == "no"
    # the app's revisions: created, read, deleted, never changed
    assert can_i(cluster_kubectl, installed, "create", "controllerrevisions.apps", "-n", ns) == "yes"
    assert can_i(cluster_kubectl, installed, "patch", "controllerrevisions.apps", "-n", ns) == "no"
    assert can_i(cluster_kubectl, installed, "create", "pods", "-n", ns) == "no"
    assert can_i(cluster_kubectl, installed, "list", "pods", "-n", ns) == "yes"  # a failed run's pods
    assert can_i(cluster_kubectl, installed, "get", "pods", "-n", ns) == "no"
    # a rollout's new ReplicaSet (its pods tell a failed rollout), listed only
    assert can_i(cluster_kubectl, installed, "list", "replicasets.apps", "-n", ns) == "yes"
    assert can_i(cluster_kubectl, installed, "get", "replicasets.apps", "-n", ns) == "no"
    assert can_i(cluster_kubectl, installed, "list", "replicasets.apps", "-n", "default") == "no"
    assert can_i(cluster_kubectl, installed, "create", "jobs.batch", "-n", ns) == "yes"
    assert can_i(cluster_kubectl, installed, "update", "cronjobs.batch", "-n", ns) == "no"
    assert can_i(cluster_kubectl, installed, "create", "clusterrolebindings") == "no"
    assert can_i(cluster_kubectl, installed, "delete", "customresourcedefinitions") == "no"
    assert can_i(cluster_kubectl, installed, "update", "microserviceapps.maestro.dev", "-n", ns) == "no"


def test_plain_manifests_apply(cluster_kubectl: Kubectl, crd: None) -> None:
    """`kubectl apply -k deploy/manifests` installs the cluster-wide operator: namespace, RBAC, Deployment, CRD."""
    manifests = ROOT / "deploy" / "manifests"
    docs = [d for d in yaml.safe_load_all((manifests / "maestro.yaml").read_text()) if d]

    def not_terminating() -> bool:
        ns = cluster_kubectl.get("namespace", "maestro-system")
        return ns is None or ns["status"].get("phase") == "Active"

    wait_until("the maestro-system namespace of an earlier run to be gone", not_terminating)
    # Server-side, as the crd fixture applies the CRD (the same object), so the two never conflict.
    cluster_kubectl("apply", "--server-side", "--force-conflicts", "-k", str(manifests))
    try:
        for doc in docs:
            namespace = doc["metadata"].get("namespace")
            kubectl = cluster_kubectl.in_namespace(namespace) if namespace else cluster_kubectl
            assert kubectl.get(doc["kind"], doc["metadata"]["name"]), (
                f"{doc['kind']} {doc['metadata']['name']}"
            )
        # The operator's pod passes the namespace's `restricted` Pod Security admission (kwok then plays it Ready).
        cluster_kubectl(
            "--namespace",
            "maestro-system",
            "wait",
            "--for=condition=Available",
            "deployment/maestro",
            "--timeout=90s",
        )
        user = "system:serviceaccount:maestro-system:maestro"
        result = cluster_kubectl.run(
            "auth", "can-i", f"--as={user}", "patch", "deployments", "-A", check=False
        )
        assert result.stdout.strip() == "yes"
        result = cluster_kubectl.run("auth", "can-i", f"--as={user}", "delete", "nodes", check=False)
        assert result.stdout.strip() == "no"
    finally:
        # Everything but the CRD, which the other tests share.
        for doc in docs:
            if doc["kind"] in ("ClusterRole", "ClusterRoleBinding", "Namespace"):
                cluster_kubectl.run(
                    "delete", doc["kind"], doc["metadata"]["name"], "--wait=false", check=False
                )


# ---------------------------------------------------------------------------------------------------------------
# The whole operator e2e suite again, with the operator holding only the chart's ServiceAccount token: each test of
# test_operator.py and test_jobs.py is collected here too (as test_as_service_account_<name>), and this module's
# `op` fixture replaces those modules' admin-credentialed one.


@pytest.fixture
def op(
    request: pytest.FixtureRequest, cluster_kubectl: Kubectl, installed: Installed, tmp_path: Path
) -> Iterator[OperatorProcess]:
    kubeconfig = service_account_kubeconfig(cluster_kubectl, installed, tmp_path / "maestro.kubeconfig")
    lifecycle = running(request, installed.namespace, tmp_path, kubeconfig)
    proc = next(lifecycle)
    yield proc
    next(lifecycle, None)  # stops it; prints its log when the test failed
    assert "Forbidden" not in proc.log(), proc.log()[-5000:]


for _module in (test_operator, test_jobs):
    for _name, _test in vars(_module).copy().items():
        if _name.startswith("test_") and callable(_test):
            globals()[f"test_as_service_account_{_name.removeprefix('test_')}"] = _test
