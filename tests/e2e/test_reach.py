"""Routes and NetworkPolicies on a real API server (issue 20), with the Gateway API's CRDs installed by the local
cluster and no gateway implementation: what the API server accepted, what the operator keeps in place, and what
the status says. Enforcement, with real connections between real pods, is test_netpol_real.py's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import operator_process
from tests.e2e.kubectl import Kubectl
from tests.e2e.operator_process import OperatorProcess
from tests.e2e.test_operator import msa, names, svc, wait_ready
from tests.e2e.waits import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

LABELS = "app.kubernetes.io/component={},app.kubernetes.io/instance=shop"
GATEWAY = {"expose": {"http": {"gateway": {"name": "public"}}}}
ROUTE = {"http": {"hosts": ["shop.example.com"], "paths": ["/", "/api"]}}


@pytest.fixture
def op(
    request: pytest.FixtureRequest, test_cluster: object, crd: None, namespace: str, tmp_path: Path
) -> Iterator[OperatorProcess]:
    yield from operator_process.running(request, namespace, tmp_path)


def shop(*, web: dict[str, Any] | None = None, db: dict[str, Any] | None = None) -> dict[str, Any]:
    return msa(
        "shop",
        svc("web", **({"dependsOn": ["api"], "expose": ROUTE} | (web or {}))),
        svc("api", dependsOn=["db"]),
        svc("db", **(db or {})),
        defaults=GATEWAY,
    )


def allowed_from(kubectl: Kubectl, policy: str) -> list[str]:
    """The components whose pods the policy lets in (its podSelector peers)."""
    obj = kubectl.get("networkpolicy", policy) or {}
    return sorted(
        peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
        for rule in obj.get("spec", {}).get("ingress") or []
        for peer in rule.get("from") or []
        if "app.kubernetes.io/component" in (peer.get("podSelector") or {}).get("matchLabels", {})
    )


def web_status(kubectl: Kubectl) -> dict[str, Any]:
    app = kubectl.get("msa", "shop")
    return next(s for s in app["status"]["services"] if s["name"] == "web")


def test_policies_and_route_follow_the_graph_and_expose(kubectl: Kubectl, op: OperatorProcess) -> None:
    kubectl.apply(shop())
    app = wait_ready(kubectl, "shop")
    uid = app["metadata"]["uid"]
    assert names(kubectl, "networkpolicies") == {"shop-web", "shop-api", "shop-db"}
    assert names(kubectl, "httproutes") == {"shop-web"}
    for kind in ("networkpolicies", "httproutes"):
        for child in kubectl.get(kind, selector="app.kubernetes.io/managed-by=maestro"):
            owners = [(o["kind"], o["uid"], o["controller"]) for o in child["metadata"]["ownerReferences"]]
            assert owners == [("MicroserviceApp", uid, True)], child["metadata"]["name"]
    assert allowed_from(kubectl, "shop-db") == ["api"]
    assert allowed_from(kubectl, "shop-api") == ["web"]
    db = kubectl.get("networkpolicy", "shop-db")
    assert db["spec"]["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/component": "db",
        "app.kubernetes.io/instance": "shop",
    }
    assert db["spec"]["ingress"][0]["ports"] == [{"port": 8080, "protocol": "TCP"}]
    route = kubectl.get("httproute", "shop-web")
    assert route["spec"]["hostnames"] == ["shop.example.com"]
    assert route["spec"]["parentRefs"][0]["name"] == "public"
    assert route["spec"]["rules"][0]["backendRefs"][0]["name"] == "shop-web"
    # No gateway runs: nobody accepted the route, and the status says so.
    web = web_status(kubectl)
    assert web["urls"] == ["http://shop.example.com/", "http://shop.example.com/api"]
    assert web["route"]["kind"] == "HTTPRoute" and web["route"]["accepted"] == "Unknown"
    assert web["route"]["message"].startswith("not yet accepted: no controller of Gateway")

    # The graph changes: web now calls db too, so db's policy lets web in.
    kubectl.apply(shop(web={"dependsOn": ["api", "db"]}))
    wait_until(
        "db's policy to let web in", lambda: allowed_from(kubectl, "shop-db") == ["api", "web"], timeout=60
    )

    # A hand edit of a policy is undone; a route deleted by hand comes back.
    kubectl("patch", "networkpolicy", "shop-db", "--type=merge", "-p", json.dumps({"spec": {"ingress": []}}))
    wait_until(
        "db's policy to be restored", lambda: allowed_from(kubectl, "shop-db") == ["api", "web"], timeout=60
    )
    old_uid = kubectl.get("httproute", "shop-web")["metadata"]["uid"]
    kubectl("delete", "httproute", "shop-web")
    wait_until(
        "the HTTPRoute to be recreated",
        lambda: (
            (kubectl.get("httproute", "shop-web") or {}).get("metadata", {}).get("uid") not in (None, old_uid)
        ),
        timeout=60,
    )

    # expose changes: an Ingress instead (the HTTPRoute pruned), then no route at all; db's policy turned off.
    ingress = {
        "http": {"hosts": ["shop.example.com"], "tlsSecret": "shop-tls", "ingress": {"className": "nginx"}}
    }
    kubectl.apply(
        shop(web={"dependsOn": ["api", "db"], "expose": ingress}, db={"networkPolicy": {"enabled": False}})
    )
    wait_until(
        "an Ingress instead of the HTTPRoute, and no policy for db",
        lambda: (
            names(kubectl, "ingresses") == {"shop-web"}
            and names(kubectl, "httproutes") == set()
            and names(kubectl, "networkpolicies") == {"shop-web", "shop-api"}
        ),
        timeout=60,
    )
    assert kubectl.get("ingress", "shop-web")["spec"]["tls"] == [
        {"hosts": ["shop.example.com"], "secretName": "shop-tls"}
    ]
    wait_ready(kubectl, "shop")
    web = web_status(kubectl)
    assert web["urls"] == ["https://shop.example.com/"]
    assert (
        web["route"]["kind"] == "Ingress"
        and web["route"]["message"] == "no address yet: no ingress controller has answered"
    )
    # the Ingress's routed port is reachable from every namespace (its controller's is not known)
    web_policy = kubectl.get("networkpolicy", "shop-web")
    assert {"from": [{"namespaceSelector": {}}], "ports": [{"port": 8080, "protocol": "TCP"}]} in web_policy[
        "spec"
    ]["ingress"]

    kubectl.apply(shop(web={"dependsOn": ["api", "db"], "expose": {"type": "ClusterIP"}}))
    wait_until("the Ingress to be pruned", lambda: names(kubectl, "ingresses") == set(), timeout=60)
    wait_ready(kubectl, "shop")
    assert "urls" not in web_status(kubectl) and "route" not in web_status(kubectl)


def test_an_invalid_route_is_reported_naming_the_field(kubectl: Kubectl, op: OperatorProcess) -> None:
    # Two services at the same host and path: the schema cannot see it, the operator can.
    same = {"http": {"hosts": ["shop.example.com"]}}
    kubectl.apply(msa("shop", svc("web", expose=same), svc("api", expose=same), defaults=GATEWAY))
    wait_until(
        "the app to be Invalid",
        lambda: ((kubectl.get("msa", "shop") or {}).get("status") or {}).get("phase") == "Invalid",
        timeout=60,
    )
    ready = next(c for c in kubectl.get("msa", "shop")["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "InvalidSpec"
    assert (
        "spec.services[1].expose.http.hosts: shop.example.com/ is already routed to service 'web'"
        in ready["message"]
    )
    assert names(kubectl, "httproutes") == set()


def test_the_gateways_answer_is_read_back_into_the_status(kubectl: Kubectl, op: OperatorProcess) -> None:
    kubectl.apply(shop())
    wait_ready(kubectl, "shop")
    assert web_status(kubectl)["route"]["accepted"] == "Unknown"
    # What a gateway controller writes (none runs here): accepted, but its backend is not resolved.
    stamp = "2026-01-01T00:00:00Z"
    answer = {
        "parents": [
            {
                "parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "public"},
                "controllerName": "example.com/gateway",
                "conditions": [
                    {"type": "Accepted", "status": "True", "reason": "Accepted", "message": "",
                     "lastTransitionTime": stamp},
                    {"type": "ResolvedRefs", "status": "False", "reason": "BackendNotFound",
                     "message": "no endpoints", "lastTransitionTime": stamp},
                ],
            }
        ]
    }  # fmt: skip
    kubectl(
        "patch",
        "httproute",
        "shop-web",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": answer}),
    )

    def read_back() -> dict[str, Any] | None:
        route: dict[str, Any] = web_status(kubectl).get("route") or {}
        return route if route.get("accepted") == "True" else None

    route = wait_until("the route's acceptance in the app's status", read_back, timeout=60)
    assert route["resolvedRefs"] == "False"
    assert route["message"] == "ResolvedRefs: BackendNotFound: no endpoints"
