"""Failed rollouts on a real API server, through the real Deployment controller (issue 16): a release whose new
pods crash-loop, cannot pull their image or never get ready is detected (the first two long before the
Deployment's progress deadline, from the new ReplicaSet's pods) and rolled back to the app's last Ready revision,
dependents first, or held (`rollout.onFailure: Hold`); the spec is never edited. `maestro history` and `maestro
rollback` read and use the revisions.

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

from tests import argocd_health
from tests.e2e import operator_process
from tests.e2e.kubectl import Kubectl
from tests.e2e.operator_process import OperatorProcess
from tests.e2e.test_operator import condition, events, msa, svc, wait_ready
from tests.e2e.test_status import maestro
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


def rolled_back(kubectl: Kubectl, name: str) -> dict[str, Any] | None:
    """The app once a failed rollout of its current generation has been rolled back (or held)."""
    app = failed(kubectl, name)
    failure = (app or {}).get("status", {}).get("rolloutFailure") or {}
    if failure.get("returned") is not None or failure.get("action") == "Held":
        return app
    return None


def image(kubectl: Kubectl, service: str) -> str:
    deployment = kubectl.get("deployment", f"shop-{service}")
    return deployment["spec"]["template"]["spec"]["containers"][0]["image"]  # type: ignore[no-any-return]


def available(kubectl: Kubectl, service: str, version: str) -> bool:
    """The service's Deployment is at that version and every pod of it is available (the rolling update done)."""
    deployment = kubectl.get("deployment", f"shop-{service}")
    status = deployment.get("status") or {}
    return (
        image(kubectl, service).endswith(f":{version}")
        and status.get("observedGeneration") == deployment["metadata"]["generation"]
        and status.get("updatedReplicas") == status.get("availableReplicas") == status.get("replicas") == 1
    )


@pytest.fixture(scope="module")
def lua() -> str:
    return argocd_health.interpreter()


def test_a_crash_looping_release_is_rolled_back_long_before_its_progress_deadline(
    kubectl: Kubectl, op: OperatorProcess, lua: str, tmp_path: Path
) -> None:
    kubectl.apply(msa("shop", svc("catalog"), svc("web", dependsOn=["catalog"])))
    first = wait_ready(kubectl, "shop")["status"]["lastGoodRevision"]
    assert (first["revision"], first["generation"]) == (1, 1)
    started = time.monotonic()
    kubectl.apply(msa("shop", faulty("catalog", "crash-loop"), svc("web", dependsOn=["catalog"])))
    app = wait_until("the rollout to be rolled back", lambda: rolled_back(kubectl, "shop"), timeout=90)
    detected = time.monotonic() - started
    deployment = kubectl.get("deployment", "shop-catalog")
    deadline = deployment["spec"]["progressDeadlineSeconds"]
    print(f"crash loop rolled back {detected:.1f} s after the change; progress deadline {deadline} s")
    assert detected < deadline / 5
    assert image(kubectl, "catalog") == "registry.example.com/catalog:1.0.0"
    assert app["spec"]["services"][0]["image"] == "registry.example.com/catalog:2.0.0"  # never edited

    status = app["status"]
    degraded = condition(app, "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "RolledBack")
    # kwok's pod crashes every 2 s: at least 3 restarts when a pass looks (every 5 s while undecided)
    assert re.fullmatch(
        r"catalog: \d+ restarts in \d+ s, CrashLoopBackOff \(exit code 1\): panic: no DATABASE_URL; "
        r"rolled back catalog to revision 1 \(generation 1\)",
        degraded["message"],
    ), degraded["message"]
    assert (condition(app, "Stalled")["status"], condition(app, "Ready")["reason"]) == ("True", "RolledBack")
    assert (status["lastGoodRevision"], status["failedGeneration"]) == (first, 2)
    assert status["rolloutFailure"]["returned"] == ["catalog"]
    warnings = [(e["type"], e["reason"]) for e in events(kubectl, "shop") if e["type"] == "Warning"]
    assert sorted(warnings) == [("Warning", "RolledBack"), ("Warning", "RolloutFailed")], (
        warnings
    )  # same second
    assert argocd_health.health(lua, app, tmp_path) == ("Degraded", degraded["message"])

    # catalog is back on 1.0.0 and serves; the app stays Degraded (its spec is not what runs).
    wait_until("catalog 1.0.0 to be rolled out", lambda: available(kubectl, "catalog", "1.0.0"), timeout=60)
    time.sleep(2)
    assert kubectl.get("msa", "shop")["status"]["phase"] == "Degraded"

    # A fixed release rolls out normally, and is the next revision.
    kubectl.apply(
        msa(
            "shop",
            svc("catalog", image="registry.example.com/catalog:2.0.1"),
            svc("web", dependsOn=["catalog"]),
        )
    )
    status = wait_ready(kubectl, "shop")["status"]
    assert "rolloutFailure" not in status and "failedGeneration" not in status
    assert status["lastGoodRevision"]["revision"] == 2

    history = maestro("history", "shop", "-n", str(kubectl.namespace))
    assert history.returncode == 0, history.stderr
    rows = [line.split() for line in history.stdout.splitlines()]
    assert [row[0] for row in rows] == ["REVISION", "2", "1"], history.stdout
    assert "catalog=registry.example.com/catalog:2.0.1" in history.stdout

    # Without GitOps, `maestro rollback` writes revision 1's spec back; that rendering takes number 3.
    undo = maestro("rollback", "shop", "--to-revision", "1", "-n", str(kubectl.namespace))
    assert undo.returncode == 0, undo.stderr
    assert kubectl.get("msa", "shop")["spec"]["services"][0]["image"] == "registry.example.com/catalog:1.0.0"
    wait_until(
        "revision 1's rendering to be Ready again as revision 3",
        lambda: (
            kubectl.get("msa", "shop")["status"].get("lastGoodRevision")
            == {**first, "revision": 3, "generation": 4}
        ),
        timeout=60,
    )
    missing = maestro("rollback", "shop", "--to-revision", "9", "-n", str(kubectl.namespace))
    assert missing.returncode == 1 and "has no revision 9 (revisions: 2, 3)" in missing.stderr, missing.stderr


def test_a_dependent_that_fails_returns_first_then_its_dependency(
    kubectl: Kubectl, op: OperatorProcess
) -> None:
    kubectl.apply(msa("shop", svc("catalog"), svc("web", dependsOn=["catalog"])))
    wait_ready(kubectl, "shop")
    catalog = svc("catalog", image="registry.example.com/catalog:2.0.0")
    kubectl.apply(msa("shop", catalog, faulty("web", "crash-loop", dependsOn=["catalog"])))
    app = wait_until("the rollout to be rolled back", lambda: rolled_back(kubectl, "shop"), timeout=120)
    failure = app["status"]["rolloutFailure"]
    assert (failure["service"], failure["returned"]) == ("web", ["web", "catalog"])
    assert (image(kubectl, "web"), image(kubectl, "catalog")) == (
        "registry.example.com/web:1.0.0",
        "registry.example.com/catalog:1.0.0",
    )
    wait_until(
        "both to be rolled out at 1.0.0",
        lambda: available(kubectl, "web", "1.0.0") and available(kubectl, "catalog", "1.0.0"),
        timeout=60,
    )


def test_an_image_that_cannot_be_pulled_is_rolled_back_after_the_grace_period(
    kubectl: Kubectl, op: OperatorProcess
) -> None:
    kubectl.apply(msa("shop", svc("catalog"), svc("web", dependsOn=["catalog"])))
    wait_ready(kubectl, "shop")
    started = time.monotonic()
    catalog = faulty("catalog", "image-pull", rollout={"progressDeadlineSeconds": 300})
    web = svc("web", image="registry.example.com/web:2.0.0", dependsOn=["catalog"])
    kubectl.apply(msa("shop", catalog, web))
    app = wait_until("the rollout to be rolled back", lambda: rolled_back(kubectl, "shop"), timeout=120)
    detected = time.monotonic() - started
    print(f"image pull failure rolled back {detected:.1f} s after the change; progress deadline 300 s")
    assert 30 <= detected < 100  # the grace period, then a pass within a few seconds
    degraded = condition(app, "Degraded")
    assert degraded["reason"] == "RolledBack"
    assert degraded["message"].startswith("catalog: ImagePullBackOff for "), degraded["message"]
    assert "registry.example.com/catalog:2.0.0" in degraded["message"]
    assert degraded["message"].endswith("; rolled back catalog to revision 1 (generation 1)")
    # web's new release never rolled onto the failed catalog, nor after it was rolled back.
    assert image(kubectl, "web") == "registry.example.com/web:1.0.0"
    assert image(kubectl, "catalog") == "registry.example.com/catalog:1.0.0"


def test_hold_keeps_what_is_there_and_rolls_nothing_further(kubectl: Kubectl, op: OperatorProcess) -> None:
    kubectl.apply(msa("shop", svc("catalog"), svc("web", dependsOn=["catalog"])))
    wait_ready(kubectl, "shop")
    catalog = faulty("catalog", "crash-loop", rollout={"onFailure": "Hold"})
    web = svc("web", image="registry.example.com/web:2.0.0", dependsOn=["catalog"])
    kubectl.apply(msa("shop", catalog, web))
    app = wait_until("the rollout to be held", lambda: rolled_back(kubectl, "shop"), timeout=90)
    degraded = condition(app, "Degraded")
    assert (degraded["reason"], app["status"]["rolloutFailure"]["action"]) == ("RolloutHeld", "Held")
    assert "held at generation 2: nothing rolls back or further" in degraded["message"]
    time.sleep(6)  # a recheck's worth: still nothing rolled back or forward
    assert image(kubectl, "catalog") == "registry.example.com/catalog:2.0.0"
    assert image(kubectl, "web") == "registry.example.com/web:1.0.0"
    reasons = [e["reason"] for e in events(kubectl, "shop") if e["type"] == "Warning"]
    assert sorted(reasons) == ["RolloutFailed", "RolloutHeld"], reasons  # posted in the same second


def test_pods_that_never_get_ready_are_rolled_back_at_the_progress_deadline(
    kubectl: Kubectl, op: OperatorProcess
) -> None:
    kubectl.apply(msa("shop", svc("catalog")))
    wait_ready(kubectl, "shop")
    kubectl.apply(msa("shop", faulty("catalog", "never-ready", rollout={"progressDeadlineSeconds": 15})))
    time.sleep(10)
    assert (kubectl.get("msa", "shop")["status"]).get("phase") != "Degraded"  # a slow start looks the same
    app = wait_until("the rollout to be rolled back", lambda: rolled_back(kubectl, "shop"), timeout=90)
    degraded = condition(app, "Degraded")
    assert degraded["message"].startswith("catalog: ReplicaSet "), degraded["message"]
    assert "has timed out progressing.; rolled back catalog to revision 1" in degraded["message"]
    assert image(kubectl, "catalog") == "registry.example.com/catalog:1.0.0"
