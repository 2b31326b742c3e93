"""GitOps tools on real status objects: the operator drives an app through Ready, a stale generation,
Progressing, Degraded and Invalid, and at each step

- Argo CD's view: the health check (deploy/argocd/, run by Debian's Lua 5.1) on the object read from the
  API server;
- Flux's view: kstatus, the real library (github.com/fluxcd/cli-utils, the fork Flux's kustomize-controller
  uses), as Helm 4 runs it for `helm upgrade --wait=watcher`: the app is applied from a chart, and helm
  succeeds only when kstatus computes Current, fails at once on Failed, and names the status it last saw;
- `kubectl wait --for=condition=Ready` and `--for=jsonpath={.status.observedGeneration}`.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import argocd_health, helm_script
from tests.e2e import operator_process
from tests.e2e.kubectl import Kubectl
from tests.e2e.operator_process import OperatorProcess
from tests.e2e.waits import wait_until

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "gitops"
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

CHART_TEMPLATE = """apiVersion: maestro.dev/v1alpha1
kind: MicroserviceApp
metadata:
  name: shop
spec:
{{- toYaml .Values.spec | nindent 2 }}
"""
# helm's report of a resource that did not reach kstatus Current (helm.sh/helm/v4 pkg/kube/statuswait.go), on
# its `Error:` line (the log line before it quotes the same text).
NOT_READY = re.compile(r"^Error: .* not ready\. status: (\w+), message: (.*)$", re.MULTILINE)


@pytest.fixture
def op(
    request: pytest.FixtureRequest, test_cluster: object, crd: None, namespace: str, tmp_path: Path
) -> Iterator[OperatorProcess]:
    yield from operator_process.running(request, namespace, tmp_path)


@pytest.fixture(scope="module")
def lua() -> str:
    return argocd_health.interpreter()


@pytest.fixture(scope="module")
def helm() -> Path:
    return helm_script.binary(helm_script.load())


def svc(name: str, **fields: Any) -> dict[str, Any]:
    ports = [{"name": "http", "port": 80, "targetPort": 8080}]
    return {"name": name, "image": f"registry.example.com/{name}:1.0.0", "ports": ports} | fields


class Release:
    """The app as a one-template Helm chart, installed and upgraded by the real helm."""

    def __init__(self, helm: Path, kubectl: Kubectl, tmp_path: Path) -> None:
        self.helm, self.kubectl, self.dir = helm, kubectl, tmp_path / "chart"
        (self.dir / "templates").mkdir(parents=True)
        (self.dir / "Chart.yaml").write_text("apiVersion: v2\nname: shop\nversion: 0.1.0\n")
        (self.dir / "templates" / "app.yaml").write_text(CHART_TEMPLATE)
        self.steps = 0

    def apply(self, *services: dict[str, Any], wait: str | None = None) -> subprocess.CompletedProcess[str]:
        """`helm upgrade --install` the app; with `wait` (a timeout), helm waits for kstatus Current."""
        self.steps += 1
        values = self.dir.parent / f"values-{self.steps}.yaml"
        values.write_text(yaml.safe_dump({"spec": {"services": list(services)}}))
        argv = [str(self.helm), "upgrade", "--install", "shop", str(self.dir), "-f", str(values)]
        argv += [f"--namespace={self.kubectl.namespace}", f"--kubeconfig={self.kubectl.kubeconfig}"]
        if wait:
            argv += ["--wait=watcher", f"--timeout={wait}"]
        return subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)

    def kstatus_failure(self, result: subprocess.CompletedProcess[str]) -> tuple[str, str]:
        """(kstatus status, message) from a `helm --wait` that did not see the app Current."""
        assert result.returncode != 0, f"helm succeeded, so kstatus said Current:\n{result.stdout}"
        found = NOT_READY.search(result.stderr)
        assert found, f"no kstatus report in helm's error:\n{result.stderr}"
        return found.group(1), found.group(2)


def succeeded(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"helm failed:\n{result.stderr}"


def conditions(app: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in app["status"]["conditions"]}


def observed(kubectl: Kubectl, phase: str) -> dict[str, Any]:
    """The app once the operator has written `phase` for its current generation."""

    def probe() -> dict[str, Any]:
        app: dict[str, Any] = kubectl.get("msa", "shop")
        status = app.get("status") or {}
        current = status.get("observedGeneration") == app["metadata"]["generation"]
        return app if current and status.get("phase") == phase else {}

    return wait_until(f"msa/shop to be {phase} at its current generation", probe)


def rolled_back(app: dict[str, Any]) -> dict[str, Any] | None:
    """The app once a failed rollout of its current generation has been rolled back (issue 16)."""
    failure = (app.get("status") or {}).get("rolloutFailure") or {}
    if failure.get("generation") == app["metadata"]["generation"] and failure.get("returned") is not None:
        return app
    return None


def test_argocd_health_and_kstatus_on_real_status(
    kubectl: Kubectl, op: OperatorProcess, lua: str, helm: Path, tmp_path: Path
) -> None:
    release = Release(helm, kubectl, tmp_path)

    def argo(app: dict[str, Any]) -> tuple[str, str]:
        return argocd_health.health(lua, app, tmp_path)

    # Ready: installed without --wait (before its first status write, kstatus would call a new app Current:
    # docs/gitops.md), then waited for as a user would.
    succeeded(release.apply(svc("web")))
    kubectl("wait", "--for=jsonpath={.status.observedGeneration}=1", "--timeout=90s", "msa/shop")
    kubectl("wait", "--for=condition=Ready", "--timeout=90s", "msa/shop")
    app = observed(kubectl, "Ready")
    assert argo(app) == ("Healthy", "1/1 services ready")

    # A new service: helm returns only once kstatus sees the new generation observed and Ready.
    succeeded(release.apply(svc("web"), svc("api"), wait="90s"))
    app = kubectl.get("msa", "shop")
    assert app["status"]["observedGeneration"] == app["metadata"]["generation"] == 2
    assert conditions(app)["Ready"]["status"] == "True"
    assert argo(app) == ("Healthy", "2/2 services ready")

    # A stale status: the operator is down when the spec changes; both views wait for it.
    op.stop()
    result = release.apply(svc("web", image="registry.example.com/web:2.0.0"), svc("api"), wait="10s")
    assert release.kstatus_failure(result) == (
        "InProgress",
        "MicroserviceApp generation is 3, but latest observed generation is 2",
    )
    app = kubectl.get("msa", "shop")
    assert (app["metadata"]["generation"], app["status"]["phase"]) == (3, "Ready")
    assert argo(app) == (
        "Progressing",
        "Waiting for the Maestro operator to observe generation 3 (status is for generation 2)",
    )
    op.start()
    kubectl("wait", "--for=jsonpath={.status.observedGeneration}=3", "--timeout=90s", "msa/shop")
    kubectl("wait", "--for=condition=Ready", "--timeout=90s", "msa/shop")
    assert argo(kubectl.get("msa", "shop")) == ("Healthy", "2/2 services ready")

    # Progressing: api's new pods cannot schedule (within the default progress deadline): kstatus InProgress
    # (Reconciling=True) until helm's timeout.
    nowhere = {"nodeSelector": {"maestro.dev/e2e": "nowhere"}}
    result = release.apply(svc("web"), svc("api", scheduling=nowhere), wait="15s")
    state, message = release.kstatus_failure(result)
    app = observed(kubectl, "Progressing")
    ready = conditions(app)["Ready"]
    assert (state, message) == ("InProgress", conditions(app)["Reconciling"]["message"])
    assert "api: " in message
    assert argo(app) == ("Progressing", f"Progressing: {ready['message']}")

    # Degraded: the same with a 5s progress deadline: kstatus Failed (Stalled=True), so helm stops waiting
    # before its timeout and says Failed. The app had a Ready revision: Maestro rolls the release back (issue 16),
    # so helm may have read the decision ("rolling back to ...") or its outcome ("rolled back ..."): the same
    # failure either way.
    stuck = svc("api", scheduling=nowhere, rollout={"progressDeadlineSeconds": 5})
    result = release.apply(svc("web"), stuck, wait="120s")
    state, message = release.kstatus_failure(result)
    app = wait_until("the rollback", lambda: rolled_back(kubectl.get("msa", "shop")), timeout=60)
    degraded = conditions(app)["Degraded"]
    assert (degraded["status"], degraded["reason"]) == ("True", "RolledBack")
    assert degraded["message"].startswith("api: ReplicaSet ") and "; rolled back api" in degraded["message"]
    assert state == "Failed" and message.split("; ")[0] == degraded["message"].split("; ")[0], message
    assert argo(app) == ("Degraded", degraded["message"])

    # Invalid: a dependency cycle the operator refuses: Failed at once, and Degraded in Argo CD.
    result = release.apply(svc("web", dependsOn=["api"]), svc("api", dependsOn=["web"]), wait="120s")
    state, message = release.kstatus_failure(result)
    app = observed(kubectl, "Invalid")
    ready = conditions(app)["Ready"]
    assert (ready["reason"], state, message) == ("InvalidSpec", "Failed", ready["message"])
    assert "cycle" in message
    assert argo(app) == ("Degraded", f"Invalid (InvalidSpec): {ready['message']}")

    # Fixed by rolling forward (a new api image): Current again, and Healthy. (A rollback to api's old
    # ReplicaSet could briefly read Failed: the Deployment keeps ProgressDeadlineExceeded until its stuck pod
    # is gone, and kstatus reads the Deployment itself the same way; docs/gitops.md.)
    succeeded(release.apply(svc("web"), svc("api", image="registry.example.com/api:1.0.1"), wait="120s"))
    app = kubectl.get("msa", "shop")
    assert app["status"]["observedGeneration"] == app["metadata"]["generation"]
    assert argo(app) == ("Healthy", "2/2 services ready")
    kubectl("wait", "--for=condition=Ready", "--timeout=10s", "msa/shop")


def test_example_overlay_becomes_healthy(
    kubectl: Kubectl, op: OperatorProcess, lua: str, tmp_path: Path
) -> None:
    # examples/gitops as Argo CD or Flux would apply it (kustomize), into the test's namespace.
    rendered = kubectl("kustomize", str(EXAMPLE / "apps" / "overlays" / "production"))
    (app,) = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "MicroserviceApp"]
    app["metadata"]["namespace"] = kubectl.namespace
    kubectl.apply(app)
    kubectl("wait", "--for=jsonpath={.status.observedGeneration}=1", "--timeout=90s", "msa/shop")
    kubectl("wait", "--for=condition=Ready", "--timeout=90s", "msa/shop")
    assert argocd_health.health(lua, kubectl.get("msa", "shop"), tmp_path) == (
        "Healthy",
        "2/2 services ready",
    )
    assert {d["metadata"]["name"] for d in kubectl.get("deployments")} == {"shop-catalog", "shop-web"}
