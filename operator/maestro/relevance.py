"""Which watch events can change what a pass does, so that the others start no pass at all.

Most events the operator receives cannot change anything a pass would do: the controller manager rewrites a
Deployment's status at every step of a rollout (timestamps, ready counts of old ReplicaSets), the HPA and PDB
controllers rewrite their own status, and every write Maestro makes comes back to it as an event. Before this
filter, about 90% of passes wrote nothing (docs/benchmarks.md).

A pass reads from a child only its metadata (ownership, the applied-hash annotation), its spec (whether a desired
field was edited by hand) and, for a Deployment, the status fields that status.py uses. The `projection` keeps
exactly those, and `SeenChildren` remembers one short digest of it per child uid: an event whose digest is the
one seen last cannot change the outcome of a pass. Memory: one 16-byte digest per child.

For the app itself the test is level-triggered and needs no memory: a pass is due while
`status.observedGeneration` lags `metadata.generation` (a spec change not yet handled); Maestro's own status
writes leave the generation alone and so start nothing.

Who calls it: handlers.py (events), reconcile.py (records what its applies returned).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping
from typing import Any

# The metadata a pass looks at: ownership and conflicts, the applied hash, hand edits of labels/annotations.
_METADATA_FIELDS = ("generation", "labels", "annotations", "ownerReferences", "deletionTimestamp")
# The Deployment status fields status.py reads (availability, rollout progress, failures, replica counts).
_DEPLOYMENT_STATUS_FIELDS = (
    "observedGeneration",
    "replicas",
    "updatedReplicas",
    "readyReplicas",
    "availableReplicas",
    "unavailableReplicas",
)
# Of a condition, what status.py reads: not its timestamps, which change at every step of a rollout.
_CONDITION_FIELDS = ("type", "status", "reason", "message")


def projection(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What of a child a pass can act on; two versions with the same projection lead to the same pass."""
    meta = obj.get("metadata") or {}
    result: dict[str, Any] = {
        "kind": obj.get("kind"),
        "metadata": {key: meta.get(key) for key in _METADATA_FIELDS},
        "spec": obj.get("spec"),
    }
    if obj.get("kind") == "Deployment":
        status = obj.get("status") or {}
        projected = {key: status.get(key) for key in _DEPLOYMENT_STATUS_FIELDS}
        projected["conditions"] = [
            {key: condition.get(key) for key in _CONDITION_FIELDS}
            for condition in status.get("conditions") or []
            # Its message carries a ReplicaSet name and changes as the rollout goes; only the reason matters.
            if condition.get("type") != "Progressing" or condition.get("reason") == "ProgressDeadlineExceeded"
        ]
        result["status"] = projected
    return result


def digest(obj: Mapping[str, Any]) -> bytes:
    encoded = json.dumps(projection(obj), sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.blake2b(encoded, digest_size=16).digest()


class SeenChildren:
    """The digest of the last version seen of each child, by uid (thread-safe: handler threads share it)."""

    def __init__(self) -> None:
        self._digests: dict[str, bytes] = {}
        self._guard = threading.Lock()

    def record(self, obj: Mapping[str, Any]) -> bool:
        """Remember this version; True when it differs from the last one seen (or none was)."""
        uid = (obj.get("metadata") or {}).get("uid")
        if not uid:
            return True
        new = digest(obj)
        with self._guard:
            old = self._digests.get(uid)
            self._digests[uid] = new
        return old != new

    def forget(self, obj: Mapping[str, Any]) -> None:
        uid = str((obj.get("metadata") or {}).get("uid"))
        with self._guard:
            self._digests.pop(uid, None)

    def __len__(self) -> int:
        return len(self._digests)


# One per operator process: the child watches (handlers.py) and the passes' applies (reconcile.py) feed it.
SEEN_CHILDREN = SeenChildren()


def child_event_needs_pass(event_type: str | None, obj: Mapping[str, Any], seen: SeenChildren) -> bool:
    """Whether a child's watch event can change what a pass over its app would do."""
    if event_type is None:  # the initial listing: remember it; the apps' own listing starts their passes
        seen.record(obj)
        return False
    if event_type == "DELETED":  # deleted by hand or by a prune: a pass puts back what is still wanted
        seen.forget(obj)
        return True
    return seen.record(obj)


def app_event_needs_pass(event_type: str | None, app: Mapping[str, Any]) -> bool:
    """Whether an app's watch event calls for a pass: on the initial listing (the resume after a restart), and
    while the status has not caught up with the spec's generation. Deletion is the garbage collector's job."""
    meta = app.get("metadata") or {}
    if event_type == "DELETED" or meta.get("deletionTimestamp"):
        return False
    if event_type is None:
        return True
    observed = (app.get("status") or {}).get("observedGeneration")
    return observed is None or observed != meta.get("generation")
