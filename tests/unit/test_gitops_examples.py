"""examples/gitops/ and deploy/argocd/ as kustomize (the cached kubectl's `kubectl kustomize`) builds them.

The overlays render valid apps (`maestro validate`); every Argo CD Application and Flux Kustomization points
at a path of this repository that builds; the argocd-cm Component puts the health check into argocd-cm.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import argocd_health
from tests.e2e.cluster import local_bin_dir

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "gitops"
OVERLAYS = {"staging": "shop-staging", "production": "shop-production"}
HEALTH_KEY = "resource.customizations.health.maestro.dev_MicroserviceApp"


@pytest.fixture(scope="module")
def kubectl() -> str:
    """The local control plane's pinned kubectl (`make test` builds it before the tests run)."""
    cached = local_bin_dir() / "kubectl"
    if not cached.exists():
        pytest.fail(f"no kubectl at {cached}: run `python hack/cluster/cluster.py build`")
    return str(cached)


def kustomize(kubectl: str, path: Path) -> list[dict[str, Any]]:
    result = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"kubectl kustomize {path} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_overlay_renders_valid_apps_in_its_namespace(kubectl: str, overlay: str) -> None:
    docs = kustomize(kubectl, EXAMPLE / "apps" / "overlays" / overlay)
    namespace = OVERLAYS[overlay]
    assert [d["metadata"]["name"] for d in by_kind(docs, "Namespace")] == [namespace]
    apps = by_kind(docs, "MicroserviceApp")
    assert [(a["metadata"]["name"], a["metadata"]["namespace"]) for a in apps] == [("shop", namespace)]
    assert len(docs) == 2
    validate = subprocess.run(
        [sys.executable, "-m", "maestro", "validate", "-f", "-"],
        input=yaml.safe_dump_all(apps),
        capture_output=True,
        text=True,
        check=False,
    )
    assert validate.returncode == 0, validate.stderr
    assert validate.stdout == "shop: valid\n"


def test_overlays_patch_what_they_say(kubectl: str) -> None:
    def services(overlay: str) -> dict[str, dict[str, Any]]:
        (app,) = by_kind(kustomize(kubectl, EXAMPLE / "apps" / "overlays" / overlay), "MicroserviceApp")
        return {s["name"]: s for s in app["spec"]["services"]}

    staging, production = services("staging"), services("production")
    assert staging["web"]["image"] == "registry.example.com/shop/web:2.1.0-rc.1"
    assert "replicas" not in staging["catalog"] and "autoscaling" not in staging["web"]
    assert production["web"]["image"] == "registry.example.com/shop/web:2.0.0"
    assert production["catalog"]["replicas"] == 2
    assert production["web"]["autoscaling"]["minReplicas"] == 3


def _builds(kubectl: str, relative: str) -> list[dict[str, Any]]:
    path = ROOT / relative.removeprefix("./")
    assert path.is_dir(), f"{relative} is not a directory of the repository"
    if (path / "Chart.yaml").exists():
        return []  # a Helm chart: tests/unit/test_deploy.py lints and renders it
    return kustomize(kubectl, path)


def test_argocd_applications_point_at_paths_that_build(kubectl: str) -> None:
    applications = by_kind(kustomize(kubectl, EXAMPLE / "argocd"), "Application")
    assert {a["metadata"]["name"] for a in applications} == {"maestro", "shop-staging", "shop-production"}
    for application in applications:
        source, destination = application["spec"]["source"], application["spec"]["destination"]
        docs = _builds(kubectl, source["path"])
        apps = by_kind(docs, "MicroserviceApp")
        assert all(a["metadata"]["namespace"] == destination["namespace"] for a in apps), application
    (operator,) = (a for a in applications if a["metadata"]["name"] == "maestro")
    assert (ROOT / operator["spec"]["source"]["path"] / "Chart.yaml").exists()


def test_flux_kustomizations_point_at_paths_that_build_and_wait(kubectl: str) -> None:
    docs = kustomize(kubectl, EXAMPLE / "flux")
    sources = {d["metadata"]["name"] for d in by_kind(docs, "GitRepository")}
    kustomizations = by_kind(docs, "Kustomization")
    names = {k["metadata"]["name"] for k in kustomizations}
    assert names == {"maestro", "shop-staging", "shop-production"}
    for item in kustomizations:
        spec = item["spec"]
        assert (
            spec["sourceRef"] == {"kind": "GitRepository", "name": "maestro"}
            and spec["sourceRef"]["name"] in sources
        )
        assert spec["wait"] is True  # health checks (kstatus) on everything applied
        assert {d["name"] for d in spec.get("dependsOn", [])} <= names
        built = _builds(kubectl, spec["path"])
        if item["metadata"]["name"] == "maestro":
            assert {"CustomResourceDefinition", "Deployment"} <= {d["kind"] for d in built}
        else:
            assert [d["name"] for d in spec["dependsOn"]] == ["maestro"]
            assert len(by_kind(built, "MicroserviceApp")) == 1


def test_argocd_component_adds_the_health_check(kubectl: str, tmp_path: Path) -> None:
    # An Argo CD install's argocd-cm (as in Argo CD's install.yaml), with deploy/argocd as a Component.
    (tmp_path / "argocd-cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: argocd-cm\n"
        "  labels: {app.kubernetes.io/name: argocd-cm, app.kubernetes.io/part-of: argocd}\n"
        "data:\n  timeout.reconciliation: 180s\n"
    )
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: argocd\n"
        f"resources: [argocd-cm.yaml]\ncomponents: [{os.path.relpath(ROOT / 'deploy' / 'argocd', tmp_path)}]\n"
    )
    (configmap,) = kustomize(kubectl, tmp_path)
    assert configmap["metadata"] == {
        "name": "argocd-cm",
        "namespace": "argocd",
        "labels": {"app.kubernetes.io/name": "argocd-cm", "app.kubernetes.io/part-of": "argocd"},
    }
    assert configmap["data"] == {
        "timeout.reconciliation": "180s",
        HEALTH_KEY: argocd_health.HEALTH_SCRIPT.read_text(),
    }
