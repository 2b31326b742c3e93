"""The pod a service's Deployment and a job's Job or CronJob run: its container, Maestro's restricted security
defaults, the dependency variables, the config hash; `podSpecPatch` applied last. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from maestro.api import models as api
from maestro.api.merge import deep_merge
from maestro.render.confighash import source_key
from maestro.render.names import (
    CONFIG_HASH_ANNOTATION,
    child_name,
    env_prefix,
    labels,
    selector_labels,
    service_ports,
)
from maestro.render.target import Component, Target

# Restricted Pod Security Standard: what every pod gets unless the service explicitly loosens it.
RESTRICTED_POD_SECURITY: dict[str, Any] = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
RESTRICTED_CONTAINER_SECURITY: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}


def dependency_env(app_name: str, dependency: api.ServiceSpec) -> list[dict[str, Any]]:
    """<DEP>_HOST, <DEP>_PORT and <DEP>_URL of a dependency that has a Service (short host name)."""
    ports = service_ports(dependency)
    if not ports:
        return []
    prefix = env_prefix(dependency.name)
    host = child_name(app_name, dependency.name)
    port = ports[0].port
    return [
        {"name": f"{prefix}_HOST", "value": host},
        {"name": f"{prefix}_PORT", "value": str(port)},
        {"name": f"{prefix}_URL", "value": f"http://{host}:{port}"},
    ]


def merge_patch(target: Any, patch: Any) -> Any:
    """The podSpecPatch semantics: an RFC 7386 merge patch, except that lists whose items all have a `name`
    on both sides (containers, volumes, ...) merge by name, so a patch can touch one container."""
    if isinstance(patch, Mapping):
        base = dict(target) if isinstance(target, Mapping) else {}
        for key, value in patch.items():
            if value is None:
                base.pop(key, None)
            else:
                base[key] = merge_patch(base.get(key), value)
        return base
    if _named_list(patch) and _named_list(target):
        by_name = {item["name"]: item for item in target}
        merged = [merge_patch(by_name.get(item["name"]), item) for item in patch]
        names = {item["name"] for item in patch}
        return [item for item in target if item["name"] not in names] + merged
    return patch


def _named_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, Mapping) and "name" in item for item in value)


def _container(
    app_name: str, component: Component, deps: Sequence[api.ServiceSpec], snapshots: Mapping[str, str]
) -> dict[str, Any]:
    service = component  # the fields a service and a job share; ports and probes are a service's only
    container: dict[str, Any] = {"name": service.name, "image": service.image}
    if service.image_pull_policy:
        container["imagePullPolicy"] = service.image_pull_policy
    if service.command is not None:
        container["command"] = list(service.command)
    if service.args is not None:
        container["args"] = list(service.args)
    if isinstance(service, api.ServiceSpec) and service.ports:
        container["ports"] = [
            {"name": p.name, "containerPort": p.target_port or p.port, "protocol": p.protocol}
            for p in service.ports
        ]
    # Dependency variables first, so the service's own env may refer to them ($(CATALOG_URL)); an own
    # variable of the same name wins and the generated one is left out.
    own = [var.model_dump(by_alias=True, exclude_none=True) for var in service.env or []]
    own_names = {var["name"] for var in own}
    generated = [var for dep in deps for var in dependency_env(app_name, dep) if var["name"] not in own_names]
    if generated or own:
        container["env"] = generated + own
    env_from = [dict(source) for source in service.env_from or []]
    for config in service.config_from or []:
        kind, name = (
            ("ConfigMap", config.config_map) if config.config_map is not None else ("Secret", config.secret)
        )
        copy = snapshots.get(source_key(kind, str(name))) if config.snapshot else None
        ref: dict[str, Any] = {"name": copy or name}
        key = "configMapRef" if kind == "ConfigMap" else "secretRef"
        if config.optional is not None:
            ref["optional"] = config.optional
        env_from.append({key: ref})
    if env_from:
        container["envFrom"] = env_from
    if service.resources is not None:
        resources = service.resources.model_dump(by_alias=True, exclude_none=True)
        if resources:
            container["resources"] = resources
    for field, key in (
        ("readiness_probe", "readinessProbe"),
        ("liveness_probe", "livenessProbe"),
        ("startup_probe", "startupProbe"),
    ):
        probe = getattr(service, field, None)
        if probe is not None:
            container[key] = probe
    container["securityContext"] = deep_merge(RESTRICTED_CONTAINER_SECURITY, service.security_context or {})
    if service.volume_mounts:
        container["volumeMounts"] = [
            m.model_dump(by_alias=True, exclude_none=True) for m in service.volume_mounts
        ]
    return container


def _pod_spec(
    app_name: str,
    component: Component,
    deps: Sequence[api.ServiceSpec],
    restart_policy: str | None,
    snapshots: Mapping[str, str],
) -> dict[str, Any]:
    service = component
    spec: dict[str, Any] = {}
    if restart_policy is not None:
        spec["restartPolicy"] = restart_policy
    if service.service_account_name:
        spec["serviceAccountName"] = service.service_account_name
    spec["securityContext"] = deep_merge(RESTRICTED_POD_SECURITY, service.pod_security_context or {})
    spec["containers"] = [_container(app_name, service, deps, snapshots)]
    if service.volumes:
        spec["volumes"] = [v.model_dump(by_alias=True, exclude_none=True) for v in service.volumes]
    scheduling = service.scheduling or api.Scheduling()
    if scheduling.node_selector:
        spec["nodeSelector"] = dict(scheduling.node_selector)
    if scheduling.tolerations:
        spec["tolerations"] = list(scheduling.tolerations)
    if scheduling.affinity:
        spec["affinity"] = scheduling.affinity
    if scheduling.topology_spread_constraints is None and isinstance(service, api.ServiceSpec):
        # Spread across nodes, but never leave a pod pending for it (ScheduleAnyway); matchLabelKeys keeps the
        # skew per ReplicaSet so a rollout does not count the old pods.
        spec["topologySpreadConstraints"] = [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": selector_labels(app_name, service.name)},
                "matchLabelKeys": ["pod-template-hash"],
            }
        ]
    elif scheduling.topology_spread_constraints:
        spec["topologySpreadConstraints"] = list(scheduling.topology_spread_constraints)
    if service.pod_spec_patch:
        patched: dict[str, Any] = merge_patch(spec, service.pod_spec_patch)
        return patched
    return spec


def template(target: Target, *, restart_policy: str | None = None) -> dict[str, Any]:
    """The pod template of the target's service or job: Maestro's labels over its podLabels, its podAnnotations
    and config hash, and the pod spec (`restart_policy`: a job's pods are not restarted in place)."""
    app_name = target.app["metadata"]["name"]
    component = target.component
    pod_labels = {**(component.pod_labels or {}), **labels(app_name, component)}
    annotations = dict(component.pod_annotations or {})
    if target.config_hash is not None:
        annotations[CONFIG_HASH_ANNOTATION] = target.config_hash
    metadata: dict[str, Any] = {"labels": pod_labels}
    if annotations:
        metadata["annotations"] = annotations
    spec = _pod_spec(app_name, component, target.dependencies, restart_policy, target.snapshots)
    return {"metadata": metadata, "spec": spec}
