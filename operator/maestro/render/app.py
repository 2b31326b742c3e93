"""Render a MicroserviceApp into its desired children: Deployment, Service, HorizontalPodAutoscaler and
PodDisruptionBudget per service, a Job (the current run) or a CronJob per job.

Pure: dicts in, dicts out, no Kubernetes client. The same input gives identical output, so the operator can
server-side apply the result on every pass and `maestro render` can print it. The objects list only the fields
Maestro owns (with autoscaling on, `spec.replicas` is absent so the HPA owns it).
"""

from collections.abc import Mapping
from typing import Any

from maestro.api import graph
from maestro.api import models as api
from maestro.render.kinds import CHILD_KINDS
from maestro.render.target import Component, Target


def effective_services(spec: api.MicroserviceAppSpec) -> list[api.ServiceSpec]:
    """Every service with the app's defaults merged under it, in spec order."""
    return [api.effective_service(spec.defaults, service) for service in spec.services]


def effective_jobs(spec: api.MicroserviceAppSpec) -> list[api.JobSpec]:
    """Every job with the pod settings of the app's defaults merged under it, in spec order."""
    return [api.effective_job(spec.defaults, job) for job in spec.jobs or []]


def effective_components(spec: api.MicroserviceAppSpec) -> dict[str, Component]:
    """Every merged service, then every merged job, by name (names are unique across both)."""
    components: dict[str, Component] = {service.name: service for service in effective_services(spec)}
    return components | {job.name: job for job in effective_jobs(spec)}


def render_component(
    app: Mapping[str, Any],
    component: Component,
    components: Mapping[str, Component],
    *,
    config_hash: str | None = None,
    snapshots: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The children of one merged service (Deployment, then Service, HPA, PDB when they apply) or job (its
    current run's Job, or its CronJob).

    `components` maps every merged service (and job) of the app by name: the services among its dependencies give
    it their variables. The operator uses this to apply a component's children only once its dependencies are
    Available (or, jobs, succeeded).
    """
    deps = [
        dep for name in component.depends_on or [] if isinstance(dep := components.get(name), api.ServiceSpec)
    ]
    dependents = [item for item in components.values() if component.name in (item.depends_on or [])]
    target = Target(app, component, deps, config_hash, dependents, snapshots or {})
    return [child for kind in CHILD_KINDS if (child := kind.render(target)) is not None]


def render_app(
    app: Mapping[str, Any],
    *,
    config_hashes: Mapping[str, str] | None = None,
    snapshots: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Every desired child of an app: the full MicroserviceApp object (metadata.name, optional namespace and
    uid, spec) in, Deployments/Services/HPAs/PDBs/Jobs/CronJobs out, in dependency order (dependencies first).

    `config_hashes` maps a service (job) name to its config hash (see confighash.py), put into its pod template
    annotation `maestro.dev/config-hash`; `snapshots` maps a snapshot source to its copy (snapshot.py; offline
    there is none, and the pods load the source itself). Raises api.SpecError when the app is invalid.
    """
    metadata = app.get("metadata") or {}
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        raise api.SpecError([("metadata.name", "required value")])
    spec = api.validate_app(name, app.get("spec"))
    merged = effective_components(spec)
    order = graph.topological_order(api.dependency_graph(spec))
    hashes = config_hashes or {}
    children: list[dict[str, Any]] = []
    for item in order:
        children += render_component(
            app, merged[item], merged, config_hash=hashes.get(item), snapshots=snapshots
        )
    return children
