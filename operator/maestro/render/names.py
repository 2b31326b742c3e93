"""Names and labels every child of a service carries, and the metadata they share. Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from maestro.api import models as api
from maestro.render.target import Component

MANAGED_BY = "maestro"
CONFIG_HASH_ANNOTATION = f"{api.GROUP}/config-hash"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_PART_OF = "app.kubernetes.io/part-of"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_VERSION = "app.kubernetes.io/version"

_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def child_name(app_name: str, service_name: str) -> str:
    """The name of every child of one service: `<app>-<service>` (checked by api.validate_app)."""
    return f"{app_name}-{service_name}"


def selector_labels(app_name: str, service_name: str) -> dict[str, str]:
    """The labels that select a service's pods. Only stable labels: a Deployment's selector is immutable."""
    return {LABEL_INSTANCE: app_name, LABEL_COMPONENT: service_name}


def owned_labels(app_name: str) -> dict[str, str]:
    """The labels every child of an app carries, to list them (add the component label for one service)."""
    return {LABEL_INSTANCE: app_name, LABEL_MANAGED_BY: MANAGED_BY}


def image_version(image: str) -> str | None:
    """The image tag when it can be a label value (no digest, at most 63 characters), else None."""
    if "@" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return None
    tag = last.rsplit(":", 1)[1]
    return tag if len(tag) <= api.DNS_LABEL_MAX and _LABEL_VALUE.match(tag) else None


def labels(app_name: str, service: Component) -> dict[str, str]:
    """The recommended app.kubernetes.io labels of a service's (or job's) children and pods."""
    result = {
        LABEL_NAME: service.name,
        LABEL_INSTANCE: app_name,
        LABEL_COMPONENT: service.name,
        LABEL_PART_OF: app_name,
        LABEL_MANAGED_BY: MANAGED_BY,
    }
    version = image_version(service.image)
    if version is not None:
        result[LABEL_VERSION] = version
    return result


def env_prefix(service_name: str) -> str:
    """The prefix of a dependency's variables: `catalog-db` -> `CATALOG_DB` (CATALOG_DB_URL, ...)."""
    return service_name.upper().replace("-", "_")


def service_ports(service: api.ServiceSpec) -> list[api.Port]:
    """The ports of the service's Kubernetes Service; [] when none is rendered (no ports, or exposed as None)."""
    if service.expose is not None and service.expose.type == "None":
        return []
    return list(service.ports or [])


def endpoint(app_name: str, service: api.ServiceSpec, namespace: str | None = None) -> str | None:
    """The in-cluster URL of the service's first port (http://<app>-<svc>[.<ns>.svc]:<port>), or None."""
    ports = service_ports(service)
    if not ports:
        return None
    host = child_name(app_name, service.name) + (f".{namespace}.svc" if namespace else "")
    return f"http://{host}:{ports[0].port}"


def child_metadata(
    app: Mapping[str, Any], service: Component, name: str | None = None, *, versioned: bool = True
) -> dict[str, Any]:
    """The metadata every child of a service (or job) has: its name (by default <app>-<service>), the app's
    namespace, the service's labels and a controller ownerReference to the app. `versioned=False` leaves the
    version label out: a child that is about the component, not its image (a NetworkPolicy, a route), is then
    not rewritten by every image change."""
    meta = app["metadata"]
    result: dict[str, Any] = {"name": name or child_name(meta["name"], service.name)}
    if meta.get("namespace"):
        result["namespace"] = meta["namespace"]
    result["labels"] = labels(meta["name"], service)
    if not versioned:
        result["labels"].pop(LABEL_VERSION, None)
    if meta.get("uid"):
        # Without a uid (an app rendered offline) no ownerReference can be right, so none is written.
        result["ownerReferences"] = [owner_reference(app)]
    return result


def owner_reference(app: Mapping[str, Any]) -> dict[str, Any]:
    """The controller ownerReference to the app (its metadata must have a uid) that everything Maestro makes for
    it carries: its children, its revisions, its config snapshots. The garbage collector deletes them with it."""
    meta = app["metadata"]
    return {
        "apiVersion": api.API_VERSION,
        "kind": api.KIND,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
