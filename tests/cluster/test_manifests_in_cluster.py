"""README's "Install on a cluster", run as written on the local cluster: its local-cluster lines (the image into
the real node's containerd with `cluster.py import-image`, the project's helm and kubectl on PATH, the namespace
maestro-system on the real node with restricted Pod Security), then its `helm install` line as it is, and after
an uninstall its plain-manifests line (`kubectl apply -k deploy/manifests`) as it is. Both times the chart's
default values run: image ghcr.io/maestro-dev/maestro:0.1.0 (import-image's second name for the image just
built), two replicas on the real node, one acting, and an app is reconciled.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.cluster.in_cluster import REAL_NODE, OperatorImage, Pods, import_operator_image, rbac_denials
from tests.e2e import cluster as test_cluster_module
from tests.e2e.kubectl import Kubectl
from tests.e2e.test_operator import msa, svc, wait_ready
from tests.e2e.waits import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MANIFESTS = ROOT / "deploy" / "manifests" / "maestro.yaml"
NAMESPACE = "maestro-system"
DEFAULT_IMAGE = "ghcr.io/maestro-dev/maestro:0.1.0"


def readme_lines() -> tuple[str, str, str]:
    """(the local-cluster block, the helm install line, the plain-manifests line) of README's section."""
    text = README.read_text()
    section = text[text.index("## Install on a cluster") :]
    section = section[: section.index("\n## ", 1)]
    first = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    local = re.search(r"<!-- local-install -->\n```sh\n(.*?)```", section, re.DOTALL)
    assert first and local, "README's install section has its two shell blocks"
    helm_line, manifests_line = first.group(1).strip().splitlines()
    assert helm_line.startswith("helm install ") and manifests_line.startswith("kubectl apply -k ")
    return local.group(1), helm_line, manifests_line


def shell(script: str) -> None:
    """bash, in the repository, as a user's shell on the local cluster named for the tests."""
    env = dict(os.environ, MAESTRO_CLUSTER_NAME=test_cluster_module.LOCAL_CLUSTER_NAME)
    env.pop("KUBECONFIG", None)  # the README's lines set it themselves
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, f"$ {script}\n{result.stdout}\n{result.stderr}"


def cleanup(cluster_kubectl: Kubectl) -> None:
    """The cluster-scoped objects of the chart and the manifests, the namespace, the peering object (not the CRDs,
    which the other tests share)."""
    docs = [d for d in yaml.safe_load_all(MANIFESTS.read_text()) if d]
    for doc in docs:
        if doc["kind"] in ("ClusterRole", "ClusterRoleBinding"):
            cluster_kubectl.run(
                "delete", doc["kind"], doc["metadata"]["name"], "--ignore-not-found", check=False
            )
    cluster_kubectl.run("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=false", check=False)
    cluster_kubectl.run("delete", "clusterkopfpeering", "maestro", "--ignore-not-found", check=False)


@pytest.fixture
def fresh(cluster_kubectl: Kubectl, crd: None) -> Iterator[None]:
    wait_until(
        f"namespace {NAMESPACE} of an earlier test to be gone",
        lambda: cluster_kubectl.get("namespace", NAMESPACE) is None,
        timeout=120,
    )
    cleanup(cluster_kubectl)
    try:
        yield
    finally:
        cleanup(cluster_kubectl)


def check_running(
    cluster_kubectl: Kubectl, kubectl: Kubectl, operator_image: OperatorImage, app: str
) -> None:
    """Two pods of the default image on the real node, one acting, /metrics through the Service; an app in the
    test's namespace made Ready."""
    pods = Pods(
        cluster_kubectl.in_namespace(NAMESPACE),
        "maestro",
        "app.kubernetes.io/name=maestro",
        operator_image,
        service="maestro-metrics",
    )
    try:
        pods.wait_ready()
        for pod in pods.current():
            assert pod["spec"]["nodeName"] == REAL_NODE
            assert pod["spec"]["containers"][0]["image"] == DEFAULT_IMAGE
        ok, text = pods.service_get("/metrics")
        assert ok and "maestro_leader " in text, text
        kubectl.apply(msa(app, svc("web", replicas=2)))
        wait_ready(kubectl, app)
        assert pods.metric(pods.active(), "maestro_apply_total") > 0
        assert not rbac_denials(pods.logs())
    except BaseException:
        print(
            f"===== the operator pods =====\n{pods.describe()}\n===== their logs =====\n{pods.logs()[-20000:]}"
        )
        raise


def test_readme_install_on_the_local_cluster_works_as_written(
    test_cluster: test_cluster_module.TestCluster, cluster_kubectl: Kubectl, kubectl: Kubectl, fresh: None
) -> None:
    if not test_cluster.local or os.geteuid() != 0:
        pytest.fail("README's local-cluster lines need the local cluster's real node: run as root")
    local, helm_line, manifests_line = readme_lines()

    shell(f"{local}\n{helm_line}")
    # The image import-image put there under the chart's default name is the one built from these sources.
    operator_image = import_operator_image(test_cluster)
    namespace = cluster_kubectl.get("namespace", NAMESPACE)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    check_running(cluster_kubectl, kubectl, operator_image, "with-helm")

    shell(
        f'eval "$(.venv/bin/python hack/cluster/cluster.py env)"\n'
        f'export PATH="$(dirname "$(.venv/bin/python hack/helm/helm.py build)"):$PATH"\n'
        f"helm uninstall maestro --namespace {NAMESPACE} --wait"
    )
    wait_until(
        "the chart's pods to be gone",
        lambda: not cluster_kubectl.in_namespace(NAMESPACE).get("pods"),
        timeout=90,
    )
    shell(f'eval "$(.venv/bin/python hack/cluster/cluster.py env)"\n{manifests_line}')
    check_running(cluster_kubectl, kubectl, operator_image, "with-manifests")
    assert kubectl.get("deployment", "with-helm-web"), "the first app stays, now kept by the new install"
