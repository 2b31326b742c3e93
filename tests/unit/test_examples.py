"""Every example creates every object it refers to, so that `kubectl apply -f` of it runs on real pods."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .helpers import EXAMPLES, example_app, example_documents


def referenced(app: dict[str, Any]) -> set[tuple[str, str]]:
    """(kind, name) of each ConfigMap and Secret the app's pods need: non-optional configFrom, envFrom,
    env valueFrom and volumes, on defaults, services and jobs."""
    found: set[tuple[str, str]] = set()
    spec = app["spec"]
    for pod in [spec.get("defaults", {}), *spec.get("services", []), *spec.get("jobs", [])]:
        for source in pod.get("configFrom", []):
            if not source.get("optional"):
                found.add(
                    ("ConfigMap", source["configMap"])
                    if "configMap" in source
                    else ("Secret", source["secret"])
                )
        for source in pod.get("envFrom", []):
            for key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                if key in source and not source[key].get("optional"):
                    found.add((kind, source[key]["name"]))
        for variable in pod.get("env", []):
            for key, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                ref = variable.get("valueFrom", {}).get(key)
                if ref and not ref.get("optional"):
                    found.add((kind, ref["name"]))
        for volume in pod.get("volumes", []):
            if "configMap" in volume and not volume["configMap"].get("optional"):
                found.add(("ConfigMap", volume["configMap"]["name"]))
            if "secret" in volume and not volume["secret"].get("optional"):
                found.add(("Secret", volume["secret"]["secretName"]))
    return found


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_creates_what_it_refers_to(path: Path) -> None:
    created = {(doc["kind"], doc["metadata"]["name"]) for doc in example_documents(path)}
    assert referenced(example_app(path)) <= created


def test_the_check_sees_references() -> None:
    shop = example_app(Path(EXAMPLES[0]).parent / "shop.yaml")
    assert ("Secret", "shop-db") in referenced(shop)
    gateway = example_app(Path(EXAMPLES[0]).parent / "gateway.yaml")
    assert referenced(gateway) == {("ConfigMap", "gateway-config"), ("Secret", "gateway-tls")}
