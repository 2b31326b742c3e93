"""The NetworkPolicy of a service, derived from the app's dependency graph (docs/api.md, "Network policies").
Pure.

Ingress: from the pods of the services and jobs that depend on it (their `dependsOn`), on its declared ports; from
anywhere on the Service's ports when it is a NodePort or LoadBalancer (external clients come through the nodes);
from the route's gateway or ingress controller (`networkPolicy.routeFrom`) on the routed port; from `allowFrom`.
Egress: open, unless `egress: restricted`: then DNS, the dependencies' pods on their ports, and `allowTo`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from maestro.api import models as api
from maestro.render.names import child_metadata, selector_labels, service_ports
from maestro.render.target import Target

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"  # every namespace has it (set by the API server)
DNS_PORTS = ({"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53})


def _pod_ports(ports: Sequence[api.Port]) -> list[dict[str, Any]]:
    """NetworkPolicy ports are the pods' (a policy sees the connection after the Service's translation)."""
    return [{"protocol": p.protocol, "port": p.target_port or p.port} for p in ports]


def peer(item: api.PeerSelector) -> dict[str, Any]:
    """A NetworkPolicyPeer from the spec's peer (without its ports)."""
    result: dict[str, Any] = {}
    if item.ip_block is not None:
        block: dict[str, Any] = {"cidr": item.ip_block.cidr}
        if item.ip_block.except_:
            block["except"] = list(item.ip_block.except_)
        result["ipBlock"] = block
    for field, key in (("namespace_selector", "namespaceSelector"), ("pod_selector", "podSelector")):
        selector = getattr(item, field)
        if selector is not None:
            result[key] = selector.model_dump(by_alias=True, exclude_none=True)
    return result


def route_peers(
    app: Mapping[str, Any], http: api.HttpRoute, policy: api.NetworkPolicySettings
) -> list[dict[str, Any]]:
    """Where the route's traffic comes from: routeFrom, else the Gateway's namespace (an HTTPRoute), else every
    namespace (an Ingress: where its controller runs is not known)."""
    if policy.route_from:
        return [peer(item) for item in policy.route_from]
    if http.ingress is not None:
        return [{"namespaceSelector": {}}]
    namespace = http.gateway.namespace if http.gateway else None
    if namespace is None or namespace == (app.get("metadata") or {}).get("namespace"):
        return [{"podSelector": {}}]  # the app's own namespace
    return [{"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: namespace}}}]


def routed_port(service: api.ServiceSpec) -> api.Port | None:
    """The service port a route sends traffic to: expose.http.port, else the first."""
    http = service.expose.http if service.expose else None
    ports = service_ports(service)
    if http is None or not ports:
        return None
    return next((p for p in ports if p.name == http.port), ports[0]) if http.port else ports[0]


def _ingress(
    target: Target, service: api.ServiceSpec, policy: api.NetworkPolicySettings
) -> list[dict[str, Any]]:
    app_name = target.app["metadata"]["name"]
    declared = list(service.ports or [])
    rules: list[dict[str, Any]] = []
    if target.dependents and declared:
        rules.append(
            {
                "from": [
                    {"podSelector": {"matchLabels": selector_labels(app_name, d.name)}}
                    for d in target.dependents
                ],
                "ports": _pod_ports(declared),
            }
        )
    exposed = service.expose.type if service.expose else None
    if exposed in ("NodePort", "LoadBalancer") and service_ports(service):
        rules.append({"ports": _pod_ports(service_ports(service))})  # from anywhere: external clients
    http = service.expose.http if service.expose else None
    port = routed_port(service)
    if http is not None and port is not None:
        rules.append({"from": route_peers(target.app, http, policy), "ports": _pod_ports([port])})
    for item in policy.allow_from or []:
        rule: dict[str, Any] = {"from": [peer(item)]}
        chosen = [p for p in declared if p.name in {str(n) for n in item.ports}] if item.ports else declared
        if chosen:
            rule["ports"] = _pod_ports(chosen)
        rules.append(rule)
    return rules


def _egress(target: Target, policy: api.NetworkPolicySettings) -> list[dict[str, Any]]:
    app_name = target.app["metadata"]["name"]
    rules: list[dict[str, Any]] = [{"ports": [dict(p) for p in DNS_PORTS]}]
    for dependency in target.dependencies:
        if dependency.ports:
            rules.append(
                {
                    "to": [{"podSelector": {"matchLabels": selector_labels(app_name, dependency.name)}}],
                    "ports": _pod_ports(dependency.ports),
                }
            )
    for item in policy.allow_to or []:
        rule: dict[str, Any] = {"to": [peer(item)]}
        if item.ports:
            rule["ports"] = [{"port": port} for port in item.ports]
        rules.append(rule)
    return rules


def render(target: Target) -> dict[str, Any] | None:
    """The NetworkPolicy of one (merged) service, or None (networkPolicy.enabled false; jobs get none: they
    accept no connections)."""
    app, service = target.app, target.service
    if service is None:
        return None
    policy = service.network_policy or api.NetworkPolicySettings()
    if policy.enabled is False:
        return None
    restricted = policy.egress == "restricted"
    spec: dict[str, Any] = {
        "podSelector": {"matchLabels": selector_labels(app["metadata"]["name"], service.name)},
        "policyTypes": ["Ingress", "Egress"] if restricted else ["Ingress"],
        "ingress": _ingress(target, service, policy),
    }
    if restricted:
        spec["egress"] = _egress(target, policy)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": child_metadata(app, service, versioned=False),
        "spec": spec,
    }
