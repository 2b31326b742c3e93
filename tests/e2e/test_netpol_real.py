"""NetworkPolicies enforced for real (issue 20): real connections between real pods of the sample image
(docs/images.md), whose `/call` asks each of its `*_URL` variables' `/info` and reports what happened.

The local cluster's real node runs kube-router's network policy controller (docs/real-node.md); on kind, kindnet
enforces policies since kind v0.24. The `enforcer` fixture names the implementation, and fails the test at once
when it finds none: without one every "refused" below would be answered. (Checked once: with the local cluster
started `--no-network-policies`, the intruder reached db and web.)

The callers (api, intruder, the edge gateway) are driven through the API server's service proxy, which is not a
pod: their own policies are off so that the proxy reaches them on any cluster.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.e2e.cluster import CLUSTER_SCRIPT, LOCAL_CLUSTER_NAME, TestCluster
from tests.e2e.kubectl import Kubectl
from tests.e2e.operator_process import OperatorProcess
from tests.e2e.test_real_pods import msa, namespace, op, proxy_ok, svc, wait_ready
from tests.e2e.waits import wait_until
from tests.faults.client import Client

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

__all__ = [
    "namespace",
    "op",
]  # fixtures: a real-node namespace, and the operator watching it (test_real_pods)

OPEN = {"networkPolicy": {"enabled": False}}  # a caller: reached by the test through the API server's proxy
DB = "http://shop-db:80"
WEB = "http://shop-web:80"
GATEWAY_PODS = {"app.kubernetes.io/instance": "edge", "app.kubernetes.io/component": "gateway"}
# Kubernetes DaemonSets (kube-system) that enforce NetworkPolicies, by a word of their name or image.
KNOWN_ENFORCERS = ("kube-network-policies", "kindnet", "calico", "cilium", "kube-router", "antrea", "weave")
SETTLE = (
    90.0  # a changed policy reaches the node's rules in a second or two; a rollout of real pods takes longer
)


@pytest.fixture(scope="session")
def enforcer(test_cluster: TestCluster, cluster_kubectl: Kubectl) -> str:
    """What enforces NetworkPolicies on this cluster: the local cluster's kube-router (its status), else a known
    DaemonSet of kube-system. None found: the test fails here, saying so, rather than later and puzzling."""
    if test_cluster.local:
        status = subprocess.run(
            [sys.executable, str(CLUSTER_SCRIPT), f"--name={LOCAL_CLUSTER_NAME}", "status"],
            capture_output=True,
            text=True,
        ).stdout
        if any(line.split()[:2] == ["kube-router", "running,"] for line in status.splitlines()):
            return "kube-router (the local cluster's real node)"
        pytest.fail(f"the local cluster runs no kube-router (started with --no-network-policies?):\n{status}")
    daemonsets = cluster_kubectl.in_namespace("kube-system").get("daemonsets") or []
    found = sorted(
        f"{ds['metadata']['name']} ({', '.join(c['image'] for c in containers)})"
        for ds in daemonsets
        if (containers := ds["spec"]["template"]["spec"]["containers"])
        and any(word in json.dumps([ds["metadata"]["name"], containers]) for word in KNOWN_ENFORCERS)
    )
    if not found:
        pytest.fail(
            f"no NetworkPolicy implementation found among kube-system's DaemonSets ({KNOWN_ENFORCERS})"
        )
    return ", ".join(found)


def shop(*, api_depends_on_db: bool = True) -> dict[str, Any]:
    """db, which api depends on (and also calls as STORE_URL, which stays when the dependency goes); an intruder
    that calls db and web without declaring either; web, exposed through a Gateway whose pods are edge's."""
    return msa(
        "shop",
        svc("db"),
        svc("api", env={"STORE_URL": DB}, **({"dependsOn": ["db"]} if api_depends_on_db else {}), **OPEN),
        svc("intruder", env={"STORE_URL": DB, "WEB_URL": WEB}, **OPEN),
        svc(
            "web",
            expose={"http": {"hosts": ["shop.example.com"], "gateway": {"name": "public"}}},
            networkPolicy={"routeFrom": [{"podSelector": {"matchLabels": GATEWAY_PODS}}]},
        ),
    )


def edge() -> dict[str, Any]:
    """The gateway's side: pods that the route's policy lets in (routeFrom), calling web as a gateway would."""
    return msa("edge", svc("gateway", env={"WEB_URL": WEB}, **OPEN))


def calls(client: Client, namespace: str, service: str) -> dict[str, dict[str, Any]] | None:
    """The caller's `/call` report per variable (None while it does not answer)."""
    report = proxy_ok(client, namespace, service, "call")
    return dict(report["calls"]) if isinstance(report, dict) and "calls" in report else None


def outcome(call: dict[str, Any]) -> str:
    return "reached" if call.get("ok") else f"refused ({call.get('error') or call.get('status')})"


def wait_calls(
    client: Client, namespace: str, service: str, expected: dict[str, str], enforcer: str
) -> dict[str, dict[str, Any]]:
    """Until each named variable of the caller's `/call` is `reached` or `refused` as expected."""

    def matches() -> dict[str, dict[str, Any]] | None:
        report = calls(client, namespace, service)
        if report is None:
            return None
        seen = {
            name: outcome(report[name]).split(" ")[0] if name in report else "absent" for name in expected
        }
        assert seen == expected, f"{service}'s calls: {report}"
        return report

    report = wait_until(
        f"{service}'s calls to be {expected} (policies enforced by {enforcer})", matches, timeout=SETTLE
    )
    assert report is not None
    return report


def test_only_declared_dependents_and_the_gateway_get_through(
    kubectl: Kubectl, client: Client, op: OperatorProcess, enforcer: str, test_cluster: TestCluster
) -> None:
    namespace = kubectl.namespace or ""
    kubectl.apply(shop())
    kubectl.apply(edge())
    wait_ready(kubectl, "shop")
    wait_ready(kubectl, "edge")

    # (a) the dependent reaches its dependency, by the injected DB_URL and by its own STORE_URL.
    api = wait_calls(client, namespace, "shop-api", {"DB_URL": "reached", "STORE_URL": "reached"}, enforcer)
    assert api["DB_URL"]["url"] == DB and api["DB_URL"]["status"] == 200
    # (b) the same addresses, from a service that declared no dependency: refused by db's and web's policies.
    intruder = wait_calls(
        client, namespace, "shop-intruder", {"STORE_URL": "refused", "WEB_URL": "refused"}, enforcer
    )
    assert "status" not in intruder["STORE_URL"], "refused before any HTTP answer"
    # (c) the exposed service, from the gateway's pods (routeFrom).
    gateway = wait_calls(client, namespace, "edge-gateway", {"WEB_URL": "reached"}, enforcer)
    assert gateway["WEB_URL"]["status"] == 200
    if test_cluster.local:
        # The host (the API server's service proxy) counts as the node, as kubelet probes do: db, closed to
        # every pod but api's, still answers it.
        assert proxy_ok(client, namespace, "shop-db", "info"), "the API server's proxy cannot reach db"

    # (d) api no longer depends on db: db's policy lets nobody in, and api's calls (STORE_URL stays) are refused.
    kubectl.apply(shop(api_depends_on_db=False))
    wait_until(
        "db's policy to let no pod in",
        lambda: (p := kubectl.get("networkpolicy", "shop-db")) and p["spec"].get("ingress") in (None, []),
        timeout=SETTLE,
    )
    after = wait_calls(client, namespace, "shop-api", {"DB_URL": "absent", "STORE_URL": "refused"}, enforcer)
    assert not after["STORE_URL"]["ok"]
