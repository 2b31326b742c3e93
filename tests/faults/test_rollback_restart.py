"""Case: the operator SIGKILLed in the middle of an automatic rollback (issue 16). The decision is written to the
app's status before any service is returned; a restart reads it and finishes the rollback: both services back at
the last Ready revision, dependents first, told once.

The kill lands when the decision shows in the status (the test polls the app every few milliseconds; the pass
that returns the services starts 0.1 s after the decision). If it landed after the returning writes, the case
is run again with the next broken release, up to ATTEMPTS times; it fails if no kill ever lands in between.
kwok's crash-loop stage plays the broken release, so the case needs the local cluster.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.e2e.cluster import TestCluster
from tests.e2e.operator_process import OperatorProcess
from tests.e2e.waits import wait_until
from tests.faults.client import Client

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

ATTEMPTS = 3


def service(name: str, version: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "image": f"registry.example.com/{name}:{version}",
        "ports": [{"name": "http", "port": 80}],
        **fields,
    }


def shop(catalog: str, web: str, *, web_crashes: bool = False) -> dict[str, Any]:
    annotations = {"kwok.maestro.dev/fault": "crash-loop"} if web_crashes else {}
    return {
        "apiVersion": "maestro.dev/v1alpha1",
        "kind": "MicroserviceApp",
        "metadata": {"name": "shop"},
        "spec": {
            "services": [
                service("catalog", catalog),
                service("web", web, dependsOn=["catalog"], podAnnotations=annotations),
            ]
        },
    }


def image(client: Client, namespace: str, name: str) -> str:
    deployment = client.get("Deployment", namespace, f"shop-{name}")
    assert deployment is not None
    return deployment["spec"]["template"]["spec"]["containers"][0]["image"]  # type: ignore[no-any-return]


def decided(client: Client, namespace: str, generation: int, timeout: float) -> dict[str, Any]:
    """The app's failure record for that generation, as soon as it shows (polled every few milliseconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        app = client.get("MicroserviceApp", namespace, "shop") or {}
        failure = (app.get("status") or {}).get("rolloutFailure") or {}
        if failure.get("generation") == generation:
            return failure  # type: ignore[no-any-return]
        time.sleep(0.005)
    raise AssertionError(f"no rollback decided for generation {generation} within {timeout:.0f}s")


def returned(client: Client, namespace: str) -> dict[str, Any] | None:
    app = client.get("MicroserviceApp", namespace, "shop") or {}
    failure = (app.get("status") or {}).get("rolloutFailure") or {}
    return failure if failure.get("returned") is not None else None


def test_sigkill_in_the_middle_of_a_rollback_is_finished_after_the_restart(
    client: Client, namespace: str, op: OperatorProcess, test_cluster: TestCluster
) -> None:
    if not test_cluster.local:
        pytest.skip("the crash-looping release is kwok's stage (hack/cluster/cluster.py): local cluster only")
    client.create(namespace, shop("1.0.0", "1.0.0"))
    wait_until(
        "revision 1",
        lambda: ((client.get("MicroserviceApp", namespace, "shop") or {}).get("status") or {}).get(
            "lastGoodRevision"
        ),
        timeout=60,
    )
    for attempt in range(1, ATTEMPTS + 1):
        version = f"{attempt + 1}.0.0"
        app = client.get("MicroserviceApp", namespace, "shop")
        assert app is not None
        app["spec"] = shop(version, version, web_crashes=True)["spec"]
        generation = client.replace(namespace, app)["metadata"]["generation"]
        failure = decided(client, namespace, generation, timeout=90)
        op.kill()
        at_kill = (image(client, namespace, "web"), image(client, namespace, "catalog"))
        print(f"attempt {attempt}: killed at the decision {failure}; images then {at_kill}")
        op.start()
        finished = wait_until("the rollback finished", lambda: returned(client, namespace), timeout=90)
        assert (image(client, namespace, "web"), image(client, namespace, "catalog")) == (
            "registry.example.com/web:1.0.0",
            "registry.example.com/catalog:1.0.0",
        )
        assert finished["returned"] == ["web", "catalog"]
        told = sum(
            int(e.get("count") or 1)
            for e in client.list("Event", namespace)
            if e.get("reason") == "RolledBack"
        )
        if at_kill == (f"registry.example.com/web:{version}", f"registry.example.com/catalog:{version}"):
            # Killed before any service was returned: the restart did all of it, and told it once.
            assert told == attempt, f"{told} RolledBack events after {attempt} rollbacks"
            return
    pytest.fail(f"no kill landed between the decision and the rollback in {ATTEMPTS} attempts")
