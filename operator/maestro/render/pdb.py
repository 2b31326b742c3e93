"""The PodDisruptionBudget of a service that runs two pods or more (or asks for one). Pure."""

from __future__ import annotations

from typing import Any

from maestro.api import models as api
from maestro.render.names import child_metadata, selector_labels
from maestro.render.target import Target


def replica_floor(service: api.ServiceSpec) -> int:
    """The fewest pods the service runs when healthy: autoscaling.minReplicas, else replicas (default 1)."""
    if service.autoscaling is not None:
        return service.autoscaling.min_replicas or 1
    return 1 if service.replicas is None else service.replicas


def render(target: Target) -> dict[str, Any] | None:
    """The PodDisruptionBudget of one (merged) service, or None.

    Default sizing from the replica floor: below 2 replicas, none (a single pod cannot stay available through
    a drain; a budget would only block the drain). From 2 on, `maxUnavailable: 1`: one pod at a time may be
    evicted whatever the HPA has scaled to (minAvailable: floor-1 would allow many evictions at once when
    scaled up). `unhealthyPodEvictionPolicy: AlwaysAllow` lets drains evict pods that are not ready anyway, so
    a broken rollout never deadlocks a node drain. `disruptionBudget` overrides or disables this.
    """
    app, service = target.app, target.service
    if service is None:
        return None
    budget = service.disruption_budget or api.DisruptionBudget()
    if budget.enabled is False:
        return None
    explicit = budget.min_available is not None or budget.max_unavailable is not None
    if not explicit and (budget.enabled is not True and replica_floor(service) < 2):
        return None
    app_name = app["metadata"]["name"]
    spec: dict[str, Any] = {}
    if budget.min_available is not None:
        spec["minAvailable"] = budget.min_available
    else:
        spec["maxUnavailable"] = 1 if budget.max_unavailable is None else budget.max_unavailable
    spec["selector"] = {"matchLabels": selector_labels(app_name, service.name)}
    spec["unhealthyPodEvictionPolicy"] = "AlwaysAllow"
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": child_metadata(app, service),
        "spec": spec,
    }
