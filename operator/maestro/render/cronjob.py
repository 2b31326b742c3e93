"""The batch/v1 CronJob `<app>-<job>` of a job with a `schedule`. Pure."""

from __future__ import annotations

from typing import Any

from maestro.render import job as run
from maestro.render.names import LABEL_MANAGED_BY, child_metadata, labels
from maestro.render.target import Target

DEFAULT_CONCURRENCY_POLICY = "Forbid"  # a task that runs long must not pile up runs of itself


def render(target: Target) -> dict[str, Any] | None:
    """The CronJob of a (merged) job with a schedule; None for anything else."""
    job = target.job
    if job is None or job.schedule is None:
        return None
    spec: dict[str, Any] = {"schedule": job.schedule}
    if job.time_zone is not None:
        spec["timeZone"] = job.time_zone
    spec["concurrencyPolicy"] = job.concurrency_policy or DEFAULT_CONCURRENCY_POLICY
    if job.history_limit is not None:
        spec["successfulJobsHistoryLimit"] = job.history_limit
        spec["failedJobsHistoryLimit"] = job.history_limit
    # Its Jobs belong to the CronJob, not to the app: they carry the app's labels but not managed-by, so the
    # operator's watches never take them for children of the app.
    job_labels = {
        key: value
        for key, value in labels(target.app["metadata"]["name"], job).items()
        if key != LABEL_MANAGED_BY
    }
    spec["jobTemplate"] = {"metadata": {"labels": job_labels}, "spec": run.job_spec(target, job)}
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": child_metadata(target.app, job),
        "spec": spec,
    }
