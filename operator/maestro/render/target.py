"""What every child kind's renderer is given: one (merged) service of an app, with what it needs of the rest."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from maestro.api import models as api


@dataclass(frozen=True)
class Target:
    """One service to render. `app` is the MicroserviceApp object (metadata.name, optional namespace and uid:
    without a uid no ownerReference is written); `dependencies` are the merged services it depends on (for
    their variables); `config_hash` covers its configFrom sources (None: it has none)."""

    app: Mapping[str, Any]
    service: api.ServiceSpec
    dependencies: Sequence[api.ServiceSpec] = ()
    config_hash: str | None = None
