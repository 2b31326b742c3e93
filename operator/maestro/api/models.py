"""The MicroserviceApp API (maestro.dev/v1alpha1): pydantic models of spec and status, and their checks.

The models are the single source of truth: `crd.py` generates the CRD's OpenAPI schema (and so
`kubectl explain`) from them, the operator parses every app with `validate_app`, and `render/` reads the
merged per-service settings from `effective_service`. Field descriptions are user documentation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Annotated, Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from maestro.api import graph
from maestro.api.merge import deep_merge

GROUP = "maestro.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "MicroserviceApp"
LIST_KIND = "MicroserviceAppList"
PLURAL = "microserviceapps"
SINGULAR = "microserviceapp"
SHORT_NAMES = ["msa"]
CATEGORIES = ["maestro"]

# Limits. They keep the CEL rules of the CRD within the API server's cost budget (every list and string that a
# rule iterates must be bounded) and they are what `<app>-<service>` names are checked against.
MAX_SERVICES = 50
MAX_PORTS = 20
MAX_DEPENDENCIES = 20
MAX_CONFIG_SOURCES = 20
MAX_ENV = 200
DNS_LABEL_MAX = 63
PORT_NAME_MAX = 15  # IANA_SVC_NAME, what a container port name must be

# A DNS-1035 label: what Service names need, so `<app>-<service>` works for every child kind.
DNS_LABEL_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
# IANA service name: lowercase letters, digits and single inner hyphens, starting with a letter.
PORT_NAME_PATTERN = r"^[a-z](-?[a-z0-9])*$"
ENV_NAME_PATTERN = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"

Phase = Literal["Pending", "Progressing", "Ready", "Degraded", "Invalid"]
ServicePhase = Literal["Pending", "Waiting", "Progressing", "Ready", "Degraded"]
ExposeType = Literal["ClusterIP", "NodePort", "LoadBalancer", "Headless", "None"]
Protocol = Literal["TCP", "UDP", "SCTP"]
PullPolicy = Literal["Always", "IfNotPresent", "Never"]
ConditionStatus = Literal["True", "False", "Unknown"]

# Kubernetes-native objects Maestro passes through unchanged: typed as free-form objects in the CRD
# (x-kubernetes-preserve-unknown-fields), validated by the API server when the child is applied.
FreeForm = dict[str, Any]
# A resource.Quantity: "100m", "128Mi" or a plain number.
Quantity = Annotated[int | str, Field(description="A Kubernetes quantity, e.g. 100m, 0.5, 128Mi or 2.")]
IntOrPercent = int | str


def _cel(*rules: tuple[str, ...]) -> dict[str, Any]:
    """x-kubernetes-validations for the generated CRD: (CEL rule, message[, fieldPath]) tuples. The fieldPath
    makes the API server's error name the field the rule is about."""
    validations: list[dict[str, str]] = []
    for rule, message, *field_path in rules:
        validation = {"rule": rule, "message": message}
        if field_path:
            validation["fieldPath"] = field_path[0]
        validations.append(validation)
    return {"x-kubernetes-validations": validations}


class _Model(BaseModel):
    """Maestro's own objects: camelCase on the wire, unknown fields rejected."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


# --------------------------------------------------------------------------------------------- spec parts


class EnvVar(_Model):
    """An environment variable of the service's container (the same shape as a container's env entry)."""

    model_config = ConfigDict(
        json_schema_extra=_cel(
            ("!(has(self.value) && has(self.valueFrom))", "set value or valueFrom, not both")
        )
    )

    name: str = Field(
        description="Name of the variable.", min_length=1, max_length=256, pattern=ENV_NAME_PATTERN
    )
    value: str | None = Field(default=None, description="Literal value; $(VAR) references expand as usual.")
    value_from: FreeForm | None = Field(
        default=None,
        description="A Kubernetes EnvVarSource (secretKeyRef, configMapKeyRef, fieldRef, resourceFieldRef), "
        "passed through unchanged; free-form here, checked by the API server on the Deployment.",
    )


class Port(_Model):
    """A port the service listens on. The container port and the Service port are rendered from it."""

    name: str = Field(
        description="Port name (IANA service name: lowercase, at most 15 characters, starting with a "
        "letter). Probes may refer to it; the Service targets the container port by this name.",
        min_length=1,
        max_length=PORT_NAME_MAX,
        pattern=PORT_NAME_PATTERN,
    )
    port: int = Field(description="Port of the Service (what clients connect to).", ge=1, le=65535)
    target_port: int | None = Field(
        default=None,
        description="Port the container listens on. Defaults to `port`.",
        ge=1,
        le=65535,
    )
    protocol: Protocol = Field(default="TCP", description="TCP, UDP or SCTP.")


class Resources(_Model):
    """Compute resources of the container. Maps merge key by key with `spec.defaults.resources`."""

    requests: dict[str, Quantity] | None = Field(
        default=None, description="Minimum resources, e.g. {cpu: 100m, memory: 128Mi}.", max_length=16
    )
    limits: dict[str, Quantity] | None = Field(
        default=None, description="Maximum resources, e.g. {memory: 256Mi}.", max_length=16
    )


class Autoscaling(_Model):
    """A HorizontalPodAutoscaler (autoscaling/v2) for the service; while set, the HPA owns the replicas."""

    model_config = ConfigDict(
        json_schema_extra=_cel(
            (
                "!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",
                "minReplicas must be less than or equal to maxReplicas",
                ".minReplicas",
            )
        )
    )

    min_replicas: int | None = Field(
        default=None, description="Lower bound of the replica count. Defaults to 1.", ge=1, le=10000
    )
    max_replicas: int | None = Field(
        default=None,
        description="Upper bound of the replica count. Required (here or in spec.defaults.autoscaling).",
        ge=1,
        le=10000,
    )
    target_cpu_utilization_percentage: int | None = Field(
        default=None,
        alias="targetCPUUtilizationPercentage",  # the spelling of autoscaling/v1, which users know
        description="Target average CPU utilisation, in percent of the CPU request. When neither "
        "target is set, 80 is used for CPU.",
        ge=1,
        le=1000,
    )
    target_memory_utilization_percentage: int | None = Field(
        default=None,
        description="Target average memory utilisation, in percent of the memory request.",
        ge=1,
        le=1000,
    )
    behavior: FreeForm | None = Field(
        default=None,
        description="The HPA's scaling behavior (scaleUp/scaleDown policies), passed through unchanged "
        "(free-form here, checked by the API server on the HPA).",
    )


class Expose(_Model):
    """How the service is reachable: the type of the Kubernetes Service rendered for it."""

    type: ExposeType | None = Field(
        default=None,
        description="ClusterIP (the default): inside the cluster. NodePort or LoadBalancer: also from "
        "outside. Headless: a Service without a cluster IP (DNS names the pods). None: no Service at all.",
    )


class ConfigSource(_Model):
    """A ConfigMap or a Secret (exactly one) loaded into the container's environment (envFrom).

    Its contents are hashed into the pod template, so a change rolls the pods.
    """

    model_config = ConfigDict(
        json_schema_extra=_cel(
            ("has(self.configMap) != has(self.secret)", "set exactly one of configMap or secret")
        )
    )

    config_map: str | None = Field(
        default=None, description="Name of a ConfigMap in the app's namespace.", min_length=1, max_length=253
    )
    secret: str | None = Field(
        default=None, description="Name of a Secret in the app's namespace.", min_length=1, max_length=253
    )
    optional: bool | None = Field(
        default=None, description="Start the pods even when the object does not exist (default false)."
    )


class DisruptionBudget(_Model):
    """The PodDisruptionBudget of the service. Without it, Maestro sizes one from the replica floor."""

    model_config = ConfigDict(
        json_schema_extra=_cel(
            (
                "!(has(self.minAvailable) && has(self.maxUnavailable))",
                "set minAvailable or maxUnavailable, not both",
            )
        )
    )

    enabled: bool | None = Field(
        default=None,
        description="false: no PodDisruptionBudget for this service. true: one even below 2 replicas.",
    )
    min_available: IntOrPercent | None = Field(
        default=None, description="Pods that must stay available during voluntary disruptions (number or %)."
    )
    max_unavailable: IntOrPercent | None = Field(
        default=None, description="Pods that may be unavailable during voluntary disruptions (number or %)."
    )


class Rollout(_Model):
    """How the Deployment replaces pods (its RollingUpdate strategy and progress deadline)."""

    max_surge: IntOrPercent | None = Field(
        default=None, description="Extra pods during a rollout (number or %; Kubernetes default 25%)."
    )
    max_unavailable: IntOrPercent | None = Field(
        default=None, description="Pods that may be unavailable during a rollout (number or %; default 25%)."
    )
    progress_deadline_seconds: int | None = Field(
        default=None,
        description="Seconds a rollout may make no progress before the service is reported Degraded "
        "(default 600).",
        ge=1,
        le=86400,
    )


class Scheduling(_Model):
    """Where the pods run. Without topologySpreadConstraints, pods spread across nodes (ScheduleAnyway)."""

    node_selector: dict[str, str] | None = Field(
        default=None, description="Node labels the pods' nodes must have."
    )
    tolerations: list[FreeForm] | None = Field(
        default=None, description="Pod tolerations, passed through unchanged (free-form Kubernetes objects)."
    )
    affinity: FreeForm | None = Field(
        default=None, description="Pod affinity, passed through unchanged (a free-form Kubernetes Affinity)."
    )
    topology_spread_constraints: list[FreeForm] | None = Field(
        default=None,
        description="Replaces Maestro's default spread across kubernetes.io/hostname; [] disables spreading. "
        "Free-form Kubernetes TopologySpreadConstraint objects.",
    )


class VolumeMount(_Model):
    """A volume mounted into the service's container."""

    name: str = Field(description="Name of a volume in `volumes`.", min_length=1, max_length=63)
    mount_path: str = Field(description="Path inside the container.", min_length=1, max_length=1024)
    read_only: bool | None = Field(default=None, description="Mount read-only.")
    sub_path: str | None = Field(default=None, description="Sub-path of the volume to mount.")


class Volume(BaseModel):
    """A Kubernetes Volume of the pod (name plus one volume source, e.g. configMap, secret, emptyDir)."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(
        description="Volume name. The rest of the object is a Kubernetes volume source, passed through "
        "unchanged (the restricted Pod Security Standard allows configMap, secret, emptyDir, projected, "
        "downwardAPI, persistentVolumeClaim, ephemeral and csi).",
        min_length=1,
        max_length=63,
    )


class ServiceSettings(_Model):
    """Settings that `spec.defaults` may provide and every service may override."""

    env: list[EnvVar] | None = Field(
        default=None,
        description="Environment variables. Merged with the defaults by name; the service's entry wins.",
        max_length=MAX_ENV,
    )
    env_from: list[FreeForm] | None = Field(
        default=None,
        description="Kubernetes EnvFromSource entries (configMapRef/secretRef), passed through unchanged. "
        "Prefer configFrom, whose changes roll the pods.",
    )
    resources: Resources | None = Field(default=None, description="Compute resources of the container.")
    readiness_probe: FreeForm | None = Field(
        default=None,
        description="A Kubernetes Probe (free-form), e.g. {httpGet: {path: /healthz, port: http}}.",
    )
    liveness_probe: FreeForm | None = Field(default=None, description="A Kubernetes Probe (free-form).")
    startup_probe: FreeForm | None = Field(default=None, description="A Kubernetes Probe (free-form).")
    replicas: int | None = Field(
        default=None,
        description="Number of pods (default 1). Mutually exclusive with autoscaling.",
        ge=0,
        le=10000,
    )
    autoscaling: Autoscaling | None = Field(
        default=None, description="Scale with a HorizontalPodAutoscaler instead of a fixed replica count."
    )
    expose: Expose | None = Field(
        default=None, description="How the service is reachable (default ClusterIP)."
    )
    config_from: list[ConfigSource] | None = Field(
        default=None,
        description="ConfigMaps and Secrets loaded as environment; a change of their data rolls the pods.",
        max_length=MAX_CONFIG_SOURCES,
    )
    disruption_budget: DisruptionBudget | None = Field(
        default=None, description="PodDisruptionBudget settings (default: sized from the replica floor)."
    )
    rollout: Rollout | None = Field(default=None, description="Rolling update settings of the Deployment.")
    scheduling: Scheduling | None = Field(
        default=None, description="Node selection, tolerations, affinity, spread."
    )
    service_account_name: str | None = Field(
        default=None, description="ServiceAccount the pods run as.", min_length=1, max_length=253
    )
    image_pull_policy: PullPolicy | None = Field(default=None, description="Always, IfNotPresent or Never.")
    security_context: FreeForm | None = Field(
        default=None,
        description="Container SecurityContext fields merged over Maestro's restricted defaults "
        "(allowPrivilegeEscalation false, capabilities drop ALL). Loosening them is explicit and may "
        "make the pods fail a `restricted` namespace.",
    )
    pod_security_context: FreeForm | None = Field(
        default=None,
        description="PodSecurityContext fields merged over Maestro's restricted defaults "
        "(runAsNonRoot true, seccompProfile RuntimeDefault).",
    )
    volumes: list[Volume] | None = Field(
        default=None, description="Pod volumes. Merged with the defaults by name.", max_length=64
    )
    volume_mounts: list[VolumeMount] | None = Field(
        default=None,
        description="Container volume mounts. Merged with the defaults by mountPath.",
        max_length=64,
    )
    pod_labels: dict[str, str] | None = Field(
        default=None,
        description="Extra pod labels. Maestro's app.kubernetes.io/* labels win over these.",
    )
    pod_annotations: dict[str, str] | None = Field(
        default=None, description="Extra pod annotations. Maestro's maestro.dev/* annotations win over these."
    )
    pod_spec_patch: FreeForm | None = Field(
        default=None,
        description="Escape hatch: a merge patch applied last to the rendered pod spec, so it wins over "
        "every other field. Objects merge key by key, null removes a key, lists whose items all have a name "
        "(containers, initContainers, volumes) merge by name, other lists are replaced.",
    )


class Defaults(ServiceSettings):
    """Settings merged under every service's own. The service wins; maps merge key by key; env and volumes
    merge by name, volumeMounts by mountPath; other lists (envFrom, configFrom, tolerations, ...) and Kubernetes
    objects (probes, affinity, behavior, disruptionBudget, podSpecPatch) are replaced as a whole. A service
    that sets replicas or autoscaling drops the defaults' replicas (and, with replicas, their autoscaling)."""


class ServiceSpec(ServiceSettings):
    """One microservice: a Deployment, plus a Service, HorizontalPodAutoscaler and PodDisruptionBudget where
    they apply."""

    model_config = ConfigDict(
        json_schema_extra=_cel(
            (
                "!has(self.dependsOn) || !(self.name in self.dependsOn)",
                "a service cannot depend on itself",
                ".dependsOn",
            ),
            (
                "!(has(self.replicas) && has(self.autoscaling))",
                "set replicas or autoscaling, not both",
                ".replicas",
            ),
        )
    )

    name: str = Field(
        description="Service name, a DNS-1035 label. Children are named <app>-<name>, which must fit in 63 "
        "characters.",
        min_length=1,
        max_length=DNS_LABEL_MAX,
        pattern=DNS_LABEL_PATTERN,
    )
    image: str = Field(description="Container image, e.g. registry.example.com/shop/web:2.0.0.", min_length=1)
    command: list[str] | None = Field(
        default=None, description="Entrypoint; replaces the image's ENTRYPOINT."
    )
    args: list[str] | None = Field(default=None, description="Arguments; replace the image's CMD.")
    ports: list[Port] | None = Field(
        default=None,
        description="Ports the service listens on. Without ports, no Kubernetes Service is rendered.",
        max_length=MAX_PORTS,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            **_cel(("self.all(p, self.exists_one(q, q.port == p.port))", "port numbers must be unique")),
        },
    )
    depends_on: list[Annotated[str, Field(max_length=DNS_LABEL_MAX)]] | None = Field(
        default=None,
        description="Services that must be Available (at their current generation) before this one is "
        "created or updated. Each that has a Kubernetes Service gives this one <NAME>_HOST, <NAME>_PORT and "
        "<NAME>_URL (its first port).",
        max_length=MAX_DEPENDENCIES,
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )


class MicroserviceAppSpec(_Model):
    """The desired state of a whole microservice application."""

    model_config = ConfigDict(
        json_schema_extra=_cel(
            (
                "self.services.all(s, self.services.exists_one(t, t.name == s.name))",
                "service names must be unique",
                ".services",
            ),
            (
                "self.services.all(s, !has(s.dependsOn) || "
                "s.dependsOn.all(d, self.services.exists(t, t.name == d)))",
                "every dependsOn entry must name a service of this app",
                ".services",
            ),
        )
    )

    defaults: Defaults | None = Field(
        default=None, description="Settings merged under every service's own (the service's value wins)."
    )
    services: list[ServiceSpec] = Field(
        description="The services of the app.",
        min_length=1,
        max_length=MAX_SERVICES,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )


# --------------------------------------------------------------------------------------------------- status


class Condition(_Model):
    """A metav1.Condition: Ready, Progressing, Degraded, or kstatus' Reconciling or Stalled."""

    type: str = Field(
        description="Condition type: Ready, Progressing, Degraded, Reconciling (kstatus: in progress) or "
        "Stalled (kstatus: failed).",
        max_length=316,
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(description="CamelCase reason for the last transition.", max_length=1024)
    message: str = Field(default="", description="Human-readable details.", max_length=32768)
    last_transition_time: str = Field(description="When the status last changed (RFC 3339).")
    observed_generation: int | None = Field(
        default=None, description="The app generation this condition was computed for.", ge=0
    )


class ServiceStatus(_Model):
    """What one service looks like in the cluster."""

    name: str = Field(description="Service name.")
    phase: ServicePhase = Field(
        description="Pending (no Deployment yet), Waiting (for dependencies), Progressing, Ready or Degraded "
        "(the rollout failed)."
    )
    replicas: int = Field(default=0, description="Pods the Deployment has.")
    ready_replicas: int = Field(default=0, description="Pods that are ready.")
    updated_replicas: int = Field(default=0, description="Pods that run the current pod template.")
    image: str | None = Field(default=None, description="Image of the current pod template.")
    endpoint: str | None = Field(default=None, description="In-cluster URL of the service, if it has one.")
    waiting_for: list[str] | None = Field(
        default=None, description="Dependencies that are not Available yet (phase Waiting)."
    )
    message: str | None = Field(default=None, description="Human-readable details.")


class MicroserviceAppStatus(_Model):
    """The observed state of the app, rebuilt from the cluster on every pass."""

    observed_generation: int | None = Field(
        default=None, description="The app generation the status was computed for."
    )
    phase: Phase | None = Field(
        default=None,
        description="Pending, Progressing, Ready, Degraded or Invalid (the spec cannot be applied).",
    )
    ready_services: str | None = Field(default=None, description="Ready services of all services, e.g. 2/3.")
    conditions: list[Condition] | None = Field(
        default=None,
        description="The Ready, Progressing, Degraded, Reconciling and Stalled conditions (kubectl wait "
        "--for=condition=Ready works).",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    services: list[ServiceStatus] | None = Field(
        default=None,
        description="Per-service status, in the order of spec.services; absent while the phase is Invalid.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )


# -------------------------------------------------------------------------------------------------- checks


class SpecError(ValueError):
    """An app spec that cannot be applied. `errors` holds (field path, message) pairs, e.g.
    ("spec.services[1].ports[0].port", "must be between 1 and 65535")."""

    def __init__(self, errors: Sequence[tuple[str, str]]) -> None:
        self.errors: list[tuple[str, str]] = list(errors)
        super().__init__("; ".join(f"{path}: {message}" for path, message in self.errors))

    def lines(self) -> list[str]:
        """One `path: message` line per error, for humans."""
        return [f"{path}: {message}" for path, message in self.errors]


_UNION_TAGS = frozenset({"int", "str", "float", "bool", "dict", "list", "none"})


def _loc_to_path(prefix: str, loc: Sequence[int | str]) -> str:
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in _UNION_TAGS or "[" in part or part.startswith("function-"):
            continue  # pydantic's markers of union members (int | str, ...), not fields
        else:
            path += f".{part}"
    return path


def _message(error: Mapping[str, Any]) -> str:
    """A short human message for one pydantic error, phrased like the API server's."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return "required value"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind in {"greater_than_equal", "less_than_equal"}:
        bound = "at least" if kind == "greater_than_equal" else "at most"
        return f"must be {bound} {ctx.get('ge', ctx.get('le'))}"
    if kind == "string_pattern_mismatch":
        return f"must match {ctx.get('pattern')}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}"
    return str(error["msg"])


_RANGE = {"port": (1, 65535), "targetPort": (1, 65535)}


def parse_app_spec(spec: Mapping[str, Any] | None) -> MicroserviceAppSpec:
    """Parse and check a spec as the schema of the CRD does (types, ranges, patterns and the CEL rules).

    Raises SpecError with every problem found, each under its field path (spec.services[1].ports[0].port).
    """
    if not isinstance(spec, Mapping):
        raise SpecError([("spec", "required value (an object with a services list)")])
    try:
        parsed = MicroserviceAppSpec.model_validate(dict(spec))
    except pydantic.ValidationError as exc:
        errors: list[tuple[str, str]] = []
        for error in exc.errors(include_url=False):
            path = _loc_to_path("spec", error["loc"])
            leaf = str(error["loc"][-1]) if error["loc"] else ""
            if any(part in _UNION_TAGS for part in error["loc"]):
                # Each member of `int | str` reports its own error; one message says what is accepted.
                message = "must be an integer or a string (e.g. 2, 25% or 128Mi)"
            elif leaf in _RANGE and error["type"] in {"greater_than_equal", "less_than_equal"}:
                low, high = _RANGE[leaf]
                message = f"must be between {low} and {high}"
            else:
                message = _message(error)
            if (path, message) not in errors:
                errors.append((path, message))
        raise SpecError(errors) from None
    errors = _rule_errors(parsed)
    if errors:
        raise SpecError(errors)
    return parsed


def _rule_errors(spec: MicroserviceAppSpec) -> list[tuple[str, str]]:
    """The CRD's CEL rules, checked in Python (so `maestro validate` and the operator agree with the API)."""
    errors: list[tuple[str, str]] = []
    seen: set[str] = set()
    for i, service in enumerate(spec.services):
        base = f"spec.services[{i}]"
        if service.name in seen:
            errors.append((f"{base}.name", f"duplicate service name {service.name!r}"))
        seen.add(service.name)
        errors += _settings_errors(service, base)
        if service.replicas is not None and service.autoscaling is not None:
            errors.append((base, "set replicas or autoscaling, not both"))
        for j, dep in enumerate(service.depends_on or []):
            if dep in (service.depends_on or [])[:j]:
                errors.append((f"{base}.dependsOn[{j}]", f"duplicate entry {dep!r}"))
        port_names: set[str] = set()
        port_numbers: set[int] = set()
        container_ports: set[tuple[int, str]] = set()
        for j, port in enumerate(service.ports or []):
            if port.name in port_names:
                errors.append((f"{base}.ports[{j}].name", f"duplicate port name {port.name!r}"))
            if port.port in port_numbers:
                errors.append((f"{base}.ports[{j}].port", f"duplicate port number {port.port}"))
            # The container's ports are keyed by (containerPort, protocol): the API server refuses the
            # Deployment otherwise (docs/reliability.md, bug 10).
            container = (port.target_port or port.port, port.protocol)
            if container in container_ports:
                errors.append(
                    (
                        f"{base}.ports[{j}].targetPort",
                        f"duplicate container port {container[0]}/{container[1]}",
                    )
                )
            port_names.add(port.name)
            port_numbers.add(port.port)
            container_ports.add(container)
    if spec.defaults is not None:
        errors += _settings_errors(spec.defaults, "spec.defaults")
    errors += _graph_errors(spec)
    return errors


def dependency_graph(spec: MicroserviceAppSpec) -> dict[str, list[str]]:
    """service name -> the names it depends on, in the order of spec.services (input of graph.py)."""
    return {service.name: list(service.depends_on or []) for service in spec.services}


def _graph_errors(spec: MicroserviceAppSpec) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    index = {service.name: i for i, service in enumerate(spec.services)}
    deps = dependency_graph(spec)
    for service, dep in graph.unknown_dependencies(deps):
        position = deps[service].index(dep)
        errors.append((f"spec.services[{index[service]}].dependsOn[{position}]", f"unknown service {dep!r}"))
    for service in deps:
        if service in deps[service]:
            errors.append((f"spec.services[{index[service]}].dependsOn", "a service cannot depend on itself"))
    # Self-dependencies were reported above; look for the longer cycles.
    cycle = graph.find_cycle({name: [d for d in ds if d != name] for name, ds in deps.items()})
    if cycle is not None:
        errors.append(
            (f"spec.services[{index[cycle[0]]}].dependsOn", f"dependency cycle: {' -> '.join(cycle)}")
        )
    return errors


def _settings_errors(settings: ServiceSettings, base: str) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    scaling = settings.autoscaling
    if (
        scaling
        and scaling.min_replicas
        and scaling.max_replicas
        and scaling.min_replicas > scaling.max_replicas
    ):
        errors.append((f"{base}.autoscaling", "minReplicas must be less than or equal to maxReplicas"))
    for k, source in enumerate(settings.config_from or []):
        if (source.config_map is None) == (source.secret is None):
            errors.append((f"{base}.configFrom[{k}]", "set exactly one of configMap or secret"))
    for k, var in enumerate(settings.env or []):
        if var.value is not None and var.value_from is not None:
            errors.append((f"{base}.env[{k}]", "set value or valueFrom, not both"))
    budget = settings.disruption_budget
    if budget and budget.min_available is not None and budget.max_unavailable is not None:
        errors.append((f"{base}.disruptionBudget", "set minAvailable or maxUnavailable, not both"))
    # The Deployment and pod rules below are the API server's: caught here, the app is Invalid before any
    # child is written, instead of failing half-way through its services.
    rollout = settings.rollout
    if rollout and _is_zero(rollout.max_surge) and _is_zero(rollout.max_unavailable):
        errors.append((f"{base}.rollout", "maxSurge and maxUnavailable may not both be 0"))
    resources = settings.resources
    for resource, limit in ((resources.limits or {}) if resources else {}).items():
        request = (resources.requests or {}).get(resource) if resources else None
        low, high = parse_quantity(request), parse_quantity(limit)
        if low is not None and high is not None and low > high:
            errors.append(
                (f"{base}.resources.requests.{resource}", f"must be less than or equal to the limit {limit}")
            )
    return errors


def _is_zero(value: IntOrPercent | None) -> bool:
    digits = str(value).removesuffix("%")
    return value is not None and digits.isdigit() and int(digits) == 0


_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$")
_SUFFIX = {"n": "1e-9", "u": "1e-6", "m": "1e-3", "": "1", "k": "1e3", "M": "1e6", "G": "1e9", "T": "1e12"}
_SUFFIX |= {"P": "1e15", "E": "1e18"} | {
    s: str(1024 ** (i + 1)) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))
}


def parse_quantity(value: int | str | None) -> Decimal | None:
    """A Kubernetes quantity as a number (e.g. "128Mi" -> 134217728), None when absent or not understood
    (the API server then judges it)."""
    match = _QUANTITY.match(str(value)) if value is not None else None
    if not match:
        return None
    number, suffix = match.group(1), match.group(2) or ""
    if suffix[:1] in ("e", "E"):
        return Decimal(number) * Decimal(10) ** int(suffix[1:])
    return Decimal(number) * Decimal(_SUFFIX[suffix])


_DNS_LABEL = re.compile(DNS_LABEL_PATTERN)


def validate_app(name: str, spec: Mapping[str, Any] | None) -> MicroserviceAppSpec:
    """Everything `parse_app_spec` checks, plus what needs the app's name: every child `<app>-<service>` must
    be a DNS-1035 label of at most 63 characters, and every service must have what it needs after merging the
    defaults (e.g. autoscaling.maxReplicas). Raises SpecError."""
    parsed = parse_app_spec(spec)
    errors: list[tuple[str, str]] = []
    for i, service in enumerate(parsed.services):
        child = f"{name}-{service.name}"
        if len(child) > DNS_LABEL_MAX:
            errors.append(
                (
                    f"spec.services[{i}].name",
                    f"child name {child!r} is {len(child)} characters; <app>-<service> must be at most "
                    f"{DNS_LABEL_MAX} (shorten the app or the service name)",
                )
            )
        elif not _DNS_LABEL.match(child):
            errors.append(
                ("metadata.name", f"child name {child!r} must be a DNS-1035 label (start with a letter)")
            )
        try:
            merged = effective_service(parsed.defaults, service)
        except SpecError as exc:
            errors += [(f"spec.services[{i}]{path}", message) for path, message in exc.errors]
            continue
        if merged.autoscaling is not None and merged.autoscaling.max_replicas is None:
            errors.append((f"spec.services[{i}].autoscaling.maxReplicas", "required value"))
        # The API server rejects the Deployment otherwise; here, before any child of the app is written.
        volumes = {v.name for v in merged.volumes or []} | {
            str(v.get("name"))
            for v in (merged.pod_spec_patch or {}).get("volumes") or []
            if isinstance(v, dict)
        }
        for k, mount in enumerate(merged.volume_mounts or []):
            if mount.name not in volumes:
                errors.append(
                    (
                        f"spec.services[{i}].volumeMounts[{k}].name",
                        f"no volume named {mount.name!r} in volumes",
                    )
                )
        # Each part was fine alone (parse_app_spec passed); these come from combining them.
        errors += [
            (path, f"{message} (after merging spec.defaults)")
            for path, message in _settings_errors(merged, f"spec.services[{i}]")
        ]
    if errors:
        raise SpecError(errors)
    return parsed


# ------------------------------------------------------------------------------------------- defaults merge

# Kubernetes objects are replaced as a whole: merging two probes key by key could yield httpGet plus exec.
# A disruption budget too: a default maxUnavailable merged with a service's minAvailable would set both.
_REPLACED = frozenset(
    {
        "readinessProbe",
        "livenessProbe",
        "startupProbe",
        "affinity",
        "behavior",
        "podSpecPatch",
        "valueFrom",
        "disruptionBudget",
    }
)
# Lists merged by a key; every other list is replaced.
_LIST_KEYS = {"env": "name", "volumes": "name", "volumeMounts": "mountPath"}


def effective_service(defaults: Defaults | None, service: ServiceSpec) -> ServiceSpec:
    """The service's settings with `spec.defaults` merged under them.

    The service wins. Maps (resources, nodeSelector, podLabels, securityContext, ...) merge key by key. env
    and volumes merge by name, volumeMounts by mountPath. Other lists and Kubernetes objects (probes,
    affinity, HPA behavior, disruptionBudget, podSpecPatch) are replaced as a whole. A service's own replicas
    or autoscaling replaces the defaults' pair, so a default replica count never clashes with a service's
    autoscaling.
    """
    if defaults is None:
        return service
    base = defaults.model_dump(by_alias=True, exclude_none=True)
    top = service.model_dump(by_alias=True, exclude_none=True)
    if "replicas" in top or "autoscaling" in top:
        base.pop("replicas", None)
        if "replicas" in top:
            base.pop("autoscaling", None)
    try:
        return ServiceSpec.model_validate(deep_merge(base, top, replaced=_REPLACED, list_keys=_LIST_KEYS))
    except pydantic.ValidationError as exc:
        raise SpecError(
            [(_loc_to_path("", e["loc"]), _message(e)) for e in exc.errors(include_url=False)]
        ) from None
