"""What every child kind's renderer is given: one (merged) service or job of an app, with what it needs of the
rest."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from maestro.api import models as api

Component = api.ServiceSpec | api.JobSpec  # what an app is made of: its services and its jobs


@dataclass(frozen=True)
class Target:
    """One service or job to render. `app` is the MicroserviceApp object (metadata.name, optional namespace and
    uid: without a uid no ownerReference is written); `dependencies` are the merged services it depends on (for
    their variables and its egress; jobs give none); `dependents` the services and jobs that depend on it (who its
    NetworkPolicy lets in); `config_hash` covers its configFrom sources (None: it has none); `snapshots` maps
    a snapshot source's key (confighash.source_key) to the name of its copy (snapshot.py). A
    renderer returns None for a component its kind is not made for (a job gets no Deployment)."""

    app: Mapping[str, Any]
    component: Component
    dependencies: Sequence[api.ServiceSpec] = ()
    config_hash: str | None = None
    dependents: Sequence[Component] = ()
    snapshots: Mapping[str, str] = field(default_factory=dict)

    @property
    def service(self) -> api.ServiceSpec | None:
        return self.component if isinstance(self.component, api.ServiceSpec) else None

    @property
    def job(self) -> api.JobSpec | None:
        return self.component if isinstance(self.component, api.JobSpec) else None
