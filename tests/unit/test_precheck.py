"""Which services are left to the API server's dry run (precheck.py); the claim that the rest is checked
by the models is held against a real API server in tests/e2e/test_precheck.py."""

from __future__ import annotations

from maestro.api import models as api
from maestro.controller import precheck


def test_fields_the_models_do_not_check_are_left_to_the_api_server() -> None:
    base = {"name": "web", "image": "web:1"}
    unchecked = {
        "readinessProbe": {"tcpSocket": {"port": 80}},
        "podSpecPatch": {"hostname": "x"},
        "scheduling": {"tolerations": [{"operator": "Exists"}]},
        "podAnnotations": {"note": "x"},
        "podLabels": {"team": "a"},
        "volumes": [{"name": "v", "emptyDir": {}}],
        "env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "resources": {"limits": {"nvidia.com/gpu": 1}},
        "autoscaling": {"maxReplicas": 3, "behavior": {"scaleDown": {}}},
        "rollout": {"maxSurge": "25 %"},
        "disruptionBudget": {"minAvailable": "150%"},
    }
    for field, value in unchecked.items():
        service = api.ServiceSpec.model_validate({**base, field: value})
        assert precheck.needs_dry_run(service), field
    for field, value in {
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}},
        "rollout": {"maxSurge": "25%", "maxUnavailable": 1},
        "env": [{"name": "A", "value": "1"}],
        "ports": [{"name": "http", "port": 80}],
    }.items():
        service = api.ServiceSpec.model_validate({**base, field: value})
        assert not precheck.needs_dry_run(service), (field, precheck.unchecked_fields(service))
    assert precheck.needs_dry_run(api.ServiceSpec.model_validate({**base, "image": " web:1"}))
