"""The networking.k8s.io/v1 Ingress of a service with `expose.http.ingress`. Pure."""

from __future__ import annotations

from typing import Any

from maestro.render.names import child_metadata, child_name
from maestro.render.networkpolicy import routed_port
from maestro.render.target import Target


def render(target: Target) -> dict[str, Any] | None:
    """The Ingress <app>-<service> of one (merged) service, or None (no expose.http.ingress)."""
    app, service = target.app, target.service
    http = service.expose.http if service is not None and service.expose else None
    port = routed_port(service) if service is not None else None
    if service is None or http is None or http.ingress is None or port is None:
        return None
    name = child_name(app["metadata"]["name"], service.name)
    paths = [
        {
            "path": path,
            "pathType": "Prefix",
            "backend": {"service": {"name": name, "port": {"name": port.name}}},
        }
        for path in http.paths or ["/"]
    ]
    spec: dict[str, Any] = {}
    if http.ingress.class_name:
        spec["ingressClassName"] = http.ingress.class_name
    if http.tls_secret:
        spec["tls"] = [{"hosts": list(http.hosts or []), "secretName": http.tls_secret}]
    spec["rules"] = [{"host": host, "http": {"paths": paths}} for host in http.hosts or []]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": child_metadata(app, service, versioned=False),
        "spec": spec,
    }
