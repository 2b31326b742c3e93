"""Property-based: every valid spec renders children that pass Kubernetes 1.37 OpenAPI validation offline,
and keep Maestro's invariants (labels, stable selectors, replicas vs HPA, config hash)."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from maestro import render
from maestro.api import models as api

from . import k8s_schema

dns_label = st.from_regex(r"\A[a-z]([a-z0-9]{0,6}|-[a-z0-9]{1,5})\Z")
port_name = st.from_regex(r"\A[a-z]{1,4}(-[a-z0-9]{1,3})?\Z")
QUANTITIES: dict[str | int, float] = {"100m": 0.1, "0.5": 0.5, "1": 1, 2: 2, "128Mi": 2**27, "1Gi": 2**30}
quantity = st.sampled_from(list(QUANTITIES))
label_value = st.from_regex(r"\A[a-zA-Z0-9]([a-zA-Z0-9_.-]{0,10}[a-zA-Z0-9])?\Z")
int_or_percent = st.one_of(st.integers(0, 5), st.sampled_from(["0%", "25%", "100%"]))
images = st.sampled_from(
    ["nginx", "nginx:1.27", "registry.example.com:5000/team/api:v2.1.0", "busybox@sha256:" + "a" * 64]
)


@st.composite
def autoscaling(draw: st.DrawFn, *, min_up_to: int, max_up_to: int, percent_up_to: int) -> dict[str, Any]:
    """A valid autoscaling block: minReplicas <= maxReplicas, optional utilisation targets."""
    low = draw(st.integers(1, min_up_to))
    return {
        "minReplicas": low,
        "maxReplicas": draw(st.integers(low, max(low, max_up_to))),
        **draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "targetCPUUtilizationPercentage": st.integers(1, percent_up_to),
                    "targetMemoryUtilizationPercentage": st.integers(1, percent_up_to),
                },
            )
        ),
    }


@st.composite
def ports(draw: st.DrawFn) -> list[dict[str, Any]]:
    names = draw(st.lists(port_name, max_size=3, unique=True))
    numbers = draw(st.lists(st.integers(1, 65535), min_size=len(names), max_size=len(names), unique=True))
    result = []
    for name, number in zip(names, numbers, strict=True):
        port: dict[str, Any] = {"name": name, "port": number}
        if draw(st.booleans()):
            port["targetPort"] = draw(st.integers(1, 65535))
        if draw(st.booleans()):
            port["protocol"] = draw(st.sampled_from(["TCP", "UDP", "SCTP"]))
        result.append(port)
    return result


@st.composite
def settings_fields(draw: st.DrawFn) -> dict[str, Any]:
    """Fields a service or the defaults may set (optional ones drawn independently)."""
    fields: dict[str, Any] = {}
    if draw(st.booleans()):
        fields["env"] = [
            {"name": name, "value": draw(st.text(max_size=5))}
            for name in draw(st.lists(st.from_regex(r"\A[A-Z][A-Z0-9_]{0,6}\Z"), max_size=3, unique=True))
        ]
    if draw(st.booleans()):
        # A request above its limit is invalid (the API server says so for the pod template).
        low, high = sorted((draw(quantity), draw(quantity)), key=QUANTITIES.__getitem__)
        fields["resources"] = {"requests": {"cpu": draw(quantity), "memory": low}, "limits": {"memory": high}}
    if draw(st.booleans()):
        fields["configFrom"] = [
            draw(
                st.sampled_from(
                    [{"configMap": "cfg"}, {"secret": "sec"}, {"configMap": "opt", "optional": True}]
                )
            )
        ]
    if draw(st.booleans()):
        surge = draw(int_or_percent)
        fields["rollout"] = {
            "maxSurge": surge,
            # Not both 0: a Deployment cannot roll with neither surge nor unavailability.
            "maxUnavailable": draw(int_or_percent.filter(lambda u: str(u) not in ("0", "0%")))
            if str(surge) in ("0", "0%")
            else draw(int_or_percent),
            "progressDeadlineSeconds": draw(st.integers(1, 3600)),
        }
    if draw(st.booleans()):
        fields["disruptionBudget"] = draw(
            st.sampled_from(
                [{"enabled": False}, {"enabled": True}, {"minAvailable": 1}, {"maxUnavailable": "50%"}]
            )
        )
    if draw(st.booleans()):
        fields["scheduling"] = {
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
        }
    if draw(st.booleans()):
        fields["podLabels"] = {"team": draw(label_value)}
        fields["podAnnotations"] = {"example.com/note": draw(st.text(max_size=10))}
    if draw(st.booleans()):
        fields["volumes"] = [{"name": "scratch", "emptyDir": {}}]
        fields["volumeMounts"] = [
            {"name": "scratch", "mountPath": "/scratch", "readOnly": draw(st.booleans())}
        ]
    if draw(st.booleans()):
        fields["readinessProbe"] = {"tcpSocket": {"port": 8080}, "periodSeconds": draw(st.integers(1, 60))}
    if draw(st.booleans()):
        fields["securityContext"] = {"readOnlyRootFilesystem": True}
        fields["podSecurityContext"] = {"runAsUser": draw(st.integers(1, 65535))}
    if draw(st.booleans()):
        fields["imagePullPolicy"] = draw(st.sampled_from(["Always", "IfNotPresent", "Never"]))
    return fields


@st.composite
def apps(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(dns_label, min_size=1, max_size=4, unique=True))
    services = []
    for index, name in enumerate(names):
        service: dict[str, Any] = {"name": name, "image": draw(images), **draw(settings_fields())}
        service["ports"] = draw(ports())
        scaling = draw(st.sampled_from(["fixed", "hpa", "none"]))
        if scaling == "fixed":
            service["replicas"] = draw(st.integers(0, 5))
        elif scaling == "hpa":
            service["autoscaling"] = draw(autoscaling(min_up_to=5, max_up_to=20, percent_up_to=100))
        if draw(st.booleans()):
            service["expose"] = {
                "type": draw(st.sampled_from(["ClusterIP", "NodePort", "LoadBalancer", "Headless", "None"]))
            }
        if index and draw(st.booleans()):  # depend only on earlier services: never a cycle
            service["dependsOn"] = draw(st.lists(st.sampled_from(names[:index]), min_size=1, unique=True))
        if draw(st.booleans()):
            service["args"] = ["--port", "8080"]
        services.append(service)
    spec: dict[str, Any] = {"services": services}
    pod_keys = {info.alias or field for field, info in api.PodSettings.model_fields.items()}
    jobs: list[dict[str, Any]] = []
    for name in draw(st.lists(dns_label.filter(lambda n: n not in names), max_size=2, unique=True)):
        drawn = draw(settings_fields())
        job: dict[str, Any] = {"name": name, "image": draw(images)}
        job |= {key: value for key, value in drawn.items() if key in pod_keys}
        runs_once = [j["name"] for j in jobs if "schedule" not in j]
        if draw(st.booleans()):  # services and the runs before it: never a cycle
            job["dependsOn"] = draw(st.lists(st.sampled_from(names + runs_once), min_size=1, unique=True))
        if draw(st.booleans()):
            job["schedule"] = draw(st.sampled_from(["*/5 * * * *", "0 3 * * mon-fri", "@daily"]))
            job["concurrencyPolicy"] = draw(st.sampled_from(["Allow", "Forbid", "Replace"]))
        if draw(st.booleans()):
            job["backoffLimit"] = draw(st.integers(0, 6))
            job["activeDeadlineSeconds"] = draw(st.integers(1, 3600))
        jobs.append(job)
    if jobs:
        spec["jobs"] = jobs
        runs_once = [j["name"] for j in jobs if "schedule" not in j]
        last = services[-1]
        if runs_once and draw(st.booleans()) and not any(j.get("dependsOn") for j in jobs):
            last["dependsOn"] = sorted({*last.get("dependsOn", []), runs_once[0]})
    if draw(st.booleans()):
        spec["defaults"] = draw(settings_fields())
    metadata: dict[str, Any] = {"name": draw(dns_label)}
    if draw(st.booleans()):
        metadata |= {"namespace": "prod", "uid": "6f1c1a9e-0000-4000-8000-000000000001"}
    # Defaults and services are drawn apart; merged, they may break a rule that needs both (a default
    # request above a service's limit). Those are not valid specs.
    try:
        api.validate_app(metadata["name"], spec)
    except api.SpecError:
        assume(False)
    return {"apiVersion": api.API_VERSION, "kind": api.KIND, "metadata": metadata, "spec": spec}


def test_offline_schema_matches_kubernetes_validate() -> None:
    """Our cached validator agrees with the package's own entry point on a rendered Deployment."""
    deployment = render.render_app(
        {"metadata": {"name": "a"}, "spec": {"services": [{"name": "b", "image": "nginx:1"}]}}
    )[0]
    assert kubernetes_validate.validate(deployment, k8s_schema.VERSION, strict=True) == "1.37"
    k8s_schema.validate(deployment)
    deployment["spec"]["template"]["spec"]["containers"][0]["bogus"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        k8s_schema.validate(deployment)


RESTRICTED_VOLUMES = {"configMap", "secret", "emptyDir", "projected", "downwardAPI", "persistentVolumeClaim"}


def restricted_pod(pod: dict[str, Any]) -> None:
    """The checks of the `restricted` Pod Security Standard that rendering decides."""
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    for container in pod["containers"]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert not context.get("privileged")
        assert all("hostPort" not in port for port in container.get("ports", []))
    for volume in pod.get("volumes", []):
        assert set(volume) - {"name"} <= RESTRICTED_VOLUMES


PROPERTY_SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(apps())
def test_rendered_children_pass_kubernetes_openapi_validation(app: dict[str, Any]) -> None:
    for child in render.render_app(app):
        try:
            k8s_schema.validate(child)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{child['kind']} {child['metadata']['name']}: {exc.message} at {list(exc.path)}")


@PROPERTY_SETTINGS
@given(apps(), st.text(alphabet="0123456789abcdef", min_size=8, max_size=8))
def test_rendered_children_keep_maestro_invariants(app: dict[str, Any], digest: str) -> None:
    name = app["metadata"]["name"]
    spec = api.validate_app(name, app["spec"])
    merged = {s.name: api.effective_service(spec.defaults, s) for s in spec.services}
    children = render.render_app(app, config_hashes={n: digest for n in merged})
    assert render.render_app(app, config_hashes={n: digest for n in merged}) == children
    deployments = {c["metadata"]["name"]: c for c in children if c["kind"] == "Deployment"}
    assert set(deployments) == {render.child_name(name, n) for n in merged}
    for child in children:
        labels = child["metadata"]["labels"]
        component = labels["app.kubernetes.io/component"]
        assert labels["app.kubernetes.io/instance"] == name
        assert labels["app.kubernetes.io/managed-by"] == "maestro"
        if child["kind"] == "Job":  # a run: <app>-<job>-<run key>
            key = labels[render.RUN_KEY_LABEL]
            assert child["metadata"]["name"] == render.run_name(name, component, key)
            assert key == render.run_key(child["spec"])
            restricted_pod(child["spec"]["template"]["spec"])
        else:
            assert child["metadata"]["name"] == render.child_name(name, component)
        if child["kind"] == "CronJob":
            restricted_pod(child["spec"]["jobTemplate"]["spec"]["template"]["spec"])
        assert len(child["metadata"]["name"]) <= 63
        assert ("ownerReferences" in child["metadata"]) == ("uid" in app["metadata"])
    for service_name, service in merged.items():
        deployment = deployments[render.child_name(name, service_name)]
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector == render.selector_labels(name, service_name)
        template = deployment["spec"]["template"]
        assert selector.items() <= template["metadata"]["labels"].items()
        assert ("replicas" in deployment["spec"]) == (service.autoscaling is None)
        assert template["metadata"]["annotations"]["maestro.dev/config-hash"] == digest
        restricted_pod(template["spec"])
    # Dependencies come before their dependents.
    order = list(dict.fromkeys(c["metadata"]["labels"]["app.kubernetes.io/component"] for c in children))
    for component in [*merged.values(), *render.effective_jobs(spec)]:
        for dep in component.depends_on or []:
            assert order.index(dep) < order.index(component.name)
