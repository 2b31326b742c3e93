"""Render a MicroserviceApp into its desired children: Deployment, Service, HorizontalPodAutoscaler and
PodDisruptionBudget per service.

Pure: dicts in, dicts out, no Kubernetes client. The same input gives identical output, so the operator can
server-side apply the result on every pass and `maestro render` can print it. The objects list only the fields
Maestro owns (with autoscaling on, `spec.replicas` is absent so the HPA owns it).
"""

from collections.abc import Mapping
from typing import Any

from maestro.api import graph
from maestro.api import models as api
from maestro.render.kinds import CHILD_KINDS
from maestro.render.target import Target


def effective_services(spec: api.MicroserviceAppSpec) -> list[api.ServiceSpec]:
    """Every service with the app's defaults merged under it, in spec order."""
    return [api.effective_service(spec.defaults, service) for service in spec.services]


def render_service(
    app: Mapping[str, Any],
    service: api.ServiceSpec,
    services: Mapping[str, api.ServiceSpec],
    *,
    config_hash: str | None = None,
) -> list[dict[str, Any]]:
    """The children of one merged service (Deployment, then Service, HPA, PDB when they apply).

    `services` maps every merged service of the app by name (for the dependency variables). The operator
    uses this to apply a service's children only once its dependencies are Available.
    """
    deps = [services[name] for name in service.depends_on or [] if name in services]
    target = Target(app, service, deps, config_hash)
    return [child for kind in CHILD_KINDS if (child := kind.render(target)) is not None]


def render_app(
    app: Mapping[str, Any], *, config_hashes: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """Every desired child of an app: the full MicroserviceApp object (metadata.name, optional namespace and
    uid, spec) in, Deployments/Services/HPAs/PDBs out, services in dependency order (dependencies first).

    `config_hashes` maps a service name to its config hash (see confighash.py), put into its pod template
    annotation `maestro.dev/config-hash`. Raises api.SpecError when the app is invalid.
    """
    metadata = app.get("metadata") or {}
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        raise api.SpecError([("metadata.name", "required value")])
    spec = api.validate_app(name, app.get("spec"))
    merged = {service.name: service for service in effective_services(spec)}
    order = graph.topological_order(api.dependency_graph(spec))
    hashes = config_hashes or {}
    children: list[dict[str, Any]] = []
    for service_name in order:
        children += render_service(app, merged[service_name], merged, config_hash=hashes.get(service_name))
    return children
