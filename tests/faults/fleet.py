"""The apps the fault cases run: small, but with what can go wrong in a pass (a dependency gate, several
children per service, an HPA), and helpers to create and change many at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.faults.client import Client


def fleet_app(name: str, version: int = 1) -> dict[str, Any]:
    """Two services: `api` (autoscaled: Deployment, Service, HPA, PDB) and `web` gated on it."""
    return {
        "apiVersion": "maestro.dev/v1alpha1",
        "kind": "MicroserviceApp",
        "metadata": {"name": name},
        "spec": {
            "services": [
                {
                    "name": "api",
                    "image": f"registry.example.com/api:{version}.0.0",
                    "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
                    "autoscaling": {"minReplicas": 1, "maxReplicas": 3},
                },
                {
                    "name": "web",
                    "image": f"registry.example.com/web:{version}.0.0",
                    "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
                    "dependsOn": ["api"],
                },
            ]
        },
    }


def names(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{i:03d}" for i in range(count)]


def parallel(function: Any, items: list[Any], workers: int = 8) -> list[Any]:
    """Run function over items on a few threads (requests are I/O; a few threads cut the wall time)."""
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(function, items))


def create_fleet(client: Client, namespace: str, app_names: list[str], version: int = 1) -> None:
    parallel(lambda name: client.create(namespace, fleet_app(name, version)), app_names)


def set_version(client: Client, namespace: str, app_names: list[str], version: int) -> None:
    """A new spec for each app (both images): a rollout of api, then web once api is Available."""
    parallel(
        lambda name: client.merge_patch(
            "MicroserviceApp", namespace, name, {"spec": fleet_app(name, version)["spec"]}
        ),
        app_names,
    )
