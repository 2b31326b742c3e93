"""Jobs with real containers: the migration of db -> migrate -> api runs on the local cluster's real node (the
`real_namespace` fixture), as the sample image's task mode (`EXIT_AFTER_SECONDS`, `EXIT_CODE`, `EXIT_MESSAGE`,
docs/images.md). tests/e2e/test_jobs.py covers the same gating on kwok's simulated pods, in more cases.

Here the run's duration, its exit code and the termination message the operator reports are the container's own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import operator_process
from tests.e2e.kubectl import Kubectl
from tests.e2e.operator_process import OperatorProcess
from tests.e2e.test_jobs import apply_time, events, msa, part, runs, wait_phase
from tests.e2e.waits import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

IMAGE = (
    "registry.example.com/shop/catalog:1.4.2"  # one of the default names: the sample image (images.py names)
)


@pytest.fixture
def namespace(real_namespace: str) -> str:
    return real_namespace


@pytest.fixture
def op(
    request: pytest.FixtureRequest, test_cluster: object, crd: None, namespace: str, tmp_path: Path
) -> Iterator[OperatorProcess]:
    yield from operator_process.running(request, namespace, tmp_path)


def service(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "image": IMAGE,
        "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}},
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
    } | fields


def migration(seconds: int, step: str, *, exit_code: int = 0, message: str = "") -> dict[str, Any]:
    """The sample image as a task: it serves for `seconds`, then exits with `exit_code` and `message`."""
    env = [
        {"name": "EXIT_AFTER_SECONDS", "value": str(seconds)},
        {"name": "EXIT_CODE", "value": str(exit_code)},
        {"name": "STEP", "value": step},
    ]
    if message:
        env.append({"name": "EXIT_MESSAGE", "value": message})
    return {
        "name": "migrate",
        "image": IMAGE,
        "env": env,
        "dependsOn": ["db"],
        "backoffLimit": 0,
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
    }


def chain(**migrate: Any) -> dict[str, Any]:
    return msa(service("db"), service("api", dependsOn=["db", "migrate"]), jobs=[migration(**migrate)])


def test_a_real_migration_gates_api_and_its_failure_is_reported(
    kubectl: Kubectl, op: OperatorProcess
) -> None:
    kubectl.apply(chain(seconds=5, step="1"))
    ready = wait_phase(kubectl, "Ready", timeout=180)
    (first,) = runs(kubectl)
    assert part(ready, "jobs", "migrate")["phase"] == "Succeeded"
    pods = kubectl.get("pods", selector=f"job-name={first['metadata']['name']}")
    assert pods and all(p["spec"]["nodeName"] == "real-node" for p in pods), (
        "the run's pod ran on the real node"
    )
    terminated = pods[0]["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 0 and "done after 5s" in terminated.get("message", "")
    started, finished = first["status"]["startTime"], first["status"]["completionTime"]
    assert finished > started, "the container really ran for its seconds"
    # api's pods were created only after the real run had ended.
    assert apply_time(kubectl, "deployment", "blog-api") >= finished

    # A release whose migration fails for real: exit code 3 and the container's own termination message.
    message = 'relation "posts" already exists'
    kubectl.apply(chain(seconds=2, step="2", exit_code=3, message=message))
    degraded = wait_phase(kubectl, "Degraded", timeout=180)
    migrate = part(degraded, "jobs", "migrate")
    assert migrate["phase"] == "Failed" and f"exit code 3 (Error): {message}" in migrate["message"]
    (condition,) = [c for c in degraded["status"]["conditions"] if c["type"] == "Degraded"]
    assert condition["reason"] == "JobFailed" and message in condition["message"]
    # api's rendering did not change in this release: the failed run holds nothing back, api keeps serving.
    assert part(degraded, "services", "api")["phase"] == "Ready"
    wait_until("a JobFailed event", lambda: events(kubectl, "JobFailed"))
    assert len(runs(kubectl)) == 2
