"""What of a child a pass can act on: its metadata (ownership, the applied-hash annotation), its spec (whether a
desired field was edited by hand) and, for a Deployment, a Job, a CronJob, an HTTPRoute or an Ingress, the
status fields that status.py uses. Two versions of a child with the same projection lead to the same pass: the
child index keeps only this (runtime/children.py), the watch filter compares it (runtime/relevance.py), and a
settled mark hashes it (settledmark.py). Pure."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from pydantic_core import to_json

# The metadata a pass looks at: ownership and conflicts, the applied hash, hand edits of labels/annotations, and
# when it was made (a job's runs are kept newest first). The creation time never changes: it starts no pass.
_METADATA_FIELDS = (
    "generation",
    "labels",
    "annotations",
    "ownerReferences",
    "deletionTimestamp",
    "creationTimestamp",
)
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
# A job's run: whether it runs, succeeded or failed, and when (status.job_status). Not `ready` or
# `uncountedTerminatedPods`, which the Job controller rewrites as pods come and go.
_JOB_STATUS_FIELDS = ("active", "succeeded", "failed", "startTime", "completionTime")
# A scheduled job: its last schedule, its last success, the runs going (status.job_status).
_CRONJOB_STATUS_FIELDS = ("active", "lastScheduleTime", "lastSuccessfulTime")


def projection_json(obj: Mapping[str, Any]) -> bytes:
    """The projection as compact JSON, its keys in the order `projection` and the API server give them: the
    child index keeps these bytes and a settled mark hashes them as they are. Equal bytes are an equal
    projection. The API server writes an object's fields in a fixed order (a built-in kind's by its Go
    struct, maps' keys sorted), so an equal projection gives equal bytes; were the order to change (a new
    server version), a projection would only look changed: one pass more, never one less. pydantic's encoder,
    which cannot sort, takes a quarter of the time `json.dumps(sort_keys=True)` took (docs/benchmarks.md, stop 35)."""
    return to_json(projection(obj), fallback=str)


def projection_digest(projected: bytes) -> bytes:
    """A digest of a projection's JSON (`projection_json`), of fixed length: what a settled mark hashes of a child.
    The child index computes it as it takes a child in, so that a mark's check hashes a few digests."""
    return hashlib.blake2b(projected, digest_size=16).digest()


def projection(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What of a child a pass can act on; two versions with the same projection lead to the same pass."""
    meta = obj.get("metadata") or {}
    result: dict[str, Any] = {
        "kind": obj.get("kind"),
        "metadata": {key: meta[key] for key in _METADATA_FIELDS if key in meta},
        "spec": obj.get("spec"),
    }
    if obj.get("kind") == "Deployment":
        status = obj.get("status") or {}
        projected = {key: status[key] for key in _DEPLOYMENT_STATUS_FIELDS if key in status}
        projected["conditions"] = [
            {key: condition[key] for key in _CONDITION_FIELDS if key in condition}
            for condition in status.get("conditions") or []
            # Its message carries a ReplicaSet name and changes as the rollout goes; only the reason matters.
            if condition.get("type") != "Progressing" or condition.get("reason") == "ProgressDeadlineExceeded"
        ]
        result["status"] = projected
    elif obj.get("kind") == "Job":
        status = obj.get("status") or {}
        projected = {key: status[key] for key in _JOB_STATUS_FIELDS if key in status}
        projected["conditions"] = [
            {key: condition[key] for key in _CONDITION_FIELDS if key in condition}
            for condition in status.get("conditions") or []
        ]
        result["status"] = projected
    elif obj.get("kind") == "HTTPRoute":
        # What status.route_status reads: each parent's ref and conditions (not their timestamps).
        parents = (obj.get("status") or {}).get("parents") or []
        result["status"] = {
            "parents": [
                {
                    "parentRef": parent.get("parentRef"),
                    "conditions": [
                        {key: condition[key] for key in _CONDITION_FIELDS if key in condition}
                        for condition in parent.get("conditions") or []
                    ],
                }
                for parent in parents
            ]
        }
    elif obj.get("kind") == "Ingress":
        result["status"] = {"loadBalancer": ((obj.get("status") or {}).get("loadBalancer") or {})}
    elif obj.get("kind") == "CronJob":
        status = obj.get("status") or {}
        result["status"] = {key: status[key] for key in _CRONJOB_STATUS_FIELDS if key in status}
    return result
