"""Operator bugs the fault cases found, each pinned by one small app (see docs/reliability.md)."""

from __future__ import annotations

import time

import pytest

from tests.e2e.operator_process import OperatorProcess
from tests.faults import invariants
from tests.faults.client import CHILD_KINDS, Client
from tests.faults.fleet import fleet_app

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def test_rules_of_the_deployment_make_the_app_invalid_before_anything_is_created(
    client: Client, namespace: str, op: OperatorProcess
) -> None:
    # Both were Invalid only as ChildRejected, after `api`'s children had been created.
    zero_rollout = fleet_app("zero")
    zero_rollout["spec"]["services"][1]["rollout"] = {"maxSurge": 0, "maxUnavailable": "0%"}
    over_limit = fleet_app("over")
    over_limit["spec"]["services"][1]["resources"] = {
        "requests": {"memory": "1Gi"},
        "limits": {"memory": "128Mi"},
    }
    for app in (zero_rollout, over_limit):
        client.create(namespace, app)
    invariants.wait_converged(client, namespace, timeout=120)
    for name in ("zero", "over"):
        app = client.get("MicroserviceApp", namespace, name)
        assert app is not None
        ready = next(c for c in app["status"]["conditions"] if c["type"] == "Ready")
        assert (app["status"]["phase"], ready["reason"]) == ("Invalid", "InvalidSpec")
        assert "spec.services[1]" in ready["message"]
    time.sleep(2)
    assert not [c for kind in CHILD_KINDS for c in client.list(kind, namespace, invariants.MANAGED)]


def test_characters_beyond_the_basic_plane_reach_the_children(
    client: Client, namespace: str, op: OperatorProcess
) -> None:
    # The apply patch is YAML to the API server; JSON's surrogate-pair escape of an emoji is not valid YAML.
    app = fleet_app("emoji")
    app["spec"]["services"][0]["env"] = [{"name": "GREETING", "value": "hi 👋 𝄞 \x85\x9f\u2028 end"}]
    client.create(namespace, app)
    invariants.wait_converged(client, namespace, timeout=120)
    deployment = client.get("Deployment", namespace, "emoji-api")
    assert deployment is not None
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "GREETING", "value": "hi 👋 𝄞 \x85\x9f\u2028 end"} in env


def test_a_child_the_api_server_refuses_makes_the_app_invalid_before_anything_is_created(
    client: Client, namespace: str, op: OperatorProcess
) -> None:
    # A probe is free-form (passed through): only the API server knows it needs a handler. `api` came first
    # and was created, then the app went Invalid (ChildRejected) with api's children left in place.
    # A wrong type there was a 500 from server-side apply: retried for ever, the app never got a status; so
    # was a malformed quantity in podSpecPatch (another 500: "unable to convert unstructured object").
    no_handler, wrong_type, bad_quantity = fleet_app("probe"), fleet_app("typed"), fleet_app("qty")
    no_handler["spec"]["services"][1]["readinessProbe"] = {"periodSeconds": 5}
    wrong_type["spec"]["services"][1]["readinessProbe"] = {"tcpSocket": True}
    bad_quantity["spec"]["services"][1]["podSpecPatch"] = {
        "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "lots"}}]
    }
    for app in (no_handler, wrong_type, bad_quantity):
        client.create(namespace, app)
    invariants.wait_converged(client, namespace, timeout=120)
    for name, field in (("probe", "readinessProbe"), ("typed", "readinessProbe"), ("qty", "quantities")):
        stored = client.get("MicroserviceApp", namespace, name)
        assert stored is not None
        ready = next(c for c in stored["status"]["conditions"] if c["type"] == "Ready")
        assert (stored["status"]["phase"], ready["reason"]) == ("Invalid", "ChildRejected")
        assert field in ready["message"]
    assert not [c for kind in CHILD_KINDS for c in client.list(kind, namespace, invariants.MANAGED)]
