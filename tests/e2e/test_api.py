"""The MicroserviceApp API on a real API server: the CRD installs, examples are accepted, bad input is rejected at
`kubectl apply` naming the field, `kubectl explain` shows the descriptions, and rendered children are accepted
(server-side dry-run) in a namespace that enforces the restricted Pod Security Standard.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from maestro import render
from tests.e2e.invalid_apps import INVALID_APPS
from tests.e2e.kubectl import Kubectl

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("crd")]

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


def load(path: Path) -> dict[str, Any]:
    """The example's MicroserviceApp (the file may also hold the ConfigMaps and Secrets it refers to)."""
    (app,) = [doc for doc in yaml.safe_load_all(path.read_text()) if doc and doc["kind"] == "MicroserviceApp"]
    return dict(app)


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_is_accepted(kubectl: Kubectl, example: Path) -> None:
    kubectl("apply", "-f", str(example))
    app = load(example)
    stored = kubectl.get("microserviceapps", app["metadata"]["name"])
    assert stored["spec"]["services"][0]["name"] == app["spec"]["services"][0]["name"]
    assert app["metadata"]["name"] in kubectl("get", "msa")
    # No operator runs here: the API server's default marks it as not yet handled (kstatus: InProgress).
    assert stored["status"] == {"observedGeneration": 0}
    assert stored["metadata"]["generation"] == 1


@pytest.mark.parametrize(("case", "manifest", "expected"), INVALID_APPS, ids=[c[0] for c in INVALID_APPS])
def test_invalid_app_is_rejected_naming_the_field(
    kubectl: Kubectl, case: str, manifest: dict[str, Any], expected: str
) -> None:
    result = kubectl.try_apply(manifest)
    assert result.returncode != 0, f"{case} was accepted"
    assert expected in result.stderr, f"{case}: the error does not name {expected!r}:\n{result.stderr}"
    assert kubectl.get("microserviceapps", manifest["metadata"]["name"]) is None


def test_invalid_cases_are_many_and_distinct() -> None:
    assert len({case for case, _, _ in INVALID_APPS}) == len(INVALID_APPS) >= 15


def test_explain_shows_descriptions(cluster_kubectl: Kubectl) -> None:
    services = cluster_kubectl("explain", "msa.spec.services")
    assert "DESCRIPTION" in services
    for field in ("image", "dependsOn", "autoscaling", "configFrom"):
        assert field in services
    image = cluster_kubectl("explain", "msa.spec.services.image")
    assert "<none>" not in image.split("DESCRIPTION:")[1].split("\n")[1]


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_rendered_children_are_accepted_under_restricted_pod_security(
    kubectl: Kubectl, example: Path
) -> None:
    namespace = kubectl.namespace or ""
    kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    app = load(example)
    app["metadata"]["namespace"] = namespace
    children = render.render_app(app)
    assert {c["kind"] for c in children} >= {"Deployment"}
    kubectl("apply", "--dry-run=server", "--server-side", "--field-manager=maestro", "-f", "-",
            stdin=yaml.safe_dump_all(children))  # fmt: skip
    # The Deployment is only a template: check the pods it would make are admitted too.
    for deployment in (c for c in children if c["kind"] == "Deployment"):
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": deployment["metadata"]["name"],
                **deployment["spec"]["template"]["metadata"],
            },
            "spec": deployment["spec"]["template"]["spec"],
        }
        result = kubectl.run("apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(pod), check=False)
        assert result.returncode == 0, f"{deployment['metadata']['name']}'s pod is refused: {result.stderr}"
