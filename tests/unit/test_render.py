"""render/: the children of an app, asserted as plain dicts."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from maestro import render
from maestro.api import models as api
from maestro.render.hpa import render as render_hpa
from maestro.render.target import Target

from .helpers import EXAMPLES, app, by_kind, example_app, svc

STABLE = {"app.kubernetes.io/instance": "shop", "app.kubernetes.io/component": "web"}


def test_names_helpers() -> None:
    assert render.child_name("shop", "web") == "shop-web"
    assert render.selector_labels("shop", "web") == STABLE


def test_one_service_renders_deployment_service_and_network_policy_only() -> None:
    children = render.render_app(app(svc("web")))
    assert [(c["kind"], c["metadata"]["name"]) for c in children] == [
        ("Deployment", "shop-web"),
        ("Service", "shop-web"),
        ("NetworkPolicy", "shop-web"),
    ]


def test_labels_selectors_and_owner() -> None:
    children = render.render_app(app(svc("web")))
    for child in children:
        meta = child["metadata"]
        assert meta["namespace"] == "prod"
        assert meta["labels"] == {
            "app.kubernetes.io/name": "web",
            "app.kubernetes.io/instance": "shop",
            "app.kubernetes.io/component": "web",
            "app.kubernetes.io/part-of": "shop",
            "app.kubernetes.io/managed-by": "maestro",
            # about the component, not its image: a policy is not rewritten by an image change
            **({} if child["kind"] == "NetworkPolicy" else {"app.kubernetes.io/version": "1.0.0"}),
        }
        assert meta["ownerReferences"] == [
            {
                "apiVersion": "maestro.dev/v1alpha1",
                "kind": "MicroserviceApp",
                "name": "shop",
                "uid": "0000-1111",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    deployment = by_kind(children, "Deployment", "shop-web")
    assert deployment["spec"]["selector"] == {"matchLabels": STABLE}
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"] == "1.0.0"
    service = by_kind(children, "Service", "shop-web")
    assert service["spec"] == {
        "type": "ClusterIP",
        "selector": STABLE,
        "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
    }


def test_no_uid_no_owner_reference_and_no_namespace() -> None:
    offline = app(svc("web"))
    offline["metadata"] = {"name": "shop"}
    for child in render.render_app(offline):
        assert "ownerReferences" not in child["metadata"]
        assert "namespace" not in child["metadata"]


def test_version_label_absent_for_digests_and_latest_images() -> None:
    assert render.image_version("nginx@sha256:abc") is None
    assert render.image_version("nginx") is None
    assert render.image_version("registry:5000/nginx") is None
    assert render.image_version("registry:5000/nginx:1.27") == "1.27"
    assert render.image_version("nginx:" + "x" * 64) is None


def test_security_defaults_and_overrides() -> None:
    children = render.render_app(app(svc("web")))
    pod = by_kind(children, "Deployment", "shop-web")["spec"]["template"]["spec"]
    assert pod["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    assert pod["containers"][0]["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }
    loose = svc(
        "web",
        securityContext={"capabilities": {"add": ["NET_BIND_SERVICE"]}, "readOnlyRootFilesystem": True},
        podSecurityContext={"runAsNonRoot": False},
    )
    pod = by_kind(render.render_app(app(loose)), "Deployment", "shop-web")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is False
    assert pod["containers"][0]["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
        "readOnlyRootFilesystem": True,
    }


def test_topology_spread_default_and_override() -> None:
    pod = by_kind(render.render_app(app(svc("web"))), "Deployment", "shop-web")["spec"]["template"]["spec"]
    assert pod["topologySpreadConstraints"] == [
        {
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": STABLE},
            "matchLabelKeys": ["pod-template-hash"],
        }
    ]
    off = svc("web", scheduling={"topologySpreadConstraints": []})
    pod = by_kind(render.render_app(app(off)), "Deployment", "shop-web")["spec"]["template"]["spec"]
    assert "topologySpreadConstraints" not in pod


def test_autoscaling_removes_replicas_and_renders_hpa() -> None:
    web = svc("web", autoscaling={"minReplicas": 2, "maxReplicas": 10, "targetCPUUtilizationPercentage": 70})
    children = render.render_app(app(web))
    assert "replicas" not in by_kind(children, "Deployment", "shop-web")["spec"]
    assert by_kind(children, "HorizontalPodAutoscaler", "shop-web") | {"metadata": None} == {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": None,
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "shop-web"},
            "minReplicas": 2,
            "maxReplicas": 10,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
                }
            ],
        },
    }


def test_hpa_defaults_to_cpu_80_and_adds_memory_and_behavior() -> None:
    hpa = render_hpa(
        Target(app(), api.ServiceSpec.model_validate(svc("web", autoscaling={"maxReplicas": 3})))
    )
    assert hpa is not None
    assert hpa["spec"]["minReplicas"] == 1
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 80
    scaling = {
        "maxReplicas": 3,
        "targetMemoryUtilizationPercentage": 75,
        "behavior": {"scaleDown": {"selectPolicy": "Min"}},
    }
    hpa = render_hpa(Target(app(), api.ServiceSpec.model_validate(svc("web", autoscaling=scaling))))
    assert hpa is not None
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["memory"]
    assert hpa["spec"]["behavior"] == {"scaleDown": {"selectPolicy": "Min"}}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, None),
        ({"replicas": 0}, None),
        ({"replicas": 1}, None),
        ({"replicas": 2}, {"maxUnavailable": 1}),
        ({"replicas": 5}, {"maxUnavailable": 1}),
        ({"autoscaling": {"minReplicas": 1, "maxReplicas": 9}}, None),
        ({"autoscaling": {"minReplicas": 3, "maxReplicas": 9}}, {"maxUnavailable": 1}),
        ({"replicas": 5, "disruptionBudget": {"enabled": False}}, None),
        ({"replicas": 5, "disruptionBudget": {"minAvailable": "60%"}}, {"minAvailable": "60%"}),
        ({"replicas": 1, "disruptionBudget": {"enabled": True}}, {"maxUnavailable": 1}),
        ({"replicas": 4, "disruptionBudget": {"maxUnavailable": 2}}, {"maxUnavailable": 2}),
    ],
)
def test_pdb_sized_from_replica_floor(fields: dict[str, Any], expected: dict[str, Any] | None) -> None:
    children = render.render_app(app(svc("web", **fields)))
    pdbs = [c for c in children if c["kind"] == "PodDisruptionBudget"]
    if expected is None:
        assert pdbs == []
    else:
        assert pdbs[0]["spec"] == {
            **expected,
            "selector": {"matchLabels": STABLE},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        }


def test_expose_types() -> None:
    def service_spec(expose: str) -> dict[str, Any] | None:
        children = render.render_app(app(svc("web", expose={"type": expose})))
        found = [c for c in children if c["kind"] == "Service"]
        return found[0]["spec"] if found else None

    assert service_spec("None") is None
    headless = service_spec("Headless")
    assert headless is not None and headless["clusterIP"] == "None" and headless["type"] == "ClusterIP"
    node_port = service_spec("NodePort")
    assert node_port is not None and node_port["type"] == "NodePort"
    no_ports = svc("worker")
    del no_ports["ports"]
    assert [c["kind"] for c in render.render_app(app(no_ports))] == ["Deployment", "NetworkPolicy"]


def test_dependency_env_and_order() -> None:
    spec_app = app(
        svc("web", dependsOn=["catalog-api"], env=[{"name": "CATALOG_API_PORT", "value": "override"}]),
        svc("catalog-api", ports=[{"name": "http", "port": 8080}]),
    )
    children = render.render_app(spec_app)
    assert [c["metadata"]["name"] for c in children if c["kind"] == "Deployment"] == [
        "shop-catalog-api",
        "shop-web",
    ]
    env = by_kind(children, "Deployment", "shop-web")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [
        {"name": "CATALOG_API_HOST", "value": "shop-catalog-api"},
        {"name": "CATALOG_API_URL", "value": "http://shop-catalog-api:8080"},
        {"name": "CATALOG_API_PORT", "value": "override"},
    ]


def test_container_ports_config_from_and_config_hash() -> None:
    web = svc(
        "web",
        ports=[
            {"name": "http", "port": 80, "targetPort": 8080},
            {"name": "dns", "port": 53, "protocol": "UDP"},
        ],
        configFrom=[{"configMap": "web-config"}, {"secret": "web-secret", "optional": True}],
        envFrom=[{"configMapRef": {"name": "extra"}}],
        podAnnotations={"team": "a"},
    )
    deployment = by_kind(
        render.render_app(app(web), config_hashes={"web": "abc123"}), "Deployment", "shop-web"
    )
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["ports"] == [
        {"name": "http", "containerPort": 8080, "protocol": "TCP"},
        {"name": "dns", "containerPort": 53, "protocol": "UDP"},
    ]
    assert container["envFrom"] == [
        {"configMapRef": {"name": "extra"}},
        {"configMapRef": {"name": "web-config"}},
        {"secretRef": {"name": "web-secret", "optional": True}},
    ]
    assert deployment["spec"]["template"]["metadata"]["annotations"] == {
        "team": "a",
        "maestro.dev/config-hash": "abc123",
    }


def test_defaults_are_merged_into_the_pod() -> None:
    spec_app = app(
        svc("web", env=[{"name": "LOG_LEVEL", "value": "debug"}]),
        defaults={
            "env": [{"name": "LOG_LEVEL", "value": "info"}],
            "resources": {"limits": {"memory": "256Mi"}},
        },
    )
    container = by_kind(render.render_app(spec_app), "Deployment", "shop-web")["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert container["env"] == [{"name": "LOG_LEVEL", "value": "debug"}]
    assert container["resources"] == {"limits": {"memory": "256Mi"}}


def test_pod_spec_patch_wins_and_merges_named_lists() -> None:
    web = svc(
        "web",
        podSpecPatch={
            "terminationGracePeriodSeconds": 5,
            "securityContext": {"runAsUser": 1000},
            "containers": [{"name": "web", "stdin": True}, {"name": "sidecar", "image": "busybox:1"}],
            "topologySpreadConstraints": None,
        },
    )
    pod = by_kind(render.render_app(app(web)), "Deployment", "shop-web")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 5
    assert pod["securityContext"]["runAsUser"] == 1000 and pod["securityContext"]["runAsNonRoot"] is True
    assert [c["name"] for c in pod["containers"]] == ["web", "sidecar"]
    assert pod["containers"][0]["stdin"] is True and pod["containers"][0]["image"].endswith(":1.0.0")
    assert "topologySpreadConstraints" not in pod


def test_rollout_settings() -> None:
    web = svc("web", rollout={"maxSurge": "50%", "maxUnavailable": 0, "progressDeadlineSeconds": 120})
    spec = by_kind(render.render_app(app(web)), "Deployment", "shop-web")["spec"]
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": "50%", "maxUnavailable": 0},
    }
    assert spec["progressDeadlineSeconds"] == 120


def test_deterministic_and_input_untouched() -> None:
    source = app(svc("web", dependsOn=["api"], replicas=3), svc("api"))
    snapshot = copy.deepcopy(source)
    assert render.render_app(source) == render.render_app(source)
    assert source == snapshot


def test_invalid_app_raises_spec_error() -> None:
    with pytest.raises(api.SpecError) as caught:
        render.render_app(app(svc("web", dependsOn=["ghost"])))
    assert caught.value.errors == [("spec.services[0].dependsOn[0]", "unknown service or job 'ghost'")]
    with pytest.raises(api.SpecError, match=r"metadata\.name"):
        render.render_app({"spec": {"services": [svc("web")]}})


def test_too_long_child_name_raises() -> None:
    with pytest.raises(api.SpecError, match="at most 63"):
        render.render_app(app(svc("s" * 50), name="a" * 20))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_render_with_restricted_pods(path: Any) -> None:
    example = example_app(path)
    assert "namespace" not in example["metadata"]
    children = render.render_app(example)
    for child in children:
        assert child["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "maestro"
        if child["kind"] == "Deployment":
            pod = child["spec"]["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True
            assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
            for container in pod["containers"]:
                assert container["securityContext"]["allowPrivilegeEscalation"] is False
                assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]


def test_endpoint() -> None:
    web = api.ServiceSpec.model_validate(svc("web", ports=[{"name": "http", "port": 8080}]))
    assert render.endpoint("shop", web, "prod") == "http://shop-web.prod.svc:8080"
    assert render.endpoint("shop", web) == "http://shop-web:8080"
    hidden = api.ServiceSpec.model_validate(svc("web", expose={"type": "None"}))
    assert render.endpoint("shop", hidden, "prod") is None
