"""The MicroserviceApp API (maestro.dev/v1alpha1): pydantic models of spec and status, and their checks.

The models are the single source of truth: `crd.py` generates the CRD's OpenAPI schema (and so
`kubectl explain`) from them, the operator parses every app with `validate_app`, and `render/` reads the
merged per-service settings from `effective_service`. Field descriptions are user documentation.
"""

from __future__ import annotations

import ipaddress
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
MAX_JOBS = 20
# A job's run is the Job <app>-<job>-<run key>, whose name is also a label value of its pods (63 at most); a
# scheduled job is the CronJob <app>-<job>, which Kubernetes limits to 52 (it appends 11 to name its Jobs).
RUN_KEY_LENGTH = 10
JOB_CHILD_MAX = 52

# A DNS-1035 label: what Service names need, so `<app>-<service>` works for every child kind.
DNS_LABEL_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
# IANA service name: lowercase letters, digits and single inner hyphens, starting with a letter.
PORT_NAME_PATTERN = r"^[a-z](-?[a-z0-9])*$"
ENV_NAME_PATTERN = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
TIME_ZONE_PATTERN = r"^[A-Za-z][-A-Za-z0-9_+]*(/[-A-Za-z0-9_+]+)*$"


# Cron syntax as Kubernetes parses a CronJob's schedule (robfig/cron's standard parser): five fields, each a list
# of `*`, `?`, a value or a range, each with an optional step (1-99: a longer number can overflow the parser); or a
# descriptor. Not `@every <duration>`: a duration Go cannot hold passes any pattern and fails the CronJob. The values' ranges are in the
# pattern, so the API server refuses `61 * * * *` at `kubectl apply`; a reversed range (`5-1`) only the
# operator can see (cron_errors). CRON_TZ= and TZ= are refused, as Kubernetes does: `timeZone` says it.
CRON_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# (value pattern, lowest, highest, names) of minute, hour, day of month, month, day of week.
CRON_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    (r"[0-5]?[0-9]", 0, 59, ()),
    (r"[01]?[0-9]|2[0-3]", 0, 23, ()),
    (r"0?[1-9]|[12][0-9]|3[01]", 1, 31, ()),
    (r"0?[1-9]|1[0-2]|(?i:" + "|".join(CRON_MONTHS) + ")", 1, 12, CRON_MONTHS),
    (r"[0-6]|(?i:" + "|".join(CRON_DAYS) + ")", 0, 6, CRON_DAYS),
)


def _cron_field(value: str) -> str:
    item = rf"(\*|\?|({value})(-({value}))?)(/[1-9][0-9]?)?"
    return rf"{item}(,{item})*"


CRON_DESCRIPTORS = ("yearly", "annually", "monthly", "weekly", "daily", "midnight", "hourly")
CRON_PATTERN = (
    "^(@("
    + "|".join(CRON_DESCRIPTORS)
    + ")|"
    + " +".join(f"({_cron_field(value)})" for value, *_ in CRON_FIELDS)
    + ")$"
)

Phase = Literal["Pending", "Progressing", "Ready", "Degraded", "Invalid"]
ServicePhase = Literal["Pending", "Waiting", "Progressing", "Ready", "Degraded"]
JobPhase = Literal["Pending", "Waiting", "Running", "Succeeded", "Failed", "Scheduled"]
JobResult = Literal["Running", "Succeeded", "Failed"]
ConcurrencyPolicy = Literal["Allow", "Forbid", "Replace"]
ExposeType = Literal["ClusterIP", "NodePort", "LoadBalancer", "Headless", "None"]
Protocol = Literal["TCP", "UDP", "SCTP"]
PullPolicy = Literal["Always", "IfNotPresent", "Never"]
ConditionStatus = Literal["True", "False", "Unknown"]
OnFailure = Literal["Rollback", "Hold"]
DEFAULT_REVISION_HISTORY_LIMIT = 10

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


# A host name as Gateway API and Ingress take it: a DNS-1123 subdomain, lowercase, optionally a wildcard `*.` first.
HOST_PATTERN = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# A path prefix: `/`, or segments of URL path characters (percent-encoding allowed), no empty segment (`//`).
PATH_PATTERN = r"^(/([-A-Za-z0-9._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})+)*/?$"
# A Secret's (or a Gateway's) name: a DNS-1123 subdomain.
SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
MAX_HOSTS = 16
MAX_PATHS = 16
MAX_PEERS = 20
CIDR_RULE = "isCIDR(self) && cidr(self).masked() == cidr(self)"
CIDR_MESSAGE = "must be a CIDR whose address is the network's (e.g. 10.0.0.0/8, 2001:db8::/32)"


class GatewayRef(_Model):
    """The Gateway an HTTPRoute attaches to (its parentRef)."""

    name: str = Field(
        description="Name of the Gateway.", min_length=1, max_length=253, pattern=SUBDOMAIN_PATTERN
    )
    namespace: str | None = Field(
        default=None,
        description="Namespace of the Gateway (default: the app's). The Gateway's listeners must allow routes "
        "from the app's namespace.",
        min_length=1,
        max_length=DNS_LABEL_MAX,
        pattern=DNS_LABEL_PATTERN.replace("^[a-z]", "^[a-z0-9]"),
    )
    section_name: str | None = Field(
        default=None,
        description="The Gateway's listener to attach to (default: every listener that accepts the route).",
        min_length=1,
        max_length=253,
        pattern=SUBDOMAIN_PATTERN,
    )


class IngressSettings(_Model):
    """Render a networking.k8s.io/v1 Ingress instead of a Gateway API HTTPRoute."""

    class_name: str | None = Field(
        default=None,
        description="The IngressClass (default: the cluster's default class).",
        min_length=1,
        max_length=253,
        pattern=SUBDOMAIN_PATTERN,
    )


class HttpRoute(_Model):
    """HTTP traffic from outside the cluster to the service: a Gateway API HTTPRoute <app>-<service> attached to
    `gateway` or, with `ingress`, an Ingress <app>-<service>. Settings under spec.defaults.expose.http (the
    gateway, the ingress class) apply to the services that set expose.http."""

    hosts: list[Annotated[str, Field(max_length=253, pattern=HOST_PATTERN)]] | None = Field(
        default=None,
        description="Host names the route answers (lowercase DNS names, `*.example.com` for a wildcard). "
        "Required (here or in spec.defaults.expose.http).",
        min_length=1,
        max_length=MAX_HOSTS,
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    paths: (
        list[
            Annotated[
                str,
                Field(
                    max_length=1024,
                    pattern=PATH_PATTERN,
                    json_schema_extra=_cel(
                        ("!self.matches('(^|/)[.][.]?(/|$)')", "a path may not have . or .. segments")
                    ),
                ),
            ]
        ]
        | None
    ) = Field(
        default=None,
        description="Path prefixes routed to the service (default [/]); a prefix matches whole segments "
        "(/api matches /api and /api/x, not /apix). No `.` or `..` segments.",
        min_length=1,
        max_length=MAX_PATHS,
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    port: str | None = Field(
        default=None,
        description="Name of the service port the route sends traffic to (default: the first port).",
        min_length=1,
        max_length=PORT_NAME_MAX,
        pattern=PORT_NAME_PATTERN,
    )
    gateway: GatewayRef | None = Field(
        default=None,
        description="The Gateway the HTTPRoute attaches to; usually set once in spec.defaults.expose.http. "
        "Required unless `ingress` is set.",
    )
    ingress: IngressSettings | None = Field(
        default=None, description="Render an Ingress (with this class) instead of an HTTPRoute."
    )
    tls_secret: str | None = Field(
        default=None,
        description="Ingress only: the Secret (kubernetes.io/tls, in the app's namespace) that terminates TLS "
        "for `hosts`; the URLs are then https. With a Gateway, TLS is the Gateway listener's.",
        min_length=1,
        max_length=253,
        pattern=SUBDOMAIN_PATTERN,
    )


class LabelSelectorRequirement(_Model):
    """One matchExpressions entry of a label selector."""

    key: str = Field(description="The label key.", min_length=1, max_length=317)
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(
        description="In, NotIn, Exists or DoesNotExist."
    )
    values: list[Annotated[str, Field(max_length=63)]] | None = Field(
        default=None, description="Values (In, NotIn).", max_length=64
    )


class LabelSelector(_Model):
    """A Kubernetes label selector; {} selects everything."""

    match_labels: dict[str, str] | None = Field(default=None, description="Labels that must all match.")
    match_expressions: list[LabelSelectorRequirement] | None = Field(
        default=None, description="Requirements that must all hold.", max_length=16
    )


class IpBlock(_Model):
    """A range of IP addresses (outside the cluster's pods, typically: pod addresses change)."""

    cidr: str = Field(
        description="The range, e.g. 10.0.0.0/8.",
        min_length=1,
        max_length=64,
        json_schema_extra=_cel((CIDR_RULE, CIDR_MESSAGE)),
    )
    except_: list[Annotated[str, Field(max_length=64)]] | None = Field(
        default=None,
        alias="except",
        description="Ranges inside `cidr` to leave out.",
        max_length=16,
    )


class PeerSelector(_Model):
    """Pods by namespace and/or pod labels, or an IP range."""

    model_config = ConfigDict(
        json_schema_extra=_cel(
            (
                "has(self.ipBlock) != (has(self.namespaceSelector) || has(self.podSelector))",
                "set ipBlock, or namespaceSelector and/or podSelector",
            )
        )
    )

    namespace_selector: LabelSelector | None = Field(
        default=None,
        description="Namespaces by label ({} for every namespace; `kubernetes.io/metadata.name` names one). "
        "Without it, podSelector picks pods of the app's namespace.",
    )
    pod_selector: LabelSelector | None = Field(
        default=None, description="Pods by label, in the namespaces selected (default: the app's)."
    )
    ip_block: IpBlock | None = Field(default=None, description="An IP range instead of pods.")


class Peer(PeerSelector):
    """Traffic sources (allowFrom) or destinations (allowTo): pods by namespace and/or pod labels, or an IP
    range; `ports` narrows which of the service's ports (allowFrom) or which destination ports (allowTo)."""

    ports: list[Annotated[str | int, Field(description="A port name or number.")]] | None = Field(
        default=None,
        description="allowFrom: names of the service's ports this peer may reach (default all of them). "
        "allowTo: destination port numbers (default any).",
        max_length=MAX_PORTS,
    )


class NetworkPolicySettings(_Model):
    """The service's NetworkPolicy <app>-<service>, derived from the dependency graph (docs/api.md, "Network
    policies"). On by default."""

    enabled: bool | None = Field(
        default=None, description="false: no NetworkPolicy for this service (default true)."
    )
    allow_from: list[Peer] | None = Field(
        default=None,
        description="Peers allowed in besides the dependents (Prometheus, another app, an office range).",
        max_length=MAX_PEERS,
    )
    route_from: list[PeerSelector] | None = Field(
        default=None,
        description="Where a route's traffic comes from: the Gateway's or the ingress controller's pods. "
        "Default: every pod of the Gateway's namespace (HTTPRoute), every namespace (Ingress: where its "
        "controller runs is not known). Set it once in spec.defaults.networkPolicy.",
        max_length=MAX_PEERS,
    )
    egress: Literal["open", "restricted"] | None = Field(
        default=None,
        description="open (the default): any destination. restricted: DNS (port 53) and the service's "
        "dependencies on their ports only, plus allowTo.",
    )
    allow_to: list[Peer] | None = Field(
        default=None,
        description="With egress restricted: further destinations (an external API's range, a database in "
        "another namespace).",
        max_length=MAX_PEERS,
    )


class Expose(_Model):
    """How the service is reachable: the type of the Kubernetes Service rendered for it, and an HTTP route."""

    type: ExposeType | None = Field(
        default=None,
        description="ClusterIP (the default): inside the cluster. NodePort or LoadBalancer: also from "
        "outside. Headless: a Service without a cluster IP (DNS names the pods). None: no Service at all.",
    )
    http: HttpRoute | None = Field(
        default=None,
        description="An HTTP route from outside: a Gateway API HTTPRoute, or an Ingress (docs/api.md, "
        '"Routes").',
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
    snapshot: bool | None = Field(
        default=None,
        description="Load an immutable copy of the data (<name>-<hash>, owned by the app) instead of the object "
        "itself: each revision keeps the configuration it was rolled out with, and a rollback restores it "
        '(default false). docs/api.md, "Config snapshots".',
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
    on_failure: OnFailure | None = Field(
        default=None,
        description="What a failed rollout of this service does (default Rollback): Rollback returns every "
        "service the rollout changed to the app's last Ready revision, dependents first; Hold keeps what is "
        "there and rolls nothing further (a release whose migrations cannot be undone). docs/api.md, "
        '"Rollbacks".',
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


class PodSettings(_Model):
    """The pod settings a service and a job share; `spec.defaults` may provide them and every service and job
    may override them."""

    env: list[EnvVar] | None = Field(
        default=None,
        description="Environment variables. Merged with the defaults by name; the service's (job's) entry "
        "wins.",
        max_length=MAX_ENV,
    )
    env_from: list[FreeForm] | None = Field(
        default=None,
        description="Kubernetes EnvFromSource entries (configMapRef/secretRef), passed through unchanged. "
        "Prefer configFrom, whose changes roll the pods.",
    )
    resources: Resources | None = Field(default=None, description="Compute resources of the container.")
    config_from: list[ConfigSource] | None = Field(
        default=None,
        description="ConfigMaps and Secrets loaded as environment; a change of their data rolls a service's "
        "pods and runs a job again.",
        max_length=MAX_CONFIG_SOURCES,
    )
    scheduling: Scheduling | None = Field(
        default=None, description="Node selection, tolerations, affinity, spread (spread: services only)."
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


class ServiceSettings(PodSettings):
    """Settings that `spec.defaults` may provide and every service may override: the pod's, and what only a
    long-running service has (probes, replicas, autoscaling, its Service, its disruption budget, its rollout)."""

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
    disruption_budget: DisruptionBudget | None = Field(
        default=None, description="PodDisruptionBudget settings (default: sized from the replica floor)."
    )
    rollout: Rollout | None = Field(default=None, description="Rolling update settings of the Deployment.")
    network_policy: NetworkPolicySettings | None = Field(
        default=None,
        description="The service's NetworkPolicy: only its dependents (and allowFrom) may connect (default on).",
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


class JobSpec(PodSettings):
    """A task that runs to completion. Without `schedule`: once per revision of its rendering and config, as the
    batch/v1 Job <app>-<name>-<run key>, before the services and jobs that depend on it. With `schedule`: a
    batch/v1 CronJob <app>-<name>, outside the dependency order (nothing waits for it)."""

    model_config = ConfigDict(
        json_schema_extra=_cel(
            (
                "!has(self.dependsOn) || !(self.name in self.dependsOn)",
                "a job cannot depend on itself",
                ".dependsOn",
            ),
            ("!has(self.timeZone) || has(self.schedule)", "timeZone needs a schedule", ".timeZone"),
            (
                "!has(self.concurrencyPolicy) || has(self.schedule)",
                "concurrencyPolicy needs a schedule",
                ".concurrencyPolicy",
            ),
        )
    )

    name: str = Field(
        description="Job name, a DNS-1035 label, unique among the app's services and jobs. A run is the Job "
        "<app>-<name>-<run key> and a scheduled job the CronJob <app>-<name>: <app>-<name> must fit in 52 "
        "characters.",
        min_length=1,
        max_length=DNS_LABEL_MAX,
        pattern=DNS_LABEL_PATTERN,
    )
    image: str = Field(
        description="Container image, e.g. registry.example.com/shop/migrate:1.4.2.", min_length=1
    )
    command: list[str] | None = Field(
        default=None, description="Entrypoint; replaces the image's ENTRYPOINT."
    )
    args: list[str] | None = Field(default=None, description="Arguments; replace the image's CMD.")
    depends_on: list[Annotated[str, Field(max_length=DNS_LABEL_MAX)]] | None = Field(
        default=None,
        description="Services that must be Available and jobs whose current run must have succeeded before "
        "this job runs (a scheduled job: before its CronJob is created or updated). Each service that has a "
        "Kubernetes Service gives it <NAME>_HOST, <NAME>_PORT and <NAME>_URL.",
        max_length=MAX_DEPENDENCIES,
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    backoff_limit: int | None = Field(
        default=None,
        description="Retries before a run fails (BackoffLimitExceeded), each in a new pod (restartPolicy "
        "Never, so every attempt's pod and logs are kept). Default 2.",
        ge=0,
        le=100,
    )
    active_deadline_seconds: int | None = Field(
        default=None,
        description="Seconds a run may take, retries included, before it fails (DeadlineExceeded).",
        ge=1,
        le=2592000,
    )
    history_limit: int | None = Field(
        default=None,
        description="Runs kept per job for their logs, the current one included (default 3); older finished "
        "runs are deleted. With schedule: the CronJob's successfulJobsHistoryLimit and "
        "failedJobsHistoryLimit (default Kubernetes' 3 and 1).",
        ge=1,
        le=20,
    )
    schedule: str | None = Field(
        default=None,
        description="Cron schedule (minute hour day-of-month month day-of-week, or @hourly, @daily, ...): "
        "the job becomes a CronJob that runs on it, and nothing may depend on it.",
        max_length=256,
        pattern=CRON_PATTERN,
    )
    time_zone: str | None = Field(
        default=None,
        description="IANA time zone of the schedule, e.g. Europe/Paris (default: the controller manager's, "
        "usually UTC). Only with schedule.",
        max_length=64,
        pattern=TIME_ZONE_PATTERN,
    )
    concurrency_policy: ConcurrencyPolicy | None = Field(
        default=None,
        description="What a scheduled run does while the previous one still runs: Forbid (the default here: "
        "skip it), Allow or Replace. Only with schedule.",
    )


# Names are unique across services and jobs (one namespace of dependency names); nothing may wait for a
# scheduled job. Bounded lists keep these within the API server's CEL cost budget.
_KNOWN = "self.services.exists(t, t.name == d) || (has(self.jobs) && self.jobs.exists(j, j.name == d))"
_NOT_SCHEDULED = "!has(self.jobs) || !self.jobs.exists(j, j.name == d && has(j.schedule))"


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
                f"self.services.all(s, !has(s.dependsOn) || s.dependsOn.all(d, {_KNOWN}))",
                "every dependsOn entry must name a service or a job of this app",
                ".services",
            ),
            (
                "!has(self.jobs) || self.jobs.all(j, !self.services.exists(s, s.name == j.name))",
                "a job cannot have the name of a service: services and jobs share one set of names",
                ".jobs",
            ),
            (
                f"!has(self.jobs) || self.jobs.all(s, !has(s.dependsOn) || s.dependsOn.all(d, {_KNOWN}))",
                "every dependsOn entry must name a service or a job of this app",
                ".jobs",
            ),
            (
                f"self.services.all(s, !has(s.dependsOn) || s.dependsOn.all(d, {_NOT_SCHEDULED}))",
                "dependsOn cannot name a scheduled job (one with a schedule): nothing waits for it",
                ".services",
            ),
            (
                f"!has(self.jobs) || self.jobs.all(s, !has(s.dependsOn) || s.dependsOn.all(d, {_NOT_SCHEDULED}))",
                "dependsOn cannot name a scheduled job (one with a schedule): nothing waits for it",
                ".jobs",
            ),
        )
    )

    defaults: Defaults | None = Field(
        default=None,
        description="Settings merged under every service's own (the service's value wins), and the pod "
        "settings among them under every job's (all but podSpecPatch).",
    )
    services: list[ServiceSpec] = Field(
        description="The services of the app.",
        min_length=1,
        max_length=MAX_SERVICES,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    revision_history_limit: int | None = Field(
        default=None,
        description="How many Ready revisions of the app to keep (ControllerRevisions, default 10): a failed "
        "rollout returns to the newest, `maestro history` lists them.",
        ge=1,
        le=100,
    )
    jobs: list[JobSpec] | None = Field(
        default=None,
        description="Tasks that run to completion: migrations and other one-off tasks run once per revision "
        "before what depends on them; scheduled tasks (schedule) run as CronJobs.",
        max_length=MAX_JOBS,
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


class RouteStatus(_Model):
    """The service's route (HTTPRoute or Ingress) as the cluster reports it."""

    kind: Literal["HTTPRoute", "Ingress"] = Field(description="HTTPRoute or Ingress.")
    name: str = Field(description="Name of the route object (<app>-<service>).")
    accepted: ConditionStatus = Field(
        description="HTTPRoute: its Accepted condition for the Gateway, read back (Unknown until a gateway "
        "controller has answered). Ingress: True once the controller has given it an address."
    )
    resolved_refs: ConditionStatus | None = Field(
        default=None,
        description="HTTPRoute: its ResolvedRefs condition for the Gateway (Unknown until answered).",
    )
    message: str | None = Field(default=None, description="Human-readable details.")


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
    urls: list[str] | None = Field(
        default=None, description="External URLs of the service's route (expose.http): scheme, host and path."
    )
    route: RouteStatus | None = Field(default=None, description="The route's acceptance, read back.")
    waiting_for: list[str] | None = Field(
        default=None, description="Dependencies that are not Available yet (phase Waiting)."
    )
    message: str | None = Field(default=None, description="Human-readable details.")


class JobStatus(_Model):
    """What one job looks like in the cluster: its current run (or, scheduled, its CronJob)."""

    name: str = Field(description="Job name.")
    phase: JobPhase = Field(
        description="Pending (no run yet), Waiting (for dependencies, or for the previous run to end), Running, "
        "Succeeded or Failed (the current run); Scheduled for a job with a schedule (its CronJob exists)."
    )
    run: str | None = Field(
        default=None, description="The Job of the current run (<app>-<job>-<run key>), or the CronJob."
    )
    run_key: str | None = Field(
        default=None,
        description="The hash of the job's rendering and config that the current run is for: a new image or "
        "new config makes a new key, hence a new run.",
    )
    start_time: str | None = Field(default=None, description="When the current run started.")
    completion_time: str | None = Field(default=None, description="When the current run succeeded.")
    waiting_for: list[str] | None = Field(
        default=None, description="Dependencies not yet Available or succeeded (phase Waiting)."
    )
    last_schedule_time: str | None = Field(
        default=None, description="Scheduled job: when its last run was scheduled."
    )
    last_successful_time: str | None = Field(
        default=None, description="Scheduled job: when its last successful run completed."
    )
    last_result: JobResult | None = Field(
        default=None, description="Scheduled job: Running, or how its last finished run ended."
    )
    message: str | None = Field(default=None, description="Human-readable details (why a run failed).")


class RevisionRef(_Model):
    """A recorded revision of the app: a ControllerRevision owned by it (docs/api.md, "Rollbacks")."""

    revision: int = Field(description="The revision's number (ControllerRevision .revision).", ge=1)
    name: str = Field(description="The ControllerRevision's name (<app>-<hash of the services' rendering>).")
    generation: int | None = Field(default=None, description="The app generation it was Ready at.")


class RolloutFailure(_Model):
    """A failed rollout and what Maestro did about it, until the spec or its config changes again."""

    action: Literal["RolledBack", "Held"] = Field(
        description="RolledBack: the services the rollout changed returned to `revision`; Held: nothing rolls "
        "back or further (rollout.onFailure: Hold, or no Ready revision to return to)."
    )
    service: str = Field(description="The service whose rollout failed first.")
    cause: str = Field(description="Why it failed, e.g. 3 restarts in 40 s, CrashLoopBackOff.")
    generation: int = Field(description="The app generation whose rollout failed.")
    rendering: str = Field(
        description="Hash of the failed rendering (spec and config): it is not tried again until this changes."
    )
    revision: RevisionRef | None = Field(default=None, description="The revision returned to (RolledBack).")
    reached: list[str] = Field(
        default_factory=list,
        description="The services the failed rollout had reached (all their children at the failed rendering) "
        "when it was decided: only those roll back.",
    )
    returned: list[str] | None = Field(
        default=None, description="The services returned to that revision, dependents first (once done)."
    )
    time: str = Field(description="When the failure was acted on (RFC 3339).")


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
    jobs: list[JobStatus] | None = Field(
        default=None,
        description="Per-job status, in the order of spec.jobs; absent while the phase is Invalid.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    last_good_revision: RevisionRef | None = Field(
        default=None, description="The newest revision at which the whole app was Ready (kept across passes)."
    )
    failed_generation: int | None = Field(
        default=None, description="The generation whose rollout failed, while `rolloutFailure` holds."
    )
    rollout_failure: RolloutFailure | None = Field(
        default=None,
        description="A failed rollout and what was done (rolled back or held), until the spec or config changes.",
    )
    settled_mark: str | None = Field(
        default=None,
        description="Written by the last pass that found nothing to do: a digest of the operator's code, the app, "
        "this status and the children. A restarted operator skips the pass of an app whose mark still matches.",
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
        errors += _duplicate_dependencies(service.depends_on, base)
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
    services = set(seen)
    for i, job in enumerate(spec.jobs or []):
        base = f"spec.jobs[{i}]"
        if job.name in services:
            errors.append(
                (
                    f"{base}.name",
                    f"{job.name!r} is the name of a service: services and jobs share one set of names",
                )
            )
        elif job.name in seen:
            errors.append((f"{base}.name", f"duplicate job name {job.name!r}"))
        seen.add(job.name)
        errors += _settings_errors(job, base)
        errors += _duplicate_dependencies(job.depends_on, base)
        if job.schedule is None:
            errors += [
                (f"{base}.{alias}", f"{alias} needs a schedule")
                for alias, value in (
                    ("timeZone", job.time_zone),
                    ("concurrencyPolicy", job.concurrency_policy),
                )
                if value is not None
            ]
        else:
            errors += [(f"{base}.schedule", message) for message in cron_errors(job.schedule)]
    if spec.defaults is not None:
        errors += _settings_errors(spec.defaults, "spec.defaults")
    errors += _graph_errors(spec)
    return errors


def _duplicate_dependencies(depends_on: Sequence[str] | None, base: str) -> list[tuple[str, str]]:
    entries = list(depends_on or [])
    return [
        (f"{base}.dependsOn[{j}]", f"duplicate entry {dep!r}")
        for j, dep in enumerate(entries)
        if dep in entries[:j]
    ]


def cron_errors(schedule: str) -> list[str]:
    """What the schedule's pattern (CRON_PATTERN) cannot say: a range whose start is beyond its end (Kubernetes
    refuses the CronJob). Values out of a field's range are the pattern's. Empty when fine."""
    if not re.fullmatch(CRON_PATTERN, schedule) or schedule.startswith("@"):
        return []
    errors = []
    for text, (_, low, high, names) in zip(schedule.split(), CRON_FIELDS, strict=True):
        for item in text.split(","):
            span = item.split("/")[0]
            if "-" not in span:
                continue
            start, end = (_cron_value(part, names) for part in span.split("-"))
            if start > end:
                errors.append(f"range {span} runs backwards ({low}-{high} is the field's range)")
    return errors


def _cron_value(text: str, names: Sequence[str]) -> int:
    lowered = text.lower()
    if lowered in names:
        # Months count from 1 (jan), days of the week from 0 (sun).
        return names.index(lowered) + (1 if len(names) == len(CRON_MONTHS) else 0)
    return int(text)


def dependency_graph(spec: MicroserviceAppSpec) -> dict[str, list[str]]:
    """service or job name -> the names it depends on, services then jobs in spec order (input of graph.py)."""
    graph_ = {service.name: list(service.depends_on or []) for service in spec.services}
    return graph_ | {job.name: list(job.depends_on or []) for job in spec.jobs or []}


def component_path(spec: MicroserviceAppSpec, name: str) -> str:
    """The spec's path of a service or a job by name (spec.services[1], spec.jobs[0])."""
    for i, service in enumerate(spec.services):
        if service.name == name:
            return f"spec.services[{i}]"
    for i, job in enumerate(spec.jobs or []):
        if job.name == name:
            return f"spec.jobs[{i}]"
    raise KeyError(name)


def _graph_errors(spec: MicroserviceAppSpec) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    deps = dependency_graph(spec)
    scheduled = {job.name for job in spec.jobs or [] if job.schedule is not None}
    for item, dep in graph.unknown_dependencies(deps):
        position = deps[item].index(dep)
        errors.append(
            (f"{component_path(spec, item)}.dependsOn[{position}]", f"unknown service or job {dep!r}")
        )
    for item, entries in deps.items():
        for position, dep in enumerate(entries):
            if dep in scheduled:
                errors.append(
                    (
                        f"{component_path(spec, item)}.dependsOn[{position}]",
                        f"{dep!r} is a scheduled job (it has a schedule): nothing waits for one",
                    )
                )
        if item in entries:
            kind = "job" if item in {job.name for job in spec.jobs or []} else "service"
            errors.append((f"{component_path(spec, item)}.dependsOn", f"a {kind} cannot depend on itself"))
    # Self-dependencies were reported above; look for the longer cycles.
    cycle = graph.find_cycle({name: [d for d in ds if d != name] for name, ds in deps.items()})
    if cycle is not None:
        errors.append(
            (f"{component_path(spec, cycle[0])}.dependsOn", f"dependency cycle: {' -> '.join(cycle)}")
        )
    return errors


def _settings_errors(settings: PodSettings, base: str) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    service = settings if isinstance(settings, ServiceSettings) else None
    scaling = service.autoscaling if service else None
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
    if service is not None:
        errors += _reach_rule_errors(service, base)
    budget = service.disruption_budget if service else None
    if budget and budget.min_available is not None and budget.max_unavailable is not None:
        errors.append((f"{base}.disruptionBudget", "set minAvailable or maxUnavailable, not both"))
    # The Deployment and pod rules below are the API server's: caught here, the app is Invalid before any
    # child is written, instead of failing half-way through its services.
    rollout = service.rollout if service else None
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


def _reach_rule_errors(service: ServiceSettings, base: str) -> list[tuple[str, str]]:
    """The CEL rules of expose.http and networkPolicy (each object alone)."""
    errors: list[tuple[str, str]] = []
    http = service.expose.http if service.expose else None
    for k, path in enumerate((http.paths if http else None) or []):
        if any(segment in (".", "..") for segment in path.split("/")):
            errors.append((f"{base}.expose.http.paths[{k}]", "a path may not have . or .. segments"))
    policy = service.network_policy
    for field, peers in (
        ("allowFrom", policy.allow_from if policy else None),
        ("routeFrom", policy.route_from if policy else None),
        ("allowTo", policy.allow_to if policy else None),
    ):
        for k, peer in enumerate(peers or []):
            errors += _peer_errors(peer, f"{base}.networkPolicy.{field}[{k}]")
    return errors


def _peer_errors(peer: PeerSelector, base: str) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    if (peer.ip_block is None) == (peer.namespace_selector is None and peer.pod_selector is None):
        errors.append((base, "set ipBlock, or namespaceSelector and/or podSelector"))
    if peer.ip_block is not None:
        network = parse_cidr(peer.ip_block.cidr)
        if network is None:
            errors.append((f"{base}.ipBlock.cidr", CIDR_MESSAGE))
        for j, text in enumerate(peer.ip_block.except_ or []):
            inner = parse_cidr(text)
            if inner is None:
                errors.append((f"{base}.ipBlock.except[{j}]", CIDR_MESSAGE))
            elif network is not None and (
                inner.version != network.version or not inner.subnet_of(network) or inner == network  # type: ignore[arg-type]
            ):
                errors.append((f"{base}.ipBlock.except[{j}]", f"must be a range strictly inside {network}"))
    return errors


def parse_cidr(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """A CIDR whose address is its network's (10.0.0.0/8, not 10.0.0.1/8), else None."""
    if "/" not in text:
        return None
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError:
        return None


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
    be a DNS-1035 label of at most 63 characters (`<app>-<job>`: 52), and every service and job must have what
    it needs after merging the defaults (e.g. autoscaling.maxReplicas). Raises SpecError."""
    parsed = parse_app_spec(spec)
    errors: list[tuple[str, str]] = []
    for i, service in enumerate(parsed.services):
        errors += _child_name_errors(name, service.name, f"spec.services[{i}]", DNS_LABEL_MAX, "service")
        try:
            merged = effective_service(parsed.defaults, service)
        except SpecError as exc:
            errors += [(f"spec.services[{i}]{path}", message) for path, message in exc.errors]
            continue
        if merged.autoscaling is not None and merged.autoscaling.max_replicas is None:
            errors.append((f"spec.services[{i}].autoscaling.maxReplicas", "required value"))
        errors += _merged_errors(merged, f"spec.services[{i}]")
    if not errors:
        merged_services = [effective_service(parsed.defaults, service) for service in parsed.services]
        errors += route_errors(merged_services, [f"spec.services[{i}]" for i in range(len(merged_services))])
    for i, job in enumerate(parsed.jobs or []):
        errors += _child_name_errors(name, job.name, f"spec.jobs[{i}]", JOB_CHILD_MAX, "job")
        try:
            merged_job = effective_job(parsed.defaults, job)
        except SpecError as exc:
            errors += [(f"spec.jobs[{i}]{path}", message) for path, message in exc.errors]
            continue
        errors += _merged_errors(merged_job, f"spec.jobs[{i}]")
    if errors:
        raise SpecError(errors)
    return parsed


def _child_name_errors(app: str, name: str, base: str, limit: int, kind: str) -> list[tuple[str, str]]:
    child = f"{app}-{name}"
    if len(child) > limit:
        return [
            (
                f"{base}.name",
                f"child name {child!r} is {len(child)} characters; <app>-<{kind}> must be at most "
                f"{limit} (shorten the app or the {kind} name)",
            )
        ]
    if not _DNS_LABEL.match(child):
        return [("metadata.name", f"child name {child!r} must be a DNS-1035 label (start with a letter)")]
    return []


def _merged_errors(merged: PodSettings, base: str) -> list[tuple[str, str]]:
    """What only the combination of the defaults and the service's (job's) own settings can get wrong."""
    errors: list[tuple[str, str]] = []
    # The API server rejects the pod otherwise; here, before any child of the app is written.
    volumes = {v.name for v in merged.volumes or []} | {
        str(v.get("name")) for v in (merged.pod_spec_patch or {}).get("volumes") or [] if isinstance(v, dict)
    }
    for k, mount in enumerate(merged.volume_mounts or []):
        if mount.name not in volumes:
            errors.append((f"{base}.volumeMounts[{k}].name", f"no volume named {mount.name!r} in volumes"))
    if isinstance(merged, ServiceSpec):
        errors += _reach_merged_errors(merged, base)
    # Each part was fine alone (parse_app_spec passed); these come from combining them.
    errors += [
        (path, f"{message} (after merging spec.defaults)") for path, message in _settings_errors(merged, base)
    ]
    return errors


def _reach_merged_errors(service: ServiceSpec, base: str) -> list[tuple[str, str]]:
    """What a route and a policy need of the whole (merged) service."""
    errors: list[tuple[str, str]] = []
    ports = [] if service.expose is not None and service.expose.type == "None" else list(service.ports or [])
    names = [p.name for p in ports]
    http = service.expose.http if service.expose else None
    if http is not None:
        where = f"{base}.expose.http"
        if not http.hosts:
            errors.append((f"{where}.hosts", "required value (here or in spec.defaults.expose.http)"))
        if not ports:
            errors.append(
                (
                    where,
                    "a route needs a port of the service's Kubernetes Service (ports, and "
                    "expose.type other than None)",
                )
            )
        elif http.port is not None and http.port not in names:
            errors.append((f"{where}.port", f"no port named {http.port!r} in ports ({', '.join(names)})"))
        if http.ingress is None and http.gateway is None:
            errors.append(
                (
                    f"{where}.gateway",
                    "required value unless ingress is set (here or in "
                    "spec.defaults.expose.http): the Gateway the HTTPRoute attaches to",
                )
            )
        if http.tls_secret is not None and http.ingress is None:
            errors.append(
                (
                    f"{where}.tlsSecret",
                    "only with ingress: with a Gateway, TLS is the Gateway listener's (its certificateRefs)",
                )
            )
    policy = service.network_policy
    for k, peer in enumerate((policy.allow_from if policy else None) or []):
        for j, port in enumerate(peer.ports or []):
            if str(port) not in names:
                errors.append(
                    (
                        f"{base}.networkPolicy.allowFrom[{k}].ports[{j}]",
                        f"no port named {port!r} in ports ({', '.join(names) or 'none'})",
                    )
                )
    for k, peer in enumerate((policy.allow_to if policy else None) or []):
        for j, port in enumerate(peer.ports or []):
            if isinstance(port, int) and not 1 <= port <= 65535:
                errors.append(
                    (f"{base}.networkPolicy.allowTo[{k}].ports[{j}]", "must be between 1 and 65535")
                )
    return errors


def route_errors(services: Sequence[ServiceSpec], paths: Sequence[str]) -> list[tuple[str, str]]:
    """Two services of one app routed at the same host and path prefix (`paths`: each service's spec path)."""
    errors: list[tuple[str, str]] = []
    seen: dict[tuple[str, str], str] = {}
    for service, base in zip(services, paths, strict=True):
        http = service.expose.http if service.expose else None
        if http is None:
            continue
        for k, prefix in enumerate(http.paths or ["/"]):
            for host in http.hosts or []:
                key = (host, prefix.rstrip("/") or "/")
                if key in seen and seen[key] != service.name:
                    errors.append(
                        (
                            f"{base}.expose.http.paths[{k}]" if http.paths else f"{base}.expose.http.hosts",
                            f"{host}{prefix} is already routed to service {seen[key]!r}",
                        )
                    )
                seen.setdefault(key, service.name)
    return errors


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
    if "http" not in (top.get("expose") or {}) and "http" in (base.get("expose") or {}):
        # The defaults' route settings (the gateway, the ingress class) are for the services that ask for a route.
        base["expose"] = {k: v for k, v in base["expose"].items() if k != "http"}
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


# What of spec.defaults a job takes: the pod's settings, but not podSpecPatch (a sidecar added for the services
# would keep a Job from ever completing; a job sets its own).
_JOB_DEFAULTS = frozenset(
    (info.alias or name) for name, info in PodSettings.model_fields.items() if name != "pod_spec_patch"
)


def effective_job(defaults: Defaults | None, job: JobSpec) -> JobSpec:
    """The job's settings with the pod settings of `spec.defaults` (all but podSpecPatch) merged under them, by
    the rules of `effective_service`."""
    if defaults is None:
        return job
    base = {
        key: value
        for key, value in defaults.model_dump(by_alias=True, exclude_none=True).items()
        if key in _JOB_DEFAULTS
    }
    top = job.model_dump(by_alias=True, exclude_none=True)
    try:
        return JobSpec.model_validate(deep_merge(base, top, replaced=_REPLACED, list_keys=_LIST_KEYS))
    except pydantic.ValidationError as exc:
        raise SpecError(
            [(_loc_to_path("", e["loc"]), _message(e)) for e in exc.errors(include_url=False)]
        ) from None
