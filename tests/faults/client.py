"""A small, fast API client for the fault tests (one HTTP session, no kubectl process per call).

Hundreds of apps are created, edited and read per case: a kubectl subprocess per call would make the machine,
not the operator, the thing measured. Errors surface as `ApiFailure` with the API server's message.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pykube

from maestro.kube import client as kube
from maestro.render import kinds

KINDS = kube.KINDS  # the operator's own table of paths (MicroserviceApp, children, ConfigMap, Secret)
CHILD_KINDS = kinds.KIND_NAMES
USER = "faults-user"  # the field manager of the tests' own writes


class ApiFailure(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class Client:
    def __init__(self, kubeconfig: Path, timeout: float = 30) -> None:
        self.http = pykube.HTTPClient(pykube.KubeConfig.from_file(str(kubeconfig)), timeout=timeout)
        self.timeout = timeout

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        params: list[tuple[str, str]] | None = None,
    ) -> Any:
        response = self.http.session.request(
            method,
            self.http.url.rstrip("/") + path,
            params=params or [],
            data=None if body is None else json.dumps(body),
            headers={"Accept": "application/json", "Content-Type": content_type},
            timeout=self.timeout,
        )
        if response.status_code >= 400:
            try:
                payload = response.json()
                raise ApiFailure(
                    response.status_code, str(payload.get("reason")), str(payload.get("message"))
                )
            except ValueError:
                raise ApiFailure(response.status_code, str(response.reason), response.text) from None
        return response.json()

    @staticmethod
    def path(kind: str, namespace: str | None, name: str | None = None) -> str:
        prefix, plural = KINDS[kind]
        path = f"{prefix}/namespaces/{namespace}/{plural}" if namespace else f"{prefix}/{plural}"
        return f"{path}/{name}" if name else path

    def list(self, kind: str, namespace: str | None, selector: str | None = None) -> list[dict[str, Any]]:
        """Objects of a kind in a namespace (None: all namespaces), with apiVersion and kind set on each
        item (a list's items carry neither, a single GET does)."""
        params = [("labelSelector", selector)] if selector else []
        items: list[dict[str, Any]] = self.call("GET", self.path(kind, namespace), params=params)["items"]
        api_version = KINDS[kind][0].removeprefix("/apis/").removeprefix("/api/")
        for item in items:
            item["apiVersion"] = api_version
            item["kind"] = kind
        return items

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            obj: dict[str, Any] = self.call("GET", self.path(kind, namespace, name))
        except ApiFailure as failure:
            if failure.status == 404:
                return None
            raise
        return obj

    def create(self, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
        created: dict[str, Any] = self.call("POST", self.path(obj["kind"], namespace), obj)
        return created

    def replace(self, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
        """PUT: fails with 409 when metadata.resourceVersion is stale (optimistic concurrency)."""
        path = self.path(obj["kind"], namespace, obj["metadata"]["name"])
        replaced: dict[str, Any] = self.call("PUT", path, obj)
        return replaced

    def merge_patch(
        self, kind: str, namespace: str, name: str, patch: dict[str, Any], *, strategic: bool = False
    ) -> dict[str, Any]:
        """A JSON merge patch, or a strategic merge patch (built-in kinds: lists merge by their key)."""
        kind_of_patch = "strategic-merge-patch" if strategic else "merge-patch"
        path = self.path(kind, namespace, name)
        patched: dict[str, Any] = self.call(
            "PATCH", path, patch, content_type=f"application/{kind_of_patch}+json"
        )
        return patched

    def rejects(self, obj: dict[str, Any]) -> str | None:
        """Why the API server would refuse to store obj (a server-side apply, dry run), or None."""
        meta = obj["metadata"]
        try:
            self.call(
                "PATCH",
                self.path(obj["kind"], meta["namespace"], meta["name"]),
                obj,
                content_type="application/apply-patch+yaml",
                params=[("fieldManager", USER), ("force", "true"), ("dryRun", "All")],
            )
        except ApiFailure as failure:
            # A child the API server cannot type is a 500: "failed to create typed patch object" (a wrong type),
            # "unable to convert unstructured object" (a malformed quantity).
            untyped = ("failed to create typed patch object", "unable to convert unstructured object")
            if failure.status in (400, 422) or any(marker in failure.message for marker in untyped):
                return failure.message
            raise
        return None

    def delete(self, kind: str, namespace: str, name: str) -> None:
        try:
            self.call("DELETE", self.path(kind, namespace, name), {"propagationPolicy": "Background"})
        except ApiFailure as failure:
            if failure.status != 404:
                raise
