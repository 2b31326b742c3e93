"""Small builders shared by the unit tests: a valid app as a plain dict, tweaked per test."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def example_documents(path: Path) -> list[dict[str, Any]]:
    """Every object of an example file: the app and the ConfigMaps and Secrets it refers to."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def example_app(path: Path) -> dict[str, Any]:
    """The one MicroserviceApp of an example file."""
    (found,) = [doc for doc in example_documents(path) if doc["kind"] == "MicroserviceApp"]
    return found


def app(*services: dict[str, Any], name: str = "shop", **spec: Any) -> dict[str, Any]:
    """A MicroserviceApp object with the given services (default: one web service) and spec fields."""
    return {
        "apiVersion": "maestro.dev/v1alpha1",
        "kind": "MicroserviceApp",
        "metadata": {"name": name, "namespace": "prod", "uid": "0000-1111", "generation": 1},
        "spec": {"services": [copy.deepcopy(s) for s in services] or [svc("web")], **spec},
    }


def svc(name: str, **fields: Any) -> dict[str, Any]:
    """A service with an image and one http port, plus the given fields."""
    return {
        "name": name,
        "image": f"registry.example.com/{name}:1.0.0",
        "ports": [{"name": "http", "port": 80}],
    } | {key: value for key, value in fields.items()}


def by_kind(children: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The one child of that kind and name (fails the test when absent)."""
    matches = [c for c in children if c["kind"] == kind and c["metadata"]["name"] == name]
    assert len(matches) == 1, (
        f"expected one {kind} {name}, got {[(c['kind'], c['metadata']['name']) for c in children]}"
    )
    return matches[0]


@dataclass
class Listed:
    """One kind's listing as kube.Listing gives it: its objects, and the version it was listed at."""

    kind: str
    items: list[dict[str, Any]]
    resource_version: str = "100"
    served: bool = True

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.items)
