"""Thin I/O against the Kubernetes API: server-side apply, list owned children, prune, read config sources,
patch the app's status, post events. No decisions are made here (the controller makes them).

Plain REST calls through pykube-ng's authenticated HTTP session (KUBECONFIG or the in-cluster service
account): the few kinds Maestro writes are known up front, so no discovery is needed. Errors surface as
`ApiError`.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pykube
import requests
from pydantic_core import from_json

from maestro import metrics, render
from maestro.api import models as api
from maestro.api import timestamps
from maestro.render import kinds

FIELD_MANAGER = "maestro"
REQUEST_TIMEOUT = 30  # seconds; a hung request is retried by the next pass rather than blocking a worker


def _prefix(api_version: str) -> str:
    return f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"


# kind -> (API path prefix, plural) of everything Maestro reads or writes: the child kinds (render/kinds.py),
# the config sources a pass hashes, the pods of a failed job run (their termination message), the ReplicaSets
# and pods of a Deployment in the middle of a rollout (controller/rollout.py), the app's revisions
# (controller/revisions.py), and the app.
KINDS: dict[str, tuple[str, str]] = {
    **{child.kind: (_prefix(child.api_version), child.plural) for child in kinds.CHILD_KINDS},
    "ConfigMap": ("/api/v1", "configmaps"),
    "Secret": ("/api/v1", "secrets"),
    "Pod": ("/api/v1", "pods"),
    "ReplicaSet": ("/apis/apps/v1", "replicasets"),
    "ControllerRevision": ("/apis/apps/v1", "controllerrevisions"),
    api.KIND: (f"/apis/{api.API_VERSION}", api.PLURAL),
}
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"  # set by the Job controller on the pods of a Job

_client: pykube.HTTPClient | None = None
_lock = threading.Lock()


class ApiError(Exception):
    """The API server answered with an error status; `message` is its Status message."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


def load_config(kubeconfig: str | None = None, context: str | None = None) -> None:
    """Use the kubeconfig file and context named (the CLI's --kubeconfig and --context), else the in-cluster service
    account when running in a pod, else the current kubeconfig (KUBECONFIG, ~/.kube/config)."""
    global _client
    config = pykube.KubeConfig.from_file(kubeconfig) if kubeconfig else pykube.KubeConfig.from_env()
    if context:
        if context not in config.contexts:
            raise ValueError(f"context {context!r} not found in the kubeconfig")
        config.set_current_context(context)
    with _lock:
        _client = pykube.HTTPClient(config, timeout=REQUEST_TIMEOUT)
        # requests looks for ~/.netrc and reads the proxy variables on every request (docs/benchmarks.md). The
        # kubeconfig authenticates, so .netrc is never wanted; the proxies (HTTPS_PROXY, NO_PROXY) are read
        # once, here.
        _client.session.proxies = requests.utils.get_environ_proxies(_client.url)
        _client.session.trust_env = False


def default_namespace() -> str:
    """The namespace of the kubeconfig's current context ("default" when it names none)."""
    return str(client().config.namespace)


def client() -> pykube.HTTPClient:
    if _client is None:
        load_config()
    assert _client is not None
    return _client


def _path(kind: str, namespace: str, name: str | None = None, subresource: str | None = None) -> str:
    path = _collection(kind, namespace)
    if name:
        path += f"/{name}"
    if subresource:
        path += f"/{subresource}"
    return path


def request(
    method: str,
    path: str,
    *,
    body: Any = None,
    query: list[tuple[str, str]] | None = None,
    content_type: str = "application/json",
    accept: str = "application/json",
) -> Any:
    """One call to the API server at `path` (e.g. "/api/v1/namespaces/ns/pods"): `body` sent as JSON (as given
    when str or bytes), the answer's JSON returned. An error status raises ApiError (404 included)."""
    http = client()
    response = http.session.request(
        method,
        http.url.rstrip("/") + path,
        params=query or [],
        data=None if body is None else (body if isinstance(body, str | bytes) else json.dumps(body)),
        headers={"Accept": accept, "Content-Type": content_type},
        timeout=REQUEST_TIMEOUT,
    )
    _raise_for_status(response)
    return decode(response.content)


def decode(body: bytes) -> Any:
    """The API server's JSON. pydantic's parser takes 0.6-0.8 of the time `json.loads` takes on a listing's
    pages, and decoding them is most of a start's CPU (docs/benchmarks.md, stop 35)."""
    return from_json(body)


def _raise_for_status(response: requests.Response) -> None:
    if response.status_code >= 400:
        try:
            payload = response.json()
            message = str(payload.get("message", response.text))
            reason = str(payload.get("reason", response.reason))
        except ValueError:
            message, reason = response.text, str(response.reason)
        raise ApiError(response.status_code, reason, message)


def api_version(kind: str) -> str:
    """The apiVersion of a kind Maestro reads or writes ("apps/v1", "v1", ...)."""
    return KINDS[kind][0].removeprefix("/apis/").removeprefix("/api/")


def get(kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    """One object, or None when it does not exist."""
    try:
        obj: dict[str, Any] = request("GET", _path(kind, namespace, name))
    except ApiError as error:
        if error.status == 404:
            return None
        raise
    return obj


def not_served(kind: str, error: ApiError) -> bool:
    """Whether a 404 says the kind itself is not served (an optional child kind whose CRD is not installed)."""
    child = kinds.BY_KIND.get(kind)
    return error.status == 404 and child is not None and child.optional


def list_objects(
    kind: str, namespace: str, selector: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """Objects of one kind in a namespace, optionally by label selector; none of an optional child kind that the
    cluster does not serve."""
    try:
        result = request("GET", _path(kind, namespace), query=_selector_query(selector))
    except ApiError as error:
        if not_served(kind, error):
            return []
        raise
    items: list[dict[str, Any]] = result.get("items") or []
    for item in items:  # the items of a list carry neither; a single GET does
        item.setdefault("apiVersion", api_version(kind))
        item.setdefault("kind", kind)
    return items


def _selector_query(selector: Mapping[str, str] | None) -> list[tuple[str, str]]:
    return [("labelSelector", ",".join(f"{k}={v}" for k, v in selector.items()))] if selector else []


def list_pages(
    kind: str,
    namespace: str | None = None,
    selector: Mapping[str, str] | None = None,
    *,
    page: int = 100,
    metadata_only: bool = False,
) -> Listing:
    """Every object of one kind in a namespace or (None) the whole cluster, fetched `page` at a time so that
    a large listing never sits in memory whole (the process keeps the high-water mark). `metadata_only`: each
    object's metadata alone (the API server's PartialObjectMetadata), for a caller that needs no spec or status."""
    return Listing(kind, namespace, selector, page=page, metadata_only=metadata_only)


# What to ask for to get a listing's objects as PartialObjectMetadata: their metadata only.
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"


class Listing:
    """An iterable listing (see `list_pages`). Once iterated, `resource_version` is the list's own: a watch
    from it sees every change made after the list (childwatch.py)."""

    def __init__(
        self,
        kind: str,
        namespace: str | None,
        selector: Mapping[str, str] | None,
        *,
        page: int,
        metadata_only: bool = False,
    ) -> None:
        self.kind, self.namespace, self.selector, self.page = kind, namespace, selector, page
        self.accept = METADATA_LIST if metadata_only else "application/json"
        self.resource_version = ""
        self.served = True  # False: an optional child kind the cluster does not serve (nothing listed)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        token = ""
        while True:
            query = [("limit", str(self.page))] + ([("continue", token)] if token else [])
            try:
                result = request(
                    "GET",
                    _collection(self.kind, self.namespace),
                    query=query + _selector_query(self.selector),
                    accept=self.accept,
                )
            except ApiError as error:
                if not token and not_served(self.kind, error):
                    self.served = False
                    return
                raise
            for item in result.get("items") or []:
                item.setdefault("kind", self.kind)  # the items of a list carry no kind
                yield item
            # Every page of one listing is a snapshot at the first page's version.
            self.resource_version = (result.get("metadata") or {}).get("resourceVersion") or ""
            token = (result.get("metadata") or {}).get("continue") or ""
            if not token:
                return


class Gone(Exception):
    """The resourceVersion to watch from is too old (410 Gone): the caller lists again."""


# Seconds a watch stream stays open before the API server ends it (the caller reopens it): a stuck stream
# cannot go unnoticed for longer. The read timeout adds a margin, for a stream the server never ends.
WATCH_SECONDS = 300


def watch(
    kind: str, namespace: str | None, resource_version: str, opened: Callable[[], None] = lambda: None
) -> Iterator[dict[str, Any]]:
    """The watch events of one kind (in a namespace, or None: the whole cluster) after `resource_version`,
    bookmarks included, until the API server ends the stream. Raises Gone when the version is too old.
    `opened` is called once the API server has accepted the watch."""
    query = [
        ("watch", "1"),
        ("resourceVersion", resource_version),
        ("allowWatchBookmarks", "true"),
        ("timeoutSeconds", str(WATCH_SECONDS)),
    ]
    http = client()
    url = http.url.rstrip("/") + _collection(kind, namespace)
    with http.session.get(
        url, params=query, stream=True, timeout=(REQUEST_TIMEOUT, WATCH_SECONDS + 30)
    ) as response:
        if response.status_code == 410:
            raise Gone(response.text)
        _raise_for_status(response)
        opened()
        # A watch response is chunked, one event per chunk: a large chunk size does not hold events back.
        for line in response.iter_lines(chunk_size=65536):
            if not line:
                continue
            event: dict[str, Any] = decode(line)
            if event.get("type") == "ERROR":  # the stream's end, with a Status
                status = event.get("object") or {}
                if status.get("code") == 410:
                    raise Gone(str(status.get("message")))
                raise ApiError(
                    int(status.get("code") or 500), str(status.get("reason")), str(status.get("message"))
                )
            yield event


def _collection(kind: str, namespace: str | None) -> str:
    prefix, plural = KINDS[kind]
    return f"{prefix}/namespaces/{namespace}/{plural}" if namespace else f"{prefix}/{plural}"


def owned_children(app: Mapping[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """The app's children, by (kind, name): objects with the app's labels and a controller ownerReference
    to this very app (its uid)."""
    meta = app["metadata"]
    uid = meta.get("uid")
    children: dict[tuple[str, str], dict[str, Any]] = {}
    for kind in kinds.KIND_NAMES:
        for obj in list_objects(kind, meta["namespace"], render.owned_labels(meta["name"])):
            if controller_uid(obj) == uid:
                children[(kind, obj["metadata"]["name"])] = obj
    return children


def resource_version(obj: Mapping[str, Any]) -> int | None:
    """metadata.resourceVersion as a number (an etcd revision: versions of one object grow), None if not one."""
    return version_number(str((obj.get("metadata") or {}).get("resourceVersion")))


def version_number(value: str) -> int | None:
    """A resourceVersion (an object's or a listing's) as a number, None if not one. The API server's versions
    are etcd revisions, one counter for every write: an object written after a listing has a larger one."""
    return int(value) if value.isdigit() else None


def older(version: int | None, than: int | None) -> bool:
    """Whether one resourceVersion of an object is older than another (unknown when either is not a number)."""
    return version is not None and than is not None and version < than


def controller_uid(obj: Mapping[str, Any]) -> str | None:
    """The uid of the object's controller (the controller ownerReference), or None."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


def apply(obj: Mapping[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
    """Server-side apply one object as field manager `maestro`, taking over fields that another manager
    changed by hand (force): Maestro's fields are Maestro's. Fields it does not list are left to others.
    With `dry_run`, the API server validates and admits it but stores nothing."""
    meta = obj["metadata"]
    if not dry_run:  # the metric counts writes; a dry run stores nothing
        metrics.applied(obj["kind"])
    result: dict[str, Any] = request(
        "PATCH",
        _path(obj["kind"], meta["namespace"], meta["name"]),
        body=apply_body(obj),
        query=[("fieldManager", FIELD_MANAGER), ("force", "true"), *([("dryRun", "All")] if dry_run else [])],
        content_type="application/apply-patch+yaml",
    )
    return result


# The API server reads an apply patch as YAML. JSON's escaped surrogate pair for a character beyond the BMP
# (an emoji in an env value) is an "invalid Unicode character escape" there, so characters go as UTF-8; but
# YAML refuses these raw ("control characters are not allowed") or reads them as line breaks (U+0085,
# U+2028, U+2029), so they stay \u escapes (valid in YAML).
_YAML_UNPRINTABLE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")


def apply_body(obj: Mapping[str, Any]) -> bytes:
    """The object as an apply patch the API server's YAML parser takes whatever its strings hold."""
    text = json.dumps(obj, ensure_ascii=False)
    return _YAML_UNPRINTABLE.sub(lambda match: f"\\u{ord(match.group()):04x}", text).encode()


def delete(kind: str, namespace: str, name: str, uid: str | None = None) -> None:
    """Delete one object (background propagation); with `uid`, only that very object. Gone already is fine."""
    body: dict[str, Any] = {"propagationPolicy": "Background"}
    if uid:
        body["preconditions"] = {"uid": uid}
    try:
        request("DELETE", _path(kind, namespace, name), body=body)
    except ApiError as error:
        if error.status not in (404, 409):
            raise


def run_pods(namespace: str, run: str) -> list[dict[str, Any]]:
    """The pods of one Job (a job's run), by the label the Job controller gives them."""
    return list_objects("Pod", namespace, {JOB_NAME_LABEL: run})


def replica_sets(namespace: str, selector: Mapping[str, str]) -> list[dict[str, Any]]:
    """The ReplicaSets with those labels (a Deployment's, by its pods' selector labels)."""
    return list_objects("ReplicaSet", namespace, selector)


def pods(namespace: str, selector: Mapping[str, str]) -> list[dict[str, Any]]:
    """The pods with those labels (a ReplicaSet's: its Deployment's selector and its pod-template-hash)."""
    return list_objects("Pod", namespace, selector)


def revisions(app: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The app's ControllerRevisions (controller/revisions.py): by the app's label, controlled by this very
    app (not a namesake deleted and created again)."""
    meta = app["metadata"]
    listed = list_objects("ControllerRevision", meta["namespace"], {f"{api.GROUP}/app": meta["name"]})
    return [obj for obj in listed if controller_uid(obj) == meta.get("uid")]


def snapshot_copies(app: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The app's config snapshots (render/snapshot.py): ConfigMaps and Secrets with its label, controlled by it."""
    meta = app["metadata"]
    selector = {f"{api.GROUP}/app": meta["name"], "app.kubernetes.io/managed-by": render.MANAGED_BY}
    found = [
        obj for kind in ("ConfigMap", "Secret") for obj in list_objects(kind, meta["namespace"], selector)
    ]
    return [obj for obj in found if controller_uid(obj) == meta.get("uid")]


def create(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Create one object (a ControllerRevision, a config snapshot: written once, never changed)."""
    meta = obj["metadata"]
    result: dict[str, Any] = request("POST", _path(obj["kind"], meta["namespace"]), body=dict(obj))
    return result


def replace_spec(app: Mapping[str, Any], spec: Mapping[str, Any]) -> dict[str, Any]:
    """Replace the app's whole spec (`maestro rollback`), unless the app changed since it was read (the
    resourceVersion test fails the patch: 422)."""
    meta = app["metadata"]
    operations = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": meta["resourceVersion"]},
        {"op": "replace", "path": "/spec", "value": dict(spec)},
    ]
    result: dict[str, Any] = request(
        "PATCH",
        _path(api.KIND, meta["namespace"], meta["name"]),
        body=operations,
        content_type="application/json-patch+json",
    )
    return result


def patch_status(app: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-merge-patch the app's .status through the status subresource."""
    meta = app["metadata"]
    result: dict[str, Any] = request(
        "PATCH",
        _path(api.KIND, meta["namespace"], meta["name"], "status"),
        body={"status": dict(patch)},
        content_type="application/merge-patch+json",
    )
    return result


def list_apps(namespace: str) -> list[dict[str, Any]]:
    return list_objects(api.KIND, namespace)


def post_event(app: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
    """Post a core/v1 Event about the app (used where kopf's own posting is unavailable)."""
    meta = app["metadata"]
    stamp = timestamps.now()
    body = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": api.API_VERSION,
            "kind": api.KIND,
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid"),
        },
        "type": type_,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": FIELD_MANAGER},
        "reportingComponent": FIELD_MANAGER,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }
    request("POST", f"/api/v1/namespaces/{meta['namespace']}/events", body=body)


def list_events(namespace: str, kind: str, name: str) -> list[dict[str, Any]]:
    """The core/v1 Events of a namespace about one object (by the involved object's kind and name)."""
    selector = f"involvedObject.kind={kind},involvedObject.name={name}"
    result = request("GET", f"/api/v1/namespaces/{namespace}/events", query=[("fieldSelector", selector)])
    items: list[dict[str, Any]] = result.get("items") or []
    return items
