"""api/models.py: parsing with field paths, the Python mirror of the CRD's rules, name limits, defaults merging."""

from __future__ import annotations

from typing import Any

import pytest

from maestro.api import models as api

from .helpers import svc


def errors_of(spec: Any, name: str = "shop") -> list[str]:
    with pytest.raises(api.SpecError) as caught:
        api.validate_app(name, spec)
    return caught.value.lines()


def lines_of(spec: Any, name: str = "shop") -> list[str]:
    """The error lines, or [] when the spec is valid."""
    try:
        api.validate_app(name, spec)
    except api.SpecError as error:
        return error.lines()
    return []


def test_valid_spec_parses_with_camel_case() -> None:
    spec = api.parse_app_spec(
        {
            "services": [
                svc(
                    "web",
                    dependsOn=["api"],
                    autoscaling={"maxReplicas": 4, "targetCPUUtilizationPercentage": 50},
                ),
                svc("api"),
            ]
        }
    )
    assert spec.services[0].depends_on == ["api"]
    assert spec.services[0].autoscaling is not None
    assert spec.services[0].autoscaling.target_cpu_utilization_percentage == 50
    assert spec.services[1].ports is not None and spec.services[1].ports[0].protocol == "TCP"


@pytest.mark.parametrize(
    ("service", "line"),
    [
        (
            svc("web", ports=[{"name": "http", "port": 70000}]),
            "spec.services[0].ports[0].port: must be between 1 and 65535",
        ),
        (
            svc("web", ports=[{"name": "http", "port": 0}]),
            "spec.services[0].ports[0].port: must be between 1 and 65535",
        ),
        ({"name": "web"}, "spec.services[0].image: required value"),
        (svc("web", replica=2), "spec.services[0].replica: unknown field"),
        (svc("Web"), "spec.services[0].name: must match ^[a-z]([-a-z0-9]*[a-z0-9])?$"),
        (svc("web", replicas=-1), "spec.services[0].replicas: must be at least 0"),
        (svc("web", expose={"type": "Public"}), "spec.services[0].expose.type: must be one of"),
    ],
)
def test_schema_errors_name_the_field(service: dict[str, Any], line: str) -> None:
    assert any(error.startswith(line) for error in errors_of({"services": [service]})), errors_of(
        {"services": [service]}
    )


@pytest.mark.parametrize(
    ("services", "line"),
    [
        ([svc("web"), svc("web")], "spec.services[1].name: duplicate service name 'web'"),
        (
            [svc("web", ports=[{"name": "http", "port": 80}, {"name": "http", "port": 81}])],
            "spec.services[0].ports[1].name: duplicate port name 'http'",
        ),
        (
            [svc("web", ports=[{"name": "http", "port": 80}, {"name": "alt", "port": 80}])],
            "spec.services[0].ports[1].port: duplicate port number 80",
        ),
        (
            [
                svc(
                    "web",
                    ports=[{"name": "http", "port": 80, "targetPort": 8080}, {"name": "alt", "port": 8080}],
                )
            ],
            "spec.services[0].ports[1].targetPort: duplicate container port 8080/TCP",
        ),
        (
            [svc("web", autoscaling={"minReplicas": 5, "maxReplicas": 2})],
            "spec.services[0].autoscaling: minReplicas must be less than or equal to maxReplicas",
        ),
        ([svc("web", dependsOn=["ghost"])], "spec.services[0].dependsOn[0]: unknown service or job 'ghost'"),
        ([svc("web", dependsOn=["web"])], "spec.services[0].dependsOn: a service cannot depend on itself"),
        (
            [svc("a", dependsOn=["b"]), svc("b", dependsOn=["c"]), svc("c", dependsOn=["a"])],
            "spec.services[0].dependsOn: dependency cycle: a -> b -> c -> a",
        ),
        (
            [svc("web", configFrom=[{"configMap": "x", "secret": "y"}])],
            "spec.services[0].configFrom[0]: set exactly one of configMap or secret",
        ),
        (
            [svc("web", configFrom=[{}])],
            "spec.services[0].configFrom[0]: set exactly one of configMap or secret",
        ),
        (
            [svc("web", env=[{"name": "A", "value": "1", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}])],
            "spec.services[0].env[0]: set value or valueFrom, not both",
        ),
        (
            [svc("web", disruptionBudget={"minAvailable": 1, "maxUnavailable": 1})],
            "spec.services[0].disruptionBudget: set minAvailable or maxUnavailable, not both",
        ),
        (
            [svc("web", replicas=2, autoscaling={"maxReplicas": 3})],
            "spec.services[0]: set replicas or autoscaling, not both",
        ),
    ],
)
def test_rule_errors_name_the_field(services: list[dict[str, Any]], line: str) -> None:
    assert line in errors_of({"services": services})


def test_missing_or_empty_spec() -> None:
    assert errors_of(None) == ["spec: required value (an object with a services list)"]
    assert errors_of({})[0].startswith("spec.services: required value")
    assert errors_of({"services": []})[0].startswith("spec.services:")


def test_every_error_is_reported_at_once() -> None:
    lines = errors_of({"services": [svc("web", dependsOn=["x"]), svc("api", dependsOn=["y"])]})
    assert len(lines) == 2


def test_child_name_length_limit_needs_the_app_name() -> None:
    service = "s" * 40
    api.validate_app("a" * 22, {"services": [svc(service)]})  # 22 + 1 + 40 = 63: fits
    lines = errors_of({"services": [svc(service)]}, name="a" * 23)
    assert lines[0].startswith("spec.services[0].name: child name")
    assert "64 characters" in lines[0]


def test_app_name_must_start_with_a_letter_for_service_names() -> None:
    assert errors_of({"services": [svc("web")]}, name="1shop")[0].startswith("metadata.name: child name")


def test_autoscaling_needs_max_replicas_after_merge() -> None:
    lines = errors_of({"services": [svc("web", autoscaling={"minReplicas": 2})]})
    assert lines == ["spec.services[0].autoscaling.maxReplicas: required value"]
    api.validate_app(
        "shop",
        {
            "defaults": {"autoscaling": {"maxReplicas": 5}},
            "services": [svc("web", autoscaling={"minReplicas": 2})],
        },
    )


def test_merged_min_over_max_is_reported() -> None:
    spec = {
        "defaults": {"autoscaling": {"maxReplicas": 2}},
        "services": [svc("web", autoscaling={"minReplicas": 3})],
    }
    assert errors_of(spec) == [
        "spec.services[0].autoscaling: minReplicas must be less than or equal to maxReplicas "
        "(after merging spec.defaults)"
    ]


# The API server rejects these in the Deployment; found by tests/faults/test_fuzz.py as apps that went Invalid
# (ChildRejected) half-way, after other services' children were created.
@pytest.mark.parametrize(
    ("rollout", "rejected"),
    [
        ({"maxSurge": 0, "maxUnavailable": 0}, True),
        ({"maxSurge": "0%", "maxUnavailable": 0}, True),
        ({"maxSurge": 0, "maxUnavailable": "0%"}, True),
        ({"maxSurge": 0}, False),  # maxUnavailable defaults to 25%
        ({"maxSurge": 0, "maxUnavailable": 1}, False),
        ({"maxSurge": "10%", "maxUnavailable": "0%"}, False),
    ],
)
def test_rollout_cannot_have_zero_surge_and_zero_unavailable(rollout: dict[str, Any], rejected: bool) -> None:
    lines = lines_of({"services": [svc("web", rollout=rollout)]})
    assert lines == (
        ["spec.services[0].rollout: maxSurge and maxUnavailable may not both be 0"] if rejected else []
    )


def test_zero_surge_and_unavailable_after_merge() -> None:
    spec = {
        "defaults": {"rollout": {"maxSurge": 0}},
        "services": [svc("web", rollout={"maxUnavailable": "0%"})],
    }
    assert errors_of(spec) == [
        "spec.services[0].rollout: maxSurge and maxUnavailable may not both be 0 (after merging spec.defaults)"
    ]


def test_volume_mounts_need_their_volume_after_merge() -> None:
    mount = {"name": "scratch", "mountPath": "/scratch"}
    assert lines_of({"services": [svc("web", volumeMounts=[mount])]}) == [
        "spec.services[0].volumeMounts[0].name: no volume named 'scratch' in volumes"
    ]
    volume = {"name": "scratch", "emptyDir": {}}
    assert lines_of({"defaults": {"volumes": [volume]}, "services": [svc("web", volumeMounts=[mount])]}) == []
    assert (
        lines_of({"services": [svc("web", volumeMounts=[mount], podSpecPatch={"volumes": [volume]})]}) == []
    )


@pytest.mark.parametrize(
    ("requests", "limits", "rejected"),
    [
        ({"memory": "1Gi"}, {"memory": "128Mi"}, True),
        ({"memory": "128Mi"}, {"memory": "1Gi"}, False),
        ({"memory": "1G"}, {"memory": "1Gi"}, False),  # 10^9 <= 2^30
        ({"memory": "1.1Gi"}, {"memory": "1Gi"}, True),
        ({"cpu": "500m"}, {"cpu": "0.5"}, False),
        ({"cpu": 2}, {"cpu": "1500m"}, True),
        ({"cpu": "1e3"}, {"cpu": "2k"}, False),
        ({"cpu": "2"}, {"memory": "1Mi"}, False),  # different resources
        ({"cpu": "lots"}, {"cpu": "1"}, False),  # not a quantity: the API server judges it
    ],
)
def test_requests_may_not_exceed_limits(
    requests: dict[str, Any], limits: dict[str, Any], rejected: bool
) -> None:
    lines = lines_of({"services": [svc("web", resources={"requests": requests, "limits": limits})]})
    assert bool(lines) == rejected, lines
    assert all(".resources.requests." in line and "less than or equal to the limit" in line for line in lines)


# ---------------------------------------------------------------------------------------------------- merge


def merged(defaults: dict[str, Any], service: dict[str, Any]) -> dict[str, Any]:
    spec = api.parse_app_spec({"defaults": defaults, "services": [service]})
    result = api.effective_service(spec.defaults, spec.services[0])
    return result.model_dump(by_alias=True, exclude_none=True)


def test_service_wins_and_maps_merge_per_key() -> None:
    result = merged(
        {"resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}},
        svc("web", resources={"requests": {"cpu": "500m"}}),
    )
    assert result["resources"] == {
        "requests": {"cpu": "500m", "memory": "128Mi"},
        "limits": {"memory": "256Mi"},
    }


def test_env_merges_by_name_service_wins_order_kept() -> None:
    result = merged(
        {"env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "TZ", "value": "UTC"}]},
        svc("web", env=[{"name": "LOG_LEVEL", "value": "debug"}, {"name": "PORT", "value": "8080"}]),
    )
    assert result["env"] == [
        {"name": "LOG_LEVEL", "value": "debug"},
        {"name": "TZ", "value": "UTC"},
        {"name": "PORT", "value": "8080"},
    ]


def test_lists_and_kubernetes_objects_are_replaced() -> None:
    result = merged(
        {
            "configFrom": [{"configMap": "common"}],
            "readinessProbe": {"httpGet": {"path": "/", "port": "http"}},
            "scheduling": {"tolerations": [{"key": "a"}], "nodeSelector": {"zone": "a", "os": "linux"}},
        },
        svc(
            "web",
            configFrom=[{"secret": "own"}],
            readinessProbe={"exec": {"command": ["true"]}},
            scheduling={"tolerations": [{"key": "b"}], "nodeSelector": {"zone": "b"}},
        ),
    )
    assert result["configFrom"] == [{"secret": "own"}]
    assert result["readinessProbe"] == {"exec": {"command": ["true"]}}
    assert result["scheduling"] == {
        "tolerations": [{"key": "b"}],
        "nodeSelector": {"zone": "b", "os": "linux"},
    }


def test_volume_mounts_merge_by_mount_path() -> None:
    result = merged(
        {"volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, {"name": "a", "mountPath": "/a"}]},
        svc("web", volumeMounts=[{"name": "b", "mountPath": "/a"}]),
    )
    assert result["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}, {"name": "b", "mountPath": "/a"}]


def test_service_replicas_or_autoscaling_replace_the_defaults_pair() -> None:
    assert "replicas" not in merged({"replicas": 3}, svc("web", autoscaling={"maxReplicas": 5}))
    assert "autoscaling" not in merged({"autoscaling": {"maxReplicas": 5}}, svc("web", replicas=1))
    assert merged({"replicas": 3}, svc("web"))["replicas"] == 3


def test_no_defaults_returns_the_service() -> None:
    spec = api.parse_app_spec({"services": [svc("web")]})
    assert api.effective_service(None, spec.services[0]) is spec.services[0]


def test_status_model_round_trips_camel_case() -> None:
    status = api.MicroserviceAppStatus(
        observed_generation=3,
        phase="Ready",
        ready_services="1/1",
        conditions=[
            api.Condition(
                type="Ready",
                status="True",
                reason="AllServicesReady",
                last_transition_time="2026-01-01T00:00:00Z",
            )
        ],
        services=[api.ServiceStatus(name="web", phase="Ready", replicas=2, ready_replicas=2, waiting_for=[])],
    )
    dumped = status.model_dump(by_alias=True, exclude_none=True)
    assert dumped["readyServices"] == "1/1"
    assert dumped["conditions"][0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert dumped["services"][0]["readyReplicas"] == 2
    assert api.MicroserviceAppStatus.model_validate(dumped) == status


def test_disruption_budget_is_replaced_not_merged() -> None:
    result = merged(
        {"disruptionBudget": {"maxUnavailable": "50%"}}, svc("web", disruptionBudget={"minAvailable": 1})
    )
    assert result["disruptionBudget"] == {"minAvailable": 1}


def test_int_or_string_errors_are_one_line() -> None:
    lines = errors_of(
        {"services": [svc("web", rollout={"maxSurge": 1.5}, resources={"requests": {"cpu": [1]}})]}
    )
    assert lines == [
        "spec.services[0].resources.requests.cpu: must be an integer or a string (e.g. 2, 25% or 128Mi)",
        "spec.services[0].rollout.maxSurge: must be an integer or a string (e.g. 2, 25% or 128Mi)",
    ]
