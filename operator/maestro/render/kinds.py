"""The child kinds: the one table that rendering, the API client, the child watches, the RBAC check, the tests
and the benchmarks read. Adding a kind is a renderer module (a `render(Target) -> dict | None`) and one entry
here; then `make manifests` (the chart's RBAC is checked against this table by tests/unit/test_deploy.py).
A service gets the first seven kinds (those that apply), a job a Job (a run) or, with a schedule, a CronJob."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from maestro.render import cronjob, deployment, hpa, httproute, ingress, job, networkpolicy, pdb, service
from maestro.render.target import Target

Renderer = Callable[[Target], dict[str, Any] | None]


@dataclass(frozen=True)
class ChildKind:
    """One kind of object an app owns. `render` returns the service's (job's) object of this kind, or None when
    it has none (an HPA without autoscaling, a Deployment for a job). `watched`: the operator lists and watches the kind (its
    child index, childwatch.py), so a child changed or deleted by hand is put back at once."""

    kind: str
    api_version: str
    plural: str
    render: Renderer
    watched: bool = True
    # Served by a CRD the cluster may not have (the Gateway API): while it is not installed, the operator lists
    # and watches nothing of it, and only an app that asks for one is told (ChildRejected).
    optional: bool = False
    # What the operator does with it: server-side apply creates (create + patch), the watches list and watch,
    # a pass reads a name it does not know (get) and prunes (delete).
    verbs: frozenset[str] = frozenset({"get", "list", "watch", "create", "patch", "delete"})

    @property
    def group(self) -> str:
        """The API group ("" for the core group): what an RBAC rule names (hack/child_kinds.py)."""
        return self.api_version.rpartition("/")[0]


# In the order a service's children are applied: the Deployment first.
CHILD_KINDS: tuple[ChildKind, ...] = (
    ChildKind("Deployment", "apps/v1", "deployments", deployment.render),
    ChildKind("Service", "v1", "services", service.render),
    ChildKind("HorizontalPodAutoscaler", "autoscaling/v2", "horizontalpodautoscalers", hpa.render),
    ChildKind("PodDisruptionBudget", "policy/v1", "poddisruptionbudgets", pdb.render),
    ChildKind("NetworkPolicy", "networking.k8s.io/v1", "networkpolicies", networkpolicy.render),
    ChildKind("HTTPRoute", httproute.API_VERSION, "httproutes", httproute.render, optional=True),
    ChildKind("Ingress", "networking.k8s.io/v1", "ingresses", ingress.render),
    ChildKind("Job", "batch/v1", "jobs", job.render),
    ChildKind("CronJob", "batch/v1", "cronjobs", cronjob.render),
)
BY_KIND: dict[str, ChildKind] = {child.kind: child for child in CHILD_KINDS}
KIND_NAMES: tuple[str, ...] = tuple(child.kind for child in CHILD_KINDS)
WATCHED: tuple[str, ...] = tuple(child.kind for child in CHILD_KINDS if child.watched)
