"""The Gateway API HTTPRoute of a service with `expose.http` (without `ingress`). Pure.

Only the fields the Gateway API's CRD would not default are left out of the answer, so the route Maestro applies is
the route a user reads back: every match a PathPrefix, one backendRef to the service's Service on the routed port.
"""

from __future__ import annotations

from typing import Any

from maestro.render.names import child_metadata, child_name
from maestro.render.networkpolicy import routed_port
from maestro.render.target import Target

GATEWAY_GROUP = "gateway.networking.k8s.io"
API_VERSION = f"{GATEWAY_GROUP}/v1"


def render(target: Target) -> dict[str, Any] | None:
    """The HTTPRoute <app>-<service> of one (merged) service, or None (no expose.http, or an Ingress asked)."""
    app, service = target.app, target.service
    http = service.expose.http if service is not None and service.expose else None
    port = routed_port(service) if service is not None else None
    if service is None or http is None or http.ingress is not None or http.gateway is None or port is None:
        return None
    parent: dict[str, Any] = {"group": GATEWAY_GROUP, "kind": "Gateway", "name": http.gateway.name}
    if http.gateway.namespace:
        parent["namespace"] = http.gateway.namespace
    if http.gateway.section_name:
        parent["sectionName"] = http.gateway.section_name
    name = child_name(app["metadata"]["name"], service.name)
    return {
        "apiVersion": API_VERSION,
        "kind": "HTTPRoute",
        "metadata": child_metadata(app, service, versioned=False),
        "spec": {
            "parentRefs": [parent],
            "hostnames": list(http.hosts or []),
            "rules": [
                {
                    "matches": [
                        {"path": {"type": "PathPrefix", "value": path}} for path in http.paths or ["/"]
                    ],
                    "backendRefs": [
                        {"group": "", "kind": "Service", "name": name, "port": port.port, "weight": 1}
                    ],
                }
            ],
        },
    }
