"""The HorizontalPodAutoscaler (autoscaling/v2) of a service with `autoscaling`. Pure."""

from __future__ import annotations

from typing import Any

from maestro.render.names import child_metadata, child_name
from maestro.render.target import Target

DEFAULT_CPU_TARGET = 80


def render(target: Target) -> dict[str, Any] | None:
    """The HorizontalPodAutoscaler (autoscaling/v2) of one (merged) service, or None."""
    app, service = target.app, target.service
    if service is None:
        return None
    scaling = service.autoscaling
    if scaling is None:
        return None
    app_name = app["metadata"]["name"]
    name = child_name(app_name, service.name)
    cpu = scaling.target_cpu_utilization_percentage
    memory = scaling.target_memory_utilization_percentage
    if cpu is None and memory is None:
        cpu = DEFAULT_CPU_TARGET
    metrics = [
        {
            "type": "Resource",
            "resource": {"name": resource, "target": {"type": "Utilization", "averageUtilization": v}},
        }
        for resource, v in (("cpu", cpu), ("memory", memory))
        if v is not None
    ]
    min_replicas = scaling.min_replicas or 1
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "minReplicas": min_replicas,
        "maxReplicas": max(scaling.max_replicas or min_replicas, min_replicas),
        "metrics": metrics,
    }
    if scaling.behavior:
        spec["behavior"] = scaling.behavior
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": child_metadata(app, service),
        "spec": spec,
    }
