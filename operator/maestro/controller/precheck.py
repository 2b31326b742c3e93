"""Which services' (and jobs') children the API server must judge (a dry-run apply) before any child of the app is written.

A pass writes nothing when any child of the app would be refused (plan.dry_runs picks the children, execute.py dry-runs them): a refusal half-way
through the services would leave some of them applied. Most fields are checked by the models (api/models.py)
exactly as the API server checks them, so a child rendered only from those cannot be refused; a dry run of it
would cost a request for nothing (docs/benchmarks.md). Everything else, free-form Kubernetes objects passed
through (probes, tolerations, podSpecPatch, volumes, ...), maps the models do not check (nodeSelector, pod
labels and annotations) and values of shapes they do not check (resource names other than cpu, memory and
ephemeral-storage, quantities they cannot read, int-or-percent strings), leaves the service's children to the
API server. tests/e2e/test_precheck.py holds the models to that claim against a real API server.
"""

from __future__ import annotations

import re

from maestro.api import models as api

# ServiceSpec fields whose values the models check as the API server does (given the checks below).
_MODELLED = frozenset(
    {
        "name",
        "image",
        "command",
        "args",
        "ports",
        "env",
        "replicas",
        "autoscaling",
        "expose",
        "config_from",
        "disruption_budget",
        "rollout",
        "resources",
        "depends_on",
        "image_pull_policy",
        # a job's: all but time_zone (whether the API server knows the zone is its own judgement)
        "backoff_limit",
        "active_deadline_seconds",
        "history_limit",
        "schedule",
        "concurrency_policy",
    }
)
_RESOURCE_NAMES = frozenset({"cpu", "memory", "ephemeral-storage"})
_PERCENT = re.compile(r"^(100|[1-9]?[0-9])%$")


def _int_or_percent_checked(value: api.IntOrPercent | None) -> bool:
    if value is None:
        return True
    if isinstance(value, int):
        return value >= 0
    return bool(_PERCENT.match(value))


def unchecked_fields(service: api.ServiceSpec | api.JobSpec) -> list[str]:
    """The fields of a (merged) service or job whose values only the API server can judge, by their spec names."""
    found = [
        field.alias or name
        for name, field in type(service).model_fields.items()
        if name not in _MODELLED and getattr(service, name) is not None
    ]
    found += [f"env[{i}].valueFrom" for i, var in enumerate(service.env or []) if var.value_from is not None]
    if service.image != service.image.strip():
        found.append("image")
    resources = service.resources
    for part in ("requests", "limits"):
        for resource, quantity in (getattr(resources, part) or {}).items() if resources else ():
            amount = api.parse_quantity(quantity)
            if resource not in _RESOURCE_NAMES or amount is None or amount < 0:
                found.append(f"resources.{part}.{resource}")
    if not isinstance(service, api.ServiceSpec):
        return found
    if service.autoscaling is not None and service.autoscaling.behavior is not None:
        found.append("autoscaling.behavior")
    rollout, budget = service.rollout, service.disruption_budget
    for path, value in (
        ("rollout.maxSurge", rollout.max_surge if rollout else None),
        ("rollout.maxUnavailable", rollout.max_unavailable if rollout else None),
        ("disruptionBudget.minAvailable", budget.min_available if budget else None),
        ("disruptionBudget.maxUnavailable", budget.max_unavailable if budget else None),
    ):
        if not _int_or_percent_checked(value):
            found.append(path)
    return found


def needs_dry_run(service: api.ServiceSpec | api.JobSpec) -> bool:
    """Whether a new rendering of this service's (job's) children must pass a dry-run apply before the app's
    write."""
    return bool(unchecked_fields(service))
