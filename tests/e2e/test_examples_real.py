"""Every example, applied as a user would (`kubectl apply -f examples/X.yaml`), becomes Ready on real pods: each
creates the ConfigMaps and Secrets it refers to, and its images (the sample image under the examples' names,
hack/images) start, pass their probes and, for jobs, run to completion (`/app/manage migrate`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e import operator_process
from tests.e2e.cluster import TestCluster
from tests.e2e.kubectl import Kubectl
from tests.e2e.operator_process import OperatorProcess
from tests.e2e.waits import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


@pytest.fixture
def namespace(real_namespace: str) -> str:
    return real_namespace


@pytest.fixture
def op(
    request: pytest.FixtureRequest, test_cluster: object, crd: None, namespace: str, tmp_path: Path
) -> Iterator[OperatorProcess]:
    yield from operator_process.running(request, namespace, tmp_path)


def app_name(path: Path) -> str:
    (app,) = [d for d in yaml.safe_load_all(path.read_text()) if d and d["kind"] == "MicroserviceApp"]
    return str(app["metadata"]["name"])


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_becomes_ready_on_real_pods(
    kubectl: Kubectl, op: OperatorProcess, test_cluster: TestCluster, example: Path
) -> None:
    kubectl("apply", "-f", str(example))
    name = app_name(example)

    def ready() -> dict[str, Any] | None:
        app: dict[str, Any] = kubectl.get("msa", name)
        status = app.get("status") or {}
        current = status.get("observedGeneration") == app["metadata"]["generation"]
        return app if current and status.get("phase") == "Ready" else None

    app = wait_until(f"{example.name} Ready", ready, timeout=240)
    pods = [p for p in kubectl.get("pods") if p["status"].get("phase") in ("Running", "Succeeded")]
    assert pods
    if test_cluster.local:
        assert {p["spec"]["nodeName"] for p in pods} == {"real-node"}
    for job in app["status"].get("jobs") or []:
        assert job["phase"] in ("Succeeded", "Scheduled"), job
