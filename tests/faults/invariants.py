"""The whole-cluster check every fault case ends with.

In the case's namespace, each app is either
- converged: observedGeneration == generation, phase Ready, and its children are exactly the ones the operator
  renders from the current spec (same kinds and names), each in place (last applied from that very rendering,
  every rendered field still set), plus no more earlier runs of each job than its history limit keeps, or
- correctly Invalid: observedGeneration == generation, the spec really fails `api.validate_app` (or, for
  ChildRejected, the API server really refuses one of its rendered children: a dry-run apply), and nothing
  exists for it.
Across the cluster: every managed child has exactly one controller, an app that exists (same name and uid)
and wants it; no two children for one app, kind and service; no app keeps a finalizer or hangs in deletion.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

from maestro import render
from maestro.api import models as api
from maestro.controller import compare
from maestro.render import confighash
from tests.faults.client import CHILD_KINDS, Client

MANAGED = f"{render.LABEL_MANAGED_BY}={render.MANAGED_BY}"


def _controller(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [ref for ref in obj["metadata"].get("ownerReferences") or [] if ref.get("controller")]


def _config_hashes(client: Client, app: Mapping[str, Any], spec: api.MicroserviceAppSpec) -> dict[str, str]:
    """What reconcile.config_hashes computes, read through the test's own client."""
    namespace = app["metadata"]["namespace"]
    hashes: dict[str, str] = {}
    for service in render.effective_components(spec).values():
        if not service.config_from:
            continue
        sources: dict[str, dict[str, Any] | None] = {}
        for source in service.config_from:
            kind, ref = ("ConfigMap", source.config_map) if source.config_map else ("Secret", source.secret)
            obj = client.get(kind, namespace, str(ref))
            data: dict[str, Any] | None = None
            if obj is not None:
                data = dict(obj.get("data") or {})
                if kind == "ConfigMap":
                    data.update({f"binary:{k}": v for k, v in (obj.get("binaryData") or {}).items()})
            sources[confighash.source_key(kind, str(ref))] = data
        hashes[service.name] = confighash.config_hash(sources)
    return hashes


def desired_children(client: Client, app: Mapping[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """(kind, name) -> the child the operator should have applied for the app's current spec.
    Raises api.SpecError for an invalid spec."""
    spec = api.validate_app(app["metadata"]["name"], app.get("spec"))
    children = render.render_app(app, config_hashes=_config_hashes(client, app, spec))
    return {(c["kind"], c["metadata"]["name"]): compare.with_hash(c) for c in children}


def first_difference(observed: Any, desired: Any, path: str = "") -> str:
    """Where `observed` first lacks a value of `desired` (for the failure message), as compare.contains sees it."""
    if isinstance(desired, Mapping) and isinstance(observed, Mapping):
        for key, value in desired.items():
            if key not in observed:
                return f"{path}.{key} (missing)"
            if not compare.contains({key: observed[key]}, {key: value}):
                return first_difference(observed[key], value, f"{path}.{key}")
    if isinstance(desired, list) and isinstance(observed, list) and len(desired) == len(observed):
        for index, (o, d) in enumerate(zip(observed, desired, strict=True)):
            if not compare.contains(o, d):
                return first_difference(o, d, f"{path}[{index}]")
    return f"{path or '.'}: {observed!r} != {desired!r}"[:300]


def problems(client: Client, namespace: str) -> list[str]:
    """Everything wrong in the namespace (and with managed children anywhere); empty when all is well."""
    found: list[str] = []
    apps = client.list("MicroserviceApp", namespace)
    children = [c for kind in CHILD_KINDS for c in client.list(kind, namespace, MANAGED)]
    by_uid = {app["metadata"]["uid"]: app for app in apps}
    owned: dict[str, dict[tuple[str, str], dict[str, Any]]] = {uid: {} for uid in by_uid}

    # Children: one controller, an existing app of the same name, no duplicate per (app, kind, service).
    slots: Counter[tuple[str, str, str]] = Counter()
    for child in children:
        meta = child["metadata"]
        label = f"{child['kind']}/{meta['name']}"
        controllers = _controller(child)
        if len(controllers) != 1:
            found.append(f"{label}: {len(controllers)} controller ownerReferences")
            continue
        ref = controllers[0]
        app = by_uid.get(ref["uid"])
        if app is None or ref.get("kind") != api.KIND:
            found.append(f"{label}: orphaned (its owner {ref.get('kind')}/{ref.get('name')} is gone)")
            continue
        if app["metadata"]["name"] != (meta.get("labels") or {}).get(render.LABEL_INSTANCE):
            found.append(f"{label}: instance label does not name its owner {app['metadata']['name']}")
        owned[ref["uid"]][(child["kind"], meta["name"])] = child
        component = (meta.get("labels") or {}).get(render.LABEL_COMPONENT, "")
        if child["kind"] != "Job":  # a job keeps earlier runs: _app_problems counts them
            slots[(ref["uid"], child["kind"], component)] += 1
    found += [
        f"{kind} of {uid}/{component}: {n} copies" for (uid, kind, component), n in slots.items() if n > 1
    ]

    for app in apps:
        found += _app_problems(client, app, owned[app["metadata"]["uid"]])
    found += _cluster_problems(client)
    return found


def _app_problems(
    client: Client, app: Mapping[str, Any], owned: dict[tuple[str, str], dict[str, Any]]
) -> list[str]:
    meta = app["metadata"]
    name = meta["name"]
    status = app.get("status") or {}
    found = []
    if meta.get("finalizers"):
        found.append(f"app {name}: finalizers {meta['finalizers']}")
    if meta.get("deletionTimestamp"):
        found.append(f"app {name}: stuck in deletion")
    if status.get("observedGeneration") != meta.get("generation"):
        return [
            *found,
            f"app {name}: generation {meta.get('generation')} not observed yet ({status.get('phase')})",
        ]
    try:
        desired = desired_children(client, app)
    except api.SpecError as error:
        if status.get("phase") != "Invalid":
            found.append(f"app {name}: phase {status.get('phase')} for an invalid spec ({error})")
        if owned:
            found.append(f"app {name}: invalid, yet owns {sorted(owned)}")
        return found
    if status.get("phase") == "Invalid" and _reason(status) == "ChildRejected":
        # Beyond the models (free-form fields): correct only if the API server does refuse a child.
        if not any(client.rejects(child) for child in desired.values()):
            found.append(f"app {name}: ChildRejected, yet the API server accepts every child")
        if owned:
            found.append(f"app {name}: invalid, yet owns {sorted(owned)}")
        return found
    if status.get("phase") != "Ready":
        return [*found, f"app {name}: phase {status.get('phase')}, not Ready"]
    # Earlier runs of a job still in the spec are kept up to its history limit (the current run counts).
    spec = api.validate_app(name, app.get("spec"))
    limits = {
        job.name: (job.history_limit or render.DEFAULT_HISTORY_LIMIT) - 1
        for job in spec.jobs or []
        if job.schedule is None
    }
    earlier = Counter(
        str((child["metadata"].get("labels") or {}).get(render.LABEL_COMPONENT))
        for key, child in owned.items()
        if key[0] == "Job" and key not in desired
    )
    for job_name, count in earlier.items():
        if count > limits.get(job_name, 0):
            found.append(
                f"app {name}: {count} earlier runs of job {job_name} (keeps {limits.get(job_name, 0)})"
            )
    owned = {key: child for key, child in owned.items() if key[0] != "Job" or key in desired}
    if set(owned) != set(desired):
        found.append(
            f"app {name}: children missing {sorted(set(desired) - set(owned))}, "
            f"unwanted {sorted(set(owned) - set(desired))}"
        )
    for key, child in desired.items():
        if key in owned and not compare.in_place(child, owned[key]):
            found.append(
                f"app {name}: {key[0]}/{key[1]} differs from its rendering at {first_difference(owned[key], child)}"
            )
    return found


def _reason(status: Mapping[str, Any]) -> str | None:
    ready = [c for c in status.get("conditions") or [] if c.get("type") == "Ready"]
    return str(ready[0].get("reason")) if ready else None


def _cluster_problems(client: Client) -> list[str]:
    """Managed children anywhere whose owner app is gone; apps anywhere with finalizers. Namespaces being
    deleted are left to the namespace controller."""
    terminating = {
        ns["metadata"]["name"]
        for ns in client.list("Namespace", None)
        if ns["metadata"].get("deletionTimestamp")
    }
    apps = [a for a in client.list("MicroserviceApp", None) if a["metadata"]["namespace"] not in terminating]
    uids = {a["metadata"]["uid"] for a in apps}
    found = [
        f"app {a['metadata']['namespace']}/{a['metadata']['name']}: finalizers {a['metadata']['finalizers']}"
        for a in apps
        if a["metadata"].get("finalizers")
    ]
    for kind in CHILD_KINDS:
        for child in client.list(kind, None, MANAGED):
            meta = child["metadata"]
            if meta["namespace"] in terminating:
                continue
            refs = _controller(child)
            if not refs or refs[0].get("uid") not in uids:
                found.append(f"{kind} {meta['namespace']}/{meta['name']}: orphaned")
    return found


def wait_converged(client: Client, namespace: str, *, timeout: float, what: str = "all apps") -> float:
    """Poll `problems` until there are none; return the seconds it took. Fail listing what is still wrong."""
    started = time.monotonic()
    last: list[str] = []
    while True:
        try:
            last = problems(client, namespace)
        except OSError as error:  # e.g. the API server is still coming back
            last = [f"API unreachable: {error}"]
        if not last:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            shown = "\n  ".join(last[:40])
            raise AssertionError(
                f"{what}: not converged after {timeout:.0f}s; {len(last)} problems:\n  {shown}"
            )
        time.sleep(1.0)


def hold_converged(client: Client, namespace: str, *, seconds: float, what: str = "all apps") -> None:
    """Converged, and still so at every check for `seconds`: a loop that keeps making and losing objects (an
    app's children applied after the app was deleted, then collected: bug 11) can pass a single check."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = problems(client, namespace)
        assert not found, f"{what}: converged, then not: " + "; ".join(found[:10])
        time.sleep(0.5)
