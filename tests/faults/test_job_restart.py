"""Case: the operator SIGKILLed while a job's run is going, and again once it has succeeded. The run is neither
lost (its completion lets api roll out after the restart) nor run again (the same Job, by uid; no second
run, whatever the resume pass and the safety passes find). The Job of the current run is the record that it ran:
it is kept, so a restart, a fail-over or a safety pass finds it.

On the local cluster the run lasts 8 s (kwok's duration annotation); on a real node its command sleeps as long.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.e2e.operator_process import OperatorProcess
from tests.e2e.waits import wait_until
from tests.faults import invariants
from tests.faults.client import Client

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

SECONDS = 8


def migrating_app(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "maestro.dev/v1alpha1",
        "kind": "MicroserviceApp",
        "metadata": {"name": name},
        "spec": {
            "services": [
                {"name": "db", "image": "registry.example.com/db:1", "ports": [{"name": "pg", "port": 5432}]},
                {
                    "name": "api",
                    "image": "registry.example.com/api:1",
                    "dependsOn": ["db", "migrate"],
                    "ports": [{"name": "http", "port": 80}],
                },
            ],
            "jobs": [
                {
                    "name": "migrate",
                    "image": "busybox:1.36",
                    "command": ["sh", "-c", f"sleep {SECONDS}"],
                    "dependsOn": ["db"],
                    "podAnnotations": {"kwok.maestro.dev/duration": f"{SECONDS}s"},
                    "podSecurityContext": {"runAsUser": 65534},
                }
            ],
        },
    }


def runs(client: Client, namespace: str) -> list[dict[str, Any]]:
    return client.list("Job", namespace, f"{invariants.MANAGED},app.kubernetes.io/component=migrate")


def active(client: Client, namespace: str) -> dict[str, Any] | None:
    found = runs(client, namespace)
    return found[0] if len(found) == 1 and (found[0].get("status") or {}).get("active") else None


def test_sigkill_while_a_job_runs_and_after_it_succeeded(
    client: Client, namespace: str, op: OperatorProcess
) -> None:
    client.create(namespace, migrating_app("blog"))
    run = wait_until("the migration running", lambda: active(client, namespace), timeout=60)
    uid = run["metadata"]["uid"]
    op.kill()
    assert client.get("Deployment", namespace, "blog-api") is None
    time.sleep(2)
    op.start()  # mid-run: the resume pass finds the run going, and waits for it

    invariants.wait_converged(client, namespace, timeout=120, what="after the kill mid-run")
    (done,) = runs(client, namespace)
    assert done["metadata"]["uid"] == uid, "the run was replaced"
    api = client.get("Deployment", namespace, "blog-api")
    assert api is not None and api["metadata"]["creationTimestamp"] >= done["status"]["completionTime"]

    # Killed again once it succeeded: its settled mark (settledmark.py) spares it any pass at the start.
    op.kill()
    op.extra_env["MAESTRO_SAFETY_INTERVAL"] = "2"
    logged = len(op.log())
    op.start()
    wait_until(
        "the start to skip it", lambda: "/blog: settled as its mark says" in op.log()[logged:], timeout=30
    )
    # And once more without the mark (as after an upgrade): the resume pass and safety passes run nothing again.
    passes = op.passes()
    op.kill()
    path = client.path("MicroserviceApp", namespace, "blog") + "/status"
    client.call("PATCH", path, {"status": {"settledMark": None}}, content_type="application/merge-patch+json")
    op.start()
    wait_until("the resume pass", lambda: op.passes() > passes, timeout=30)
    time.sleep(5)  # and two safety passes
    assert [r["metadata"]["uid"] for r in runs(client, namespace)] == [uid]
    invariants.hold_converged(client, namespace, seconds=3, what="after the kill once it succeeded")
