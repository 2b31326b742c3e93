"""Render a MicroserviceApp into its desired children: Deployment, Service, HorizontalPodAutoscaler and
PodDisruptionBudget per service.

Pure: dicts in, dicts out, no Kubernetes client. The same input gives identical output, so the operator can
server-side apply the result on every pass and `maestro render` can print it. The objects list only the fields
Maestro owns (with autoscaling on, `spec.replicas` is absent so the HPA owns it).

Who calls it: the operator's reconcile pass and `maestro render` (cli.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from maestro import api, graph

MANAGED_BY = "maestro"
CONFIG_HASH_ANNOTATION = f"{api.GROUP}/config-hash"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_PART_OF = "app.kubernetes.io/part-of"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_VERSION = "app.kubernetes.io/version"

DEFAULT_CPU_TARGET = 80
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

# Restricted Pod Security Standard: what every pod gets unless the service explicitly loosens it.
RESTRICTED_POD_SECURITY: dict[str, Any] = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
RESTRICTED_CONTAINER_SECURITY: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}


def child_name(app_name: str, service_name: str) -> str:
    """The name of every child of one service: `<app>-<service>` (checked by api.validate_app)."""
    return f"{app_name}-{service_name}"


def selector_labels(app_name: str, service_name: str) -> dict[str, str]:
    """The labels that select a service's pods. Only stable labels: a Deployment's selector is immutable."""
    return {LABEL_INSTANCE: app_name, LABEL_COMPONENT: service_name}


def owned_labels(app_name: str) -> dict[str, str]:
    """The labels every child of an app carries, to list them (add the component label for one service)."""
    return {LABEL_INSTANCE: app_name, LABEL_MANAGED_BY: MANAGED_BY}


def image_version(image: str) -> str | None:
    """The image tag when it can be a label value (no digest, at most 63 characters), else None."""
    if "@" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return None
    tag = last.rsplit(":", 1)[1]
    return tag if len(tag) <= api.DNS_LABEL_MAX and _LABEL_VALUE.match(tag) else None


def labels(app_name: str, service: api.ServiceSpec) -> dict[str, str]:
    """The recommended app.kubernetes.io labels of a service's children and pods."""
    result = {
        LABEL_NAME: service.name,
        LABEL_INSTANCE: app_name,
        LABEL_COMPONENT: service.name,
        LABEL_PART_OF: app_name,
        LABEL_MANAGED_BY: MANAGED_BY,
    }
    version = image_version(service.image)
    if version is not None:
        result[LABEL_VERSION] = version
    return result


def env_prefix(service_name: str) -> str:
    """The prefix of a dependency's variables: `catalog-db` -> `CATALOG_DB` (CATALOG_DB_URL, ...)."""
    return service_name.upper().replace("-", "_")


def has_service(service: api.ServiceSpec) -> bool:
    """Whether a Kubernetes Service is rendered for the service: it has ports and is not exposed as None."""
    return bool(service.ports) and (service.expose is None or service.expose.type != "None")


def endpoint(app_name: str, service: api.ServiceSpec, namespace: str | None = None) -> str | None:
    """The in-cluster URL of the service's first port (http://<app>-<svc>[.<ns>.svc]:<port>), or None."""
    if not has_service(service) or not service.ports:
        return None
    host = child_name(app_name, service.name) + (f".{namespace}.svc" if namespace else "")
    return f"http://{host}:{service.ports[0].port}"


def dependency_env(app_name: str, dependency: api.ServiceSpec) -> list[dict[str, Any]]:
    """<DEP>_HOST, <DEP>_PORT and <DEP>_URL of a dependency that has a Service (short host name)."""
    if not has_service(dependency) or not dependency.ports:
        return []
    prefix = env_prefix(dependency.name)
    host = child_name(app_name, dependency.name)
    port = dependency.ports[0].port
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


def _deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in top.items():
        below = result.get(key)
        result[key] = (
            _deep_merge(below, value) if isinstance(below, Mapping) and isinstance(value, Mapping) else value
        )
    return result


def _metadata(app: Mapping[str, Any], name: str, child_labels: Mapping[str, str]) -> dict[str, Any]:
    meta = app.get("metadata") or {}
    result: dict[str, Any] = {"name": name}
    if meta.get("namespace"):
        result["namespace"] = meta["namespace"]
    result["labels"] = dict(child_labels)
    if meta.get("uid"):
        # Without a uid (an app rendered offline) no ownerReference can be right, so none is written.
        result["ownerReferences"] = [
            {
                "apiVersion": api.API_VERSION,
                "kind": api.KIND,
                "name": meta["name"],
                "uid": meta["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    return result


def _container(app_name: str, service: api.ServiceSpec, deps: Sequence[api.ServiceSpec]) -> dict[str, Any]:
    container: dict[str, Any] = {"name": service.name, "image": service.image}
    if service.image_pull_policy:
        container["imagePullPolicy"] = service.image_pull_policy
    if service.command is not None:
        container["command"] = list(service.command)
    if service.args is not None:
        container["args"] = list(service.args)
    if service.ports:
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
        if config.config_map is not None:
            ref: dict[str, Any] = {"name": config.config_map}
            key = "configMapRef"
        else:
            ref = {"name": config.secret}
            key = "secretRef"
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
        probe = getattr(service, field)
        if probe is not None:
            container[key] = probe
    container["securityContext"] = _deep_merge(RESTRICTED_CONTAINER_SECURITY, service.security_context or {})
    if service.volume_mounts:
        container["volumeMounts"] = [
            m.model_dump(by_alias=True, exclude_none=True) for m in service.volume_mounts
        ]
    return container


def _pod_spec(app_name: str, service: api.ServiceSpec, deps: Sequence[api.ServiceSpec]) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if service.service_account_name:
        spec["serviceAccountName"] = service.service_account_name
    spec["securityContext"] = _deep_merge(RESTRICTED_POD_SECURITY, service.pod_security_context or {})
    spec["containers"] = [_container(app_name, service, deps)]
    if service.volumes:
        spec["volumes"] = [v.model_dump(by_alias=True, exclude_none=True) for v in service.volumes]
    scheduling = service.scheduling or api.Scheduling()
    if scheduling.node_selector:
        spec["nodeSelector"] = dict(scheduling.node_selector)
    if scheduling.tolerations:
        spec["tolerations"] = list(scheduling.tolerations)
    if scheduling.affinity:
        spec["affinity"] = scheduling.affinity
    if scheduling.topology_spread_constraints is None:
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


def deployment(
    app: Mapping[str, Any], service: api.ServiceSpec, deps: Sequence[api.ServiceSpec], config_hash: str | None
) -> dict[str, Any]:
    """The Deployment of one (merged) service."""
    app_name = app["metadata"]["name"]
    name = child_name(app_name, service.name)
    child_labels = labels(app_name, service)
    pod_labels = {**(service.pod_labels or {}), **child_labels}
    annotations = dict(service.pod_annotations or {})
    if config_hash is not None:
        annotations[CONFIG_HASH_ANNOTATION] = config_hash
    template_meta: dict[str, Any] = {"labels": pod_labels}
    if annotations:
        template_meta["annotations"] = annotations
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
    spec["template"] = {"metadata": template_meta, "spec": _pod_spec(app_name, service, deps)}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(app, name, child_labels),
        "spec": spec,
    }


def service_object(app: Mapping[str, Any], service: api.ServiceSpec) -> dict[str, Any] | None:
    """The Kubernetes Service of one (merged) service, or None (no ports, or expose type None)."""
    if not has_service(service) or not service.ports:
        return None
    app_name = app["metadata"]["name"]
    expose = (service.expose.type if service.expose else None) or "ClusterIP"
    spec: dict[str, Any] = {"type": "ClusterIP" if expose == "Headless" else expose}
    if expose == "Headless":
        spec["clusterIP"] = "None"
    spec["selector"] = selector_labels(app_name, service.name)
    spec["ports"] = [
        {"name": p.name, "port": p.port, "targetPort": p.name, "protocol": p.protocol} for p in service.ports
    ]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(app, child_name(app_name, service.name), labels(app_name, service)),
        "spec": spec,
    }


def hpa(app: Mapping[str, Any], service: api.ServiceSpec) -> dict[str, Any] | None:
    """The HorizontalPodAutoscaler (autoscaling/v2) of one (merged) service, or None."""
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
        "metadata": _metadata(app, name, labels(app_name, service)),
        "spec": spec,
    }


def replica_floor(service: api.ServiceSpec) -> int:
    """The fewest pods the service runs when healthy: autoscaling.minReplicas, else replicas (default 1)."""
    if service.autoscaling is not None:
        return service.autoscaling.min_replicas or 1
    return 1 if service.replicas is None else service.replicas


def pdb(app: Mapping[str, Any], service: api.ServiceSpec) -> dict[str, Any] | None:
    """The PodDisruptionBudget of one (merged) service, or None.

    Default sizing from the replica floor: below 2 replicas, none (a single pod cannot stay available through
    a drain; a budget would only block the drain). From 2 on, `maxUnavailable: 1`: one pod at a time may be
    evicted whatever the HPA has scaled to (minAvailable: floor-1 would allow many evictions at once when
    scaled up). `unhealthyPodEvictionPolicy: AlwaysAllow` lets drains evict pods that are not ready anyway, so
    a broken rollout never deadlocks a node drain. `disruptionBudget` overrides or disables this.
    """
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
        "metadata": _metadata(app, child_name(app_name, service.name), labels(app_name, service)),
        "spec": spec,
    }


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
    children = [deployment(app, service, deps, config_hash)]
    children += [
        child for child in (service_object(app, service), hpa(app, service), pdb(app, service)) if child
    ]
    return children


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
