"""The Kubernetes Service of a service: ClusterIP, NodePort, LoadBalancer or headless. Pure."""

from __future__ import annotations

from typing import Any

from maestro.render.names import child_metadata, selector_labels, service_ports
from maestro.render.target import Target


def render(target: Target) -> dict[str, Any] | None:
    """The Kubernetes Service of one (merged) service, or None (no ports, or expose type None)."""
    app, service = target.app, target.service
    if service is None:
        return None
    ports = service_ports(service)
    if not ports:
        return None
    app_name = app["metadata"]["name"]
    expose = (service.expose.type if service.expose else None) or "ClusterIP"
    spec: dict[str, Any] = {"type": "ClusterIP" if expose == "Headless" else expose}
    if expose == "Headless":
        spec["clusterIP"] = "None"
    spec["selector"] = selector_labels(app_name, service.name)
    spec["ports"] = [
        {"name": p.name, "port": p.port, "targetPort": p.name, "protocol": p.protocol} for p in ports
    ]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": child_metadata(app, service),
        "spec": spec,
    }
