"""The Deployment of a service: its pod template (pod.py), replicas (unless autoscaled), selector and rollout
strategy. Pure."""

from __future__ import annotations

from typing import Any

from maestro.render import pod
from maestro.render.names import child_metadata, selector_labels
from maestro.render.target import Target


def render(target: Target) -> dict[str, Any] | None:
    """The Deployment of one (merged) service; None for a job."""
    app, service = target.app, target.service
    if service is None:
        return None
    app_name = app["metadata"]["name"]
    spec: dict[str, Any] = {}
    if service.autoscaling is None:
        spec["replicas"] = 1 if service.replicas is None else service.replicas
    spec["selector"] = {"matchLabels": selector_labels(app_name, service.name)}
    rollout = service.rollout
    if rollout is not None:
        rolling = {
            key: value
            for key, value in (("maxSurge", rollout.max_surge), ("maxUnavailable", rollout.max_unavailable))
            if value is not None
        }
        if rolling:
            spec["strategy"] = {"type": "RollingUpdate", "rollingUpdate": rolling}
        if rollout.progress_deadline_seconds is not None:
            spec["progressDeadlineSeconds"] = rollout.progress_deadline_seconds
    spec["template"] = pod.template(target)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": child_metadata(app, service),
        "spec": spec,
    }
