"""Every field of the spec has an effect: set to a valid non-default value, it changes the rendered children or
the status. A field added to the models and forgotten by the renderers fails here, named, until it is rendered
or listed in ALLOWED_WITHOUT_EFFECT with the reason.

The models are walked, nested models included (a list of models through its first item); each field is tried on
the first service and, for the settings a service shares with `spec.defaults`, on the defaults too. Sample values
come from the field's annotation (Literal, bool, int within its bounds, str, lists, maps, models) or, where that
cannot give a valid or a telling value, from SAMPLES; a field of a type neither covers fails loudly.
"""

from __future__ import annotations

import copy
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import annotated_types
import pydantic
import pytest
from pydantic.fields import FieldInfo

from maestro import render
from maestro.api import models as api
from maestro.controller import status

from .helpers import app, svc

# Fields that change neither the children nor the status, with the reason. Keyed "Model.field".
ALLOWED_WITHOUT_EFFECT: dict[str, str] = {
    "ConfigSource.snapshot": "the pods load a copy of the data, which the operator makes from what it reads: "
    "offline there is none (tests/unit/test_snapshots.py renders with one)",
    "Rollout.on_failure": "what a failed rollout does (controller/rollback.py, tests/unit/test_rollback.py), not "
    "what a pass renders",
    "MicroserviceAppSpec.revision_history_limit": "how many revisions are kept (controller/revisions.py, "
    "tests/unit/test_rollback.py), not what a pass renders",
    "JobSpec.history_limit": "a job without schedule: how many earlier runs a pass keeps (its prunes, "
    "tests/unit/test_plan.py), not what it renders; with a schedule it is the CronJob's history limits",
}


@dataclass(frozen=True)
class Sample:
    """A sample value; `drop`: sibling keys removed with it (for fields that exclude one another); `context`:
    sibling keys set in both apps (for fields that need another)."""

    value: Any
    drop: tuple[str, ...] = ()
    context: tuple[tuple[str, Any], ...] = ()


# Samples the annotation cannot give: values the checks need (a volume that exists, a service to depend on, a
# quantity), a value that differs from the base app's, or one that excludes a sibling.
SAMPLES: dict[str, Sample] = {
    "ServiceSpec.depends_on": Sample(["db"]),
    "ServiceSpec.ports": Sample([{"name": "grpc", "port": 9090}]),
    "PodSettings.volumes": Sample([{"name": "logs", "emptyDir": {}}]),
    "JobSpec.depends_on": Sample(["db"]),
    "JobSpec.backoff_limit": Sample(5),  # 2 is the default
    "JobSpec.schedule": Sample("0 3 * * *"),
    "JobSpec.time_zone": Sample("Europe/Paris", context=(("schedule", "0 3 * * *"),)),
    "JobSpec.concurrency_policy": Sample("Replace", context=(("schedule", "0 3 * * *"),)),
    "VolumeMount.name": Sample("cache"),
    "ConfigSource.secret": Sample("app-secret", drop=("configMap",)),
    "Resources.requests": Sample({"cpu": "100m"}),
    "Resources.limits": Sample({"memory": "256Mi"}),
    "NetworkPolicySettings.enabled": Sample(False),  # on by default
    "HttpRoute.paths": Sample(["/api"]),
    "HttpRoute.gateway": Sample({"name": "internal", "namespace": "gateways"}),
    "HttpRoute.port": Sample("metrics"),  # the first port is the default
    "HttpRoute.tls_secret": Sample("shop-tls", context=(("ingress", {}),)),  # an Ingress's
    "IpBlock.cidr": Sample("192.168.0.0/16"),
    "IpBlock.except_": Sample(["10.1.0.0/16"]),
    "PeerSelector.ip_block": Sample({"cidr": "10.0.0.0/8"}, drop=("podSelector",)),
    "Peer.ports": Sample(["metrics"]),  # default: every port
}

# Settings of spec.defaults that act only through a service that opts in (the defaults' expose.http is for the
# services that set expose.http): the first service's fields, set in both apps, by the label's prefix (the
# longest that matches), and the samples for those labels.
OPT_IN: dict[str, dict[str, Any]] = {
    "defaults.expose.http.": {"expose": {"http": {}}},
    # where a route's traffic comes from: only for a routed service
    "services.networkPolicy.routeFrom": {"expose": {"http": {"hosts": ["web.example.com"], "ingress": {}}}},
    "defaults.networkPolicy.routeFrom": {"expose": {"http": {"hosts": ["web.example.com"], "ingress": {}}}},
    "defaults.expose.http": {
        "expose": {"http": {"hosts": ["web.example.com"], "gateway": {"name": "internal"}}}
    },
}
LABEL_SAMPLES: dict[str, Sample] = {"defaults.expose.http": Sample({"paths": ["/api"]})}

# Fields that exclude siblings of the smallest instance: a path through them drops those (an ipBlock peer
# has no selectors).
EXCLUSIVE: dict[str, tuple[str, ...]] = {"PeerSelector.ip_block": ("podSelector", "namespaceSelector")}

VOLUMES = [{"name": "data", "emptyDir": {}}, {"name": "cache", "emptyDir": {}}]

# The smallest valid instance of a model, where it has required fields or needs one to be valid (autoscaling
# needs maxReplicas somewhere). A model missing here gets {} when it has no required field.
MINIMAL: dict[type[pydantic.BaseModel], dict[str, Any]] = {
    api.ServiceSpec: {"name": "api", "image": "registry.example.com/api:1.0.0"},
    api.JobSpec: {"name": "migrate", "image": "registry.example.com/migrate:1.0.0", "volumes": VOLUMES},
    api.EnvVar: {"name": "LOG_LEVEL"},
    api.Port: {"name": "http", "port": 80},
    api.ConfigSource: {"configMap": "app-config"},
    api.VolumeMount: {"name": "data", "mountPath": "/data"},
    api.Volume: {"name": "data", "emptyDir": {}},
    api.Autoscaling: {"maxReplicas": 5},
    api.HttpRoute: {"hosts": ["shop.example.com"], "gateway": {"name": "public"}},
    api.GatewayRef: {"name": "public"},
    api.PeerSelector: {"podSelector": {"matchLabels": {"role": "monitoring"}}},
    api.Peer: {"podSelector": {"matchLabels": {"role": "monitoring"}}},
    api.LabelSelectorRequirement: {"key": "team", "operator": "Exists"},
    api.IpBlock: {"cidr": "10.0.0.0/8"},
    # allowTo only acts with egress restricted
    api.NetworkPolicySettings: {"egress": "restricted"},
}


def base_app() -> dict[str, Any]:
    """Two services (web, the one whose fields are tried, and db, to depend on), with volumes to mount and two
    ports (a route or a peer may pick the second)."""
    ports = [{"name": "http", "port": 80}, {"name": "metrics", "port": 9100}]
    return app(svc("web", volumes=VOLUMES, ports=ports), svc("db", volumes=VOLUMES, ports=ports))


# ------------------------------------------------------------------------------------------- the walk


@dataclass(frozen=True)
class Step:
    """One field on the way to the field tried: the model that has it, its python name and its FieldInfo."""

    owner: type[pydantic.BaseModel]
    name: str
    info: FieldInfo

    @property
    def alias(self) -> str:
        return self.info.alias or self.name

    @property
    def key(self) -> str:
        """The field as ALLOWED_WITHOUT_EFFECT and SAMPLES name it: by the model that declares it."""
        declaring = next(m for m in self.owner.__mro__ if self.name in getattr(m, "__annotations__", {}))
        return f"{declaring.__name__}.{self.name}"


def _unwrap(annotation: Any) -> Any:
    """The annotation without Optional and Annotated (`int | None` -> int)."""
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return _unwrap(members[0])
    return annotation


def _nested_model(annotation: Any) -> tuple[type[pydantic.BaseModel] | None, bool]:
    """The model a field holds (directly or as a list), and whether it is a list."""
    inner = _unwrap(annotation)
    is_list = typing.get_origin(inner) is list
    if is_list:
        inner = _unwrap(typing.get_args(inner)[0])
    if isinstance(inner, type) and issubclass(inner, pydantic.BaseModel):
        return inner, is_list
    return None, is_list


def walk(model: type[pydantic.BaseModel], prefix: tuple[Step, ...] = ()) -> Iterator[tuple[Step, ...]]:
    """Every field path below `model`, nested models included."""
    for name, info in model.model_fields.items():
        path = (*prefix, Step(model, name, info))
        yield path
        nested, _ = _nested_model(info.annotation)
        if nested is not None:
            yield from walk(nested, path)


def _label(path: tuple[Step, ...]) -> str:
    return ".".join(step.alias for step in path)


PATHS = {_label(path): path for path in walk(api.MicroserviceAppSpec)}


# ------------------------------------------------------------------------------------------- samples


def minimal(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    if model in MINIMAL:
        return copy.deepcopy(MINIMAL[model])
    required = [name for name, info in model.model_fields.items() if info.is_required()]
    if required:
        raise LookupError(
            f"{model.__name__} has required fields {required}: add its smallest instance to MINIMAL"
        )
    return {}


def _model_sample(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    """The smallest instance; when that is empty, with its first field set (an empty object says nothing)."""
    value = minimal(model)
    if not value:
        name, info = next(iter(model.model_fields.items()))
        step = Step(model, name, info)
        value[step.alias] = sample(step, None).value
    return value


def _type_sample(annotation: Any, info: FieldInfo | None, current: Any, key: str) -> Any:
    kind = _unwrap(annotation)
    origin = typing.get_origin(kind)
    if origin is Literal:
        return next(v for v in reversed(typing.get_args(kind)) if v != current)
    if origin in (typing.Union, types.UnionType):  # int | str: the first member will do
        return _type_sample(typing.get_args(kind)[0], info, current, key)
    if kind is bool:
        return not current
    if kind is int:
        metadata = info.metadata if info is not None else []
        low = next((int(m.ge) for m in metadata if isinstance(m, annotated_types.Ge)), 0)  # type: ignore[call-overload]
        high = next((int(m.le) for m in metadata if isinstance(m, annotated_types.Le)), None)  # type: ignore[call-overload]
        value = low + 2 if current != low + 2 else low + 3
        return value if high is None else min(value, high)
    if kind is str:
        return "sample"
    if origin is list:
        return [_type_sample(typing.get_args(kind)[0], None, None, key)]
    if origin is dict:
        return {"sample": _type_sample(typing.get_args(kind)[1], None, None, key)}
    if kind is Any:
        return "sample"
    if isinstance(kind, type) and issubclass(kind, pydantic.BaseModel):
        return _model_sample(kind)
    raise LookupError(f"no sample for {key} (annotation {annotation!r}): add one to SAMPLES")


def sample(step: Step, current: Any) -> Sample:
    """A valid value for the field that differs from `current`."""
    if step.key in SAMPLES:
        return SAMPLES[step.key]
    return Sample(_type_sample(step.info.annotation, step.info, current, step.key))


# ------------------------------------------------------------------------------------------- the test

T0 = "2026-01-01T00:00:00Z"


def observed(obj: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """What an app yields: its children, and its status before any Deployment exists."""
    children = render.render_app(obj)
    spec = api.validate_app(obj["metadata"]["name"], obj["spec"])
    services = [status.service_status(obj, service, None) for service in render.effective_services(spec)]
    jobs = [status.job_status(obj, job, None) for job in render.effective_jobs(spec)]
    return children, status.to_dict(status.app_status(obj, services, jobs=jobs, timestamp=T0))


def _container(spec: dict[str, Any], steps: tuple[Step, ...]) -> dict[str, Any]:
    """The object that holds the last step's field, its ancestors created (smallest instance) if absent."""
    holder = spec
    for step in steps:
        model, is_list = _nested_model(step.info.annotation)
        assert model is not None, step.key
        for sibling in EXCLUSIVE.get(step.key, ()):
            holder.pop(sibling, None)
        if step.alias not in holder:
            holder[step.alias] = [minimal(model)] if is_list else minimal(model)
        holder = holder[step.alias][0] if is_list else holder[step.alias]
    return holder


def variants(path: tuple[Step, ...]) -> tuple[dict[str, Any], dict[str, Any], Sample]:
    """The base app (with the field's ancestors) and the same app with the field set to its sample."""
    before = base_app()
    label = _label(path)
    opt_in = max((prefix for prefix in OPT_IN if label.startswith(prefix)), key=len, default=None)
    if opt_in is not None:
        before["spec"]["services"][0].update(copy.deepcopy(OPT_IN[opt_in]))
    holder = _container(before["spec"], path[:-1])
    after = copy.deepcopy(before)
    after_holder = _container(after["spec"], path[:-1])
    chosen = LABEL_SAMPLES.get(label) or sample(path[-1], holder.get(path[-1].alias))
    assert chosen.value != holder.get(path[-1].alias), f"{path[-1].key}: the sample is the base app's value"
    after_holder[path[-1].alias] = copy.deepcopy(chosen.value)
    for key in chosen.drop:
        after_holder.pop(key, None)
    for key, value in chosen.context:
        holder[key] = after_holder[key] = copy.deepcopy(value)
    return before, after, chosen


@pytest.mark.parametrize("label", sorted(PATHS))
def test_field_changes_the_children_or_the_status(label: str) -> None:
    path = PATHS[label]
    key = path[-1].key
    before, after, chosen = variants(path)
    baseline = observed(before)
    try:
        changed = observed(after)
    except api.SpecError as error:
        raise AssertionError(f"{key}: the sample {chosen.value!r} makes the app invalid: {error}") from None
    if key in ALLOWED_WITHOUT_EFFECT:
        assert changed == baseline, f"{key} has an effect now: take it off ALLOWED_WITHOUT_EFFECT"
    else:
        assert changed != baseline, (
            f"{label} ({key}) = {chosen.value!r} changes neither the children nor the status: render it, or "
            "list it in ALLOWED_WITHOUT_EFFECT with the reason"
        )


def test_every_service_setting_is_tried_on_a_service_and_on_the_defaults() -> None:
    for name, info in api.ServiceSettings.model_fields.items():
        alias = info.alias or name
        assert f"services.{alias}" in PATHS and f"defaults.{alias}" in PATHS, name


def test_the_walk_reaches_every_spec_model() -> None:
    reached = {step.owner for path in PATHS.values() for step in path}
    spec_models = {
        model
        for model in vars(api).values()
        if isinstance(model, type)
        and issubclass(model, pydantic.BaseModel)
        and model.__module__ == api.__name__
        and not model.__name__.startswith("_")
        and model
        not in (
            api.MicroserviceAppStatus,
            api.ServiceStatus,
            api.RouteStatus,
            api.JobStatus,
            api.Condition,
            api.RevisionRef,
            api.RolloutFailure,
            api.ServiceSettings,
            api.PodSettings,
        )
    }
    assert spec_models <= reached, spec_models - reached


def test_allowed_and_sampled_fields_exist() -> None:
    keys = {path[-1].key for path in PATHS.values()}
    assert set(ALLOWED_WITHOUT_EFFECT) <= keys
    assert set(SAMPLES) <= keys
