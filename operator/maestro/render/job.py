"""A job's run: the batch/v1 Job `<app>-<job>-<run key>`. The run key hashes the Job's spec (its pod template,
config hash and dependency variables included, and how it retries), so a new image or new config is a new Job,
hence a new run, and any other change of the app (another service's image, a replica count) is not. Pure."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from maestro.api import models as api
from maestro.render import pod
from maestro.render.names import child_metadata, child_name
from maestro.render.target import Target

DEFAULT_BACKOFF_LIMIT = (
    2  # a migration that fails fails again: 3 attempts, not Kubernetes' 7 over ~10 minutes
)
DEFAULT_HISTORY_LIMIT = 3
RUN_KEY_LABEL = f"{api.GROUP}/run-key"
# Bump only on purpose: a new format re-runs every job once.
_FORMAT = "maestro-run-key/v1"


def job_spec(target: Target, job: api.JobSpec) -> dict[str, Any]:
    """The spec of a run's Job (and of a CronJob's job template): one pod, never restarted in place (each retry
    is a new pod, kept with its logs until the Job goes)."""
    spec: dict[str, Any] = {
        "backoffLimit": DEFAULT_BACKOFF_LIMIT if job.backoff_limit is None else job.backoff_limit
    }
    if job.active_deadline_seconds is not None:
        spec["activeDeadlineSeconds"] = job.active_deadline_seconds
    spec["template"] = pod.template(target, restart_policy="Never")
    return spec


def run_key(spec: Mapping[str, Any]) -> str:
    """The hash of a run's Job spec: what tells one run of a job from the next."""
    payload = json.dumps([_FORMAT, spec], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[: api.RUN_KEY_LENGTH]


def run_name(app_name: str, job_name: str, key: str) -> str:
    """`<app>-<job>-<run key>`: at most 63 characters (api.validate_app checks `<app>-<job>`)."""
    return f"{child_name(app_name, job_name)}-{key}"


def render(target: Target) -> dict[str, Any] | None:
    """The Job of the current run of a (merged) job without a schedule; None for anything else."""
    job = target.job
    if job is None or job.schedule is not None:
        return None
    spec = job_spec(target, job)
    key = run_key(spec)
    metadata = child_metadata(target.app, job, run_name(target.app["metadata"]["name"], job.name, key))
    metadata["labels"][RUN_KEY_LABEL] = key
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": spec}
