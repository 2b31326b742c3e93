"""The test cluster is a real one: nodes Ready, controllers reconcile, the garbage collector and PodSecurity work.

These checks hold on the project's local control plane and on a kind cluster alike.
"""

from __future__ import annotations

import json
import os

import pytest

from tests.e2e.cluster import TestCluster
from tests.e2e.kubectl import Kubectl
from tests.e2e.waits import condition_status, wait_until

pytestmark = pytest.mark.e2e


def ready_node_names(kubectl: Kubectl) -> list[str]:
    return [n["metadata"]["name"] for n in kubectl.get("nodes") if condition_status(n, "Ready") == "True"]


def test_nodes_are_ready(cluster_kubectl: Kubectl, test_cluster: TestCluster) -> None:
    ready = wait_until("a Ready node", lambda: ready_node_names(cluster_kubectl))
    if test_cluster.local:
        simulated = [name for name in ready if name.startswith("kwok-node-")]
        assert len(simulated) == 3, f"the local cluster registers 3 simulated nodes, Ready: {ready}"
        # As root it also runs the real node (hack/cluster/node.py), labelled apart from the simulated ones.
        real = ["real-node"] if os.geteuid() == 0 else []
        assert sorted(set(ready) - set(simulated)) == real, ready
        if real:
            (node,) = [n for n in cluster_kubectl.get("nodes") if n["metadata"]["name"] == "real-node"]
            assert node["metadata"]["labels"]["type"] == "real"
    table = cluster_kubectl("get", "nodes")
    assert all(name in table for name in ready)


def test_deployment_becomes_available_and_is_garbage_collected(kubectl: Kubectl) -> None:
    kubectl.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "smoke"},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "smoke"}},
                "template": {
                    "metadata": {"labels": {"app": "smoke"}},
                    "spec": {"containers": [{"name": "web", "image": "registry.example.com/smoke:1"}]},
                },
            },
        }
    )
    kubectl("wait", "--for=condition=Available", "--timeout=90s", "deployment/smoke")
    pods = wait_until(
        "3 Running pods bound to nodes",
        lambda: (
            [
                p
                for p in kubectl.get("pods", selector="app=smoke")
                if p["status"].get("phase") == "Running" and p["spec"].get("nodeName")
            ]
            if len(kubectl.get("pods", selector="app=smoke")) == 3
            else []
        ),
    )
    assert len(pods) == 3
    assert kubectl.get("replicasets", selector="app=smoke"), "the Deployment controller made a ReplicaSet"

    kubectl("delete", "deployment", "smoke", "--cascade=background", "--wait=false")
    wait_until(
        "the garbage collector to remove the ReplicaSet and Pods",
        lambda: (
            not kubectl.get("replicasets", selector="app=smoke")
            and not kubectl.get("pods", selector="app=smoke")
        ),
    )


def test_pod_security_admission_enforces_restricted(kubectl: Kubectl) -> None:
    kubectl("label", "namespace", kubectl.namespace or "", "pod-security.kubernetes.io/enforce=restricted")
    privileged = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "root"},
        "spec": {"containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": True}}]},
    }
    result = kubectl.try_apply(privileged)
    assert result.returncode != 0
    assert 'violates PodSecurity "restricted' in result.stderr, result.stderr

    hardened = json.loads(json.dumps(privileged))
    hardened["metadata"]["name"] = "hardened"
    hardened["spec"] = {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {
                "name": "c",
                "image": "busybox",
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            }
        ],
    }
    assert kubectl.try_apply(hardened).returncode == 0, "a restricted-compliant pod is admitted"
