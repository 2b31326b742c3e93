"""The mark a settled pass leaves in its app's status (`status.settledMark`), so that a restarted operator can
tell which apps a pass would find as the last one left them.

A pass is settled when it found nothing to do and nothing to come back for: the app Ready, no child written or
pruned, no rollout watched, no ConfigMap or Secret read (their data is not in the mark). Its mark is a digest of
the operator's code, the app (uid, generation, labels, annotations), the status it wrote, and the app's
children as that pass read them (their projections' digests, projection.py: not their resourceVersions). The
spec is in it through the generation: the API server raises an app's generation at every change of its spec
(the CRD has a status subresource), so one uid and generation name one spec.

At a start, an app whose mark equals the digest of what the operator holds then (the app as listed, the child
index just filled by a listing) would get a pass over the same code, app, status and children: one that does
nothing (a pass is level-triggered and idempotent). It gets none (runtime/operator.py). A new operator version,
a spec, label or status edit, a child changed or deleted while the operator was down: each changes the digest,
and the app gets its pass as before.

The mark rides on status writes that happen anyway. It is written alone only when the stored one is another
operator version's (or none): once per app after an upgrade. An app whose children changed since in a way that
left its status alone keeps an older mark of the same version, and simply gets its pass at the next start.
Pure.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from maestro.controller.projection import projection_digest, projection_json

FIELD = "settledMark"


# What a mark hashes of one child: kind, name, uid and the digest of its projection (projection.py). The child
# index keeps that digest: a start hashes it without unpacking or decoding a child (docs/benchmarks.md, stop 33).
ChildState = tuple[str, str, str, bytes]


def child_state(child: Mapping[str, Any]) -> ChildState:
    """What a mark hashes of a child read as an object."""
    meta = child.get("metadata") or {}
    kind, name, uid = str(child.get("kind")), str(meta.get("name")), str(meta.get("uid"))
    return kind, name, uid, projection_digest(projection_json(child))


def digest(
    code: str, app: Mapping[str, Any], status: Mapping[str, Any], children: Iterable[Mapping[str, Any]]
) -> str:
    """The mark of one app's state: `status` as the operator compares it (status.own: without the mark
    itself), `children` as a pass reads them (from the child index, or listed). It starts with `code`."""
    return digest_of_states(code, app, status, (child_state(child) for child in children))


def digest_of_states(
    code: str, app: Mapping[str, Any], status: Mapping[str, Any], children: Iterable[ChildState]
) -> str:
    """`digest`, of the children as the child index keeps them (ChildIndex.states): the same mark."""
    return digest_of_parts(code, app_state(code, app, status), children)


def app_state(code: str, app: Mapping[str, Any], status: Mapping[str, Any]) -> bytes:
    """What a mark hashes of the app itself, as canonical JSON (sorted keys: the status a pass wrote and the one
    listed later come in different orders). A start computes it as each app is listed, while the children are
    still being listed (runtime/operator.py). Not the spec: its generation stands for it, at a fraction of the
    cost (docs/benchmarks.md, stop 35)."""
    meta = app.get("metadata") or {}
    state = {
        "code": code,
        "app": {
            "uid": meta.get("uid"),
            "generation": meta.get("generation"),
            "labels": meta.get("labels"),
            "annotations": meta.get("annotations"),
        },
        "status": status,
    }
    return json.dumps(state, sort_keys=True, separators=(",", ":"), default=str).encode()


def digest_of_parts(code: str, app: bytes, children: Iterable[ChildState]) -> str:
    """The mark of an app's state (`app_state`) and its children (ChildIndex.states)."""
    hashed = hashlib.sha256(app)
    # NUL parts the fields: neither a kind, a name nor a uid holds one, and the digest, last, has a fixed length.
    for kind, name, uid, projected in sorted(children, key=lambda entry: entry[:3]):
        hashed.update(b"\0".join((b"", kind.encode(), name.encode(), uid.encode(), projected)))
    return f"{code}-{hashed.hexdigest()[:24]}"


def same_code(stored: object, mark: str) -> bool:
    """Whether a stored mark was written by an operator of the same code as `mark` (a mark of another is stale
    for good). The digest after the code is hex: the last dash parts them."""
    return isinstance(stored, str) and stored.rpartition("-")[0] == mark.rpartition("-")[0]
