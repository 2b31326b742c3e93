"""A small, fast API client for the fault tests, on the official `kubernetes` client.

The judge must not be the code under test: the operator talks to the API server through pykube-ng's session
(maestro.kube), this client through the official client's connection pool, with the tests' own table of paths.
Hundreds of apps are created, edited and read per case, so it keeps to raw paths and raw JSON: one pool, no
discovery, no parsing into the client's models (and no kubectl process per call, which would make the machine,
not the operator, the thing measured). Errors surface as `ApiFailure` with the API server's message; an API
server that cannot be reached as `Unreachable`, an OSError.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import urllib3
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from maestro.render import kinds

USER = "faults-user"  # the field manager of the tests' own writes
POOL_SIZE = 16  # above the fleet helpers' 8 threads plus the cases' own, whatever the machine's core count

# kind -> (apiVersion, plural): what the tests know of the API, written out here rather than read from the
# operator. The child kinds' names come from render/kinds.py (the one list of them); their paths do not.
RESOURCES: dict[str, tuple[str, str]] = {
    "MicroserviceApp": ("maestro.dev/v1alpha1", "microserviceapps"),
    "Deployment": ("apps/v1", "deployments"),
    "Service": ("v1", "services"),
    "HorizontalPodAutoscaler": ("autoscaling/v2", "horizontalpodautoscalers"),
    "PodDisruptionBudget": ("policy/v1", "poddisruptionbudgets"),
    "NetworkPolicy": ("networking.k8s.io/v1", "networkpolicies"),
    "HTTPRoute": ("gateway.networking.k8s.io/v1", "httproutes"),
    "Ingress": ("networking.k8s.io/v1", "ingresses"),
    "Job": ("batch/v1", "jobs"),
    "CronJob": ("batch/v1", "cronjobs"),
    "Pod": ("v1", "pods"),
    "ConfigMap": ("v1", "configmaps"),
    "Secret": ("v1", "secrets"),
    "Namespace": ("v1", "namespaces"),
    "Event": ("v1", "events"),
}
CHILD_KINDS = kinds.KIND_NAMES
_unknown = set(CHILD_KINDS) - RESOURCES.keys()
if _unknown:  # a new child kind: the tests must learn its path too
    raise RuntimeError(f"tests/faults/client.py: no apiVersion and plural for {sorted(_unknown)}")


class _QuotedStrings(yaml.SafeDumper):
    """Every string double-quoted: YAML 1.1 would read some plain strings ("1e3", "on") as numbers or bools."""


_QuotedStrings.add_representer(
    str, lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", text, style='"')
)


def apply_patch(obj: dict[str, Any]) -> bytes:
    """obj as the YAML an apply patch is: characters beyond ASCII escaped the YAML way (\\U0001F600; JSON's
    surrogate pairs are no YAML escape), on one line per field (no folding)."""
    text: str = yaml.dump(obj, Dumper=_QuotedStrings, width=2**30, allow_unicode=False, sort_keys=False)
    return text.encode()


class ApiFailure(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class Unreachable(ConnectionError):
    """No answer from the API server (refused, reset, timed out): callers that wait for it catch OSError."""


def collection_path(kind: str, namespace: str | None) -> str:
    api_version, plural = RESOURCES[kind]
    prefix = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    return f"{prefix}/namespaces/{namespace}/{plural}" if namespace else f"{prefix}/{plural}"


class Client:
    def __init__(self, kubeconfig: Path, timeout: float = 30) -> None:
        configuration = k8s.Configuration()
        configuration.connection_pool_maxsize = POOL_SIZE
        # The official client reads the kubeconfig (server, TLS, token or exec plugin) and owns the pool; requests
        # go to that pool directly as raw JSON (its generated layer would copy each body and type each answer).
        self.api = k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
            str(kubeconfig), persist_config=False, client_configuration=configuration
        )
        self.configuration = configuration
        self.pool = self.api.rest_client.pool_manager
        self.timeout = timeout

    def raw(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        params: list[tuple[str, str]] | None = None,
        timeout: float | None = None,
    ) -> tuple[int, str, bytes]:
        """One request: (status, reason, body), whatever the status. Raises Unreachable without an answer."""
        headers = {"Accept": "application/json", "Content-Type": content_type}
        token = self.configuration.auth_settings().get("BearerToken")  # the client refreshes an expiring one
        value = token["value"] if token else None
        if token and value:
            headers[token["key"]] = value
        url = self.configuration.host.rstrip("/") + path + (f"?{urlencode(params)}" if params else "")
        try:
            response = self.pool.request(
                method,
                url,
                body=body if body is None or isinstance(body, bytes) else json.dumps(body),
                headers=headers,
                timeout=urllib3.Timeout(total=timeout or self.timeout),
            )
        except urllib3.exceptions.HTTPError as error:
            raise Unreachable(f"{method} {path}: {error}") from error
        return response.status, str(response.reason), response.data

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        params: list[tuple[str, str]] | None = None,
    ) -> Any:
        status, reason, data = self.raw(method, path, body, content_type=content_type, params=params)
        if status >= 400:
            try:
                payload = json.loads(data)
            except ValueError:
                raise ApiFailure(status, reason, data.decode(errors="replace")) from None
            raise ApiFailure(status, str(payload.get("reason")), str(payload.get("message")))
        return json.loads(data)

    def ready(self) -> bool:
        """The API server answers /readyz with 200."""
        try:
            status, _, _ = self.raw("GET", "/readyz", timeout=3)
        except Unreachable:
            return False
        return status == 200

    @staticmethod
    def path(kind: str, namespace: str | None, name: str | None = None) -> str:
        path = collection_path(kind, namespace)
        return f"{path}/{name}" if name else path

    def list(self, kind: str, namespace: str | None, selector: str | None = None) -> list[dict[str, Any]]:
        """Objects of a kind in a namespace (None: all namespaces), with apiVersion and kind set on each
        item (a list's items carry neither, a single GET does)."""
        params = [("labelSelector", selector)] if selector else []
        items: list[dict[str, Any]] = self.call("GET", self.path(kind, namespace), params=params)["items"]
        api_version = RESOURCES[kind][0]
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
                apply_patch(obj),
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
