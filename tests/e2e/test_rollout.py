"""Failed rollouts on a real API server, through the real Deployment controller (issue 16, failure detection):
a release whose new pods crash-loop, cannot pull their image or never get ready is reported as failed, with its
cause: the first two long before the Deployment's progress deadline, from the new ReplicaSet's pods.

On the local cluster kwok plays the kubelet: the pods of a template annotated `kwok.maestro.dev/fault` crash-loop,
stay in ImagePullBackOff or never get ready (hack/cluster/cluster.py's stages, set here through the service's
podAnnotations). They need the local cluster's simulated nodes, so the tests are skipped elsewhere.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import operator_process
from tests.e2e.kubectl import Kubectl
from tests.e2e.operator_process import OperatorProcess
from tests.e2e.test_operator import condition, events, msa, svc, wait_ready
from tests.e2e.waits import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

FAULT = "kwok.maestro.dev/fault"


@pytest.fixture
def op(
    request: pytest.FixtureRequest, test_cluster: Any, crd: None, namespace: str, tmp_path: Path
) -> Iterator[OperatorProcess]:
    if not test_cluster.local:
        pytest.skip("the faulty pods are kwok's stages (hack/cluster/cluster.py): local cluster only")
    yield from operator_process.running(request, namespace, tmp_path)


def faulty(name: str, fault: str, version: str = "2.0.0", **fields: Any) -> dict[str, Any]:
    """A new release of the service whose pods fail as `fault` says (kwok's stages)."""
    annotations = {FAULT: fault, "kwok.maestro.dev/message": "panic: no DATABASE_URL"}
    return svc(name, image=f"registry.example.com/{name}:{version}", podAnnotations=annotations, **fields)


def failed(kubectl: Kubectl, name: str) -> dict[str, Any] | None:
    """The app once Degraded at its current generation."""
    app = kubectl.get("msa", name)
    status = app.get("status") or {}
    if (
        status.get("phase") == "Degraded"
        and status.get("observedGeneration") == app["metadata"]["generation"]
    ):
        return app  # type: ignore[no-any-return]
    return None


def test_a_crash_looping_release_is_reported_failed_long_before_its_progress_deadline(
    kubectl: Kubectl, op: OperatorProcess
) -> None:
    kubectl.apply(msa("shop", svc("catalog"), svc("web", dependsOn=["catalog"])))
    wait_ready(kubectl, "shop")
    started = time.monotonic()
    kubectl.apply(msa("shop", faulty("catalog", "crash-loop"), svc("web", dependsOn=["catalog"])))
    app = wait_until("the app to be Degraded", lambda: failed(kubectl, "shop"), timeout=90)
    detected = time.monotonic() - started
    deployment = kubectl.get("deployment", "shop-catalog")
    deadline = deployment["spec"]["progressDeadlineSeconds"]
    print(f"crash loop detected {detected:.1f} s after the change; progress deadline {deadline} s")
    assert detected < deadline / 5
    progressing = next(c for c in deployment["status"]["conditions"] if c["type"] == "Progressing")
    assert progressing["reason"] != "ProgressDeadlineExceeded"  # Maestro said it, not the Deployment

    degraded = condition(app, "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "RolloutFailed")
    # kwok's pod crashes every 2 s: at least 3 restarts when a pass looks (every 5 s while undecided)
    assert re.fullmatch(
        r"catalog: \d+ restarts in \d+ s, CrashLoopBackOff \(exit code 1\): panic: no DATABASE_URL",
        degraded["message"],
    ), degraded["message"]
    assert (condition(app, "Stalled")["status"], condition(app, "Ready")["status"]) == ("True", "False")
    catalog = next(s for s in app["status"]["services"] if s["name"] == "catalog")
    assert catalog["phase"] == "Degraded"
    warnings = [e for e in events(kubectl, "shop") if e["reason"] == "RolloutFailed"]
    assert [(e["type"], e["message"]) for e in warnings] == [("Warning", degraded["message"])]
    # The old pod still serves (the rolling update keeps it until a new one is available).
    assert deployment["status"].get("availableReplicas") == 1

    # A fixed release rolls out normally.
    kubectl.apply(msa("shop", svc("catalog", image="registry.example.com/catalog:2.0.1"), svc("web")))
    wait_ready(kubectl, "shop")


def test_an_image_that_cannot_be_pulled_is_reported_after_the_grace_period(
    kubectl: Kubectl, op: OperatorProcess
) -> None:
    kubectl.apply(msa("shop", svc("catalog"), svc("web", dependsOn=["catalog"])))
    wait_ready(kubectl, "shop")
    started = time.monotonic()
    catalog = faulty("catalog", "image-pull", rollout={"progressDeadlineSeconds": 300})
    web = svc("web", image="registry.example.com/web:2.0.0", dependsOn=["catalog"])
    kubectl.apply(msa("shop", catalog, web))
    app = wait_until("the app to be Degraded", lambda: failed(kubectl, "shop"), timeout=120)
    detected = time.monotonic() - started
    print(f"image pull failure detected {detected:.1f} s after the change; progress deadline 300 s")
    assert 30 <= detected < 100  # the grace period, then a pass within a few seconds
    degraded = condition(app, "Degraded")
    assert degraded["reason"] == "RolloutFailed"
    assert degraded["message"].startswith("catalog: ImagePullBackOff for "), degraded["message"]
    assert 'Back-off pulling image \\"registry.example.com/catalog:2.0.0\\"' in degraded["message"] or (
        'Back-off pulling image "registry.example.com/catalog:2.0.0"' in degraded["message"]
    )
    assert degraded["message"].endswith("; holding web")
    # web's new release never rolled onto the failed catalog.
    web_deployment = kubectl.get("deployment", "shop-web")
    assert web_deployment["spec"]["template"]["spec"]["containers"][0]["image"].endswith("web:1.0.0")


def test_pods_that_never_get_ready_are_left_to_the_progress_deadline(
    kubectl: Kubectl, op: OperatorProcess
) -> None:
    kubectl.apply(msa("shop", svc("catalog")))
    wait_ready(kubectl, "shop")
    kubectl.apply(msa("shop", faulty("catalog", "never-ready", rollout={"progressDeadlineSeconds": 15})))
    time.sleep(10)
    assert (kubectl.get("msa", "shop")["status"]).get("phase") != "Degraded"  # a slow start looks the same
    app = wait_until("the app to be Degraded", lambda: failed(kubectl, "shop"), timeout=90)
    degraded = condition(app, "Degraded")
    assert degraded["message"].startswith("catalog: ReplicaSet "), degraded["message"]
    assert degraded["message"].endswith("has timed out progressing.")
