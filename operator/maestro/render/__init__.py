"""Rendering: a MicroserviceApp's spec in, its desired children out. Pure: no I/O, no kopf.

One module per child kind (deployment, service, hpa, pdb, job, cronjob), each a `render(Target)`, listed once in
`kinds.py`; `pod.py` renders the pod they run; `app.py` renders a whole app or one service or job; `names.py`
holds the names and labels children share; `confighash.py` hashes a service's config sources. The names below
are what the other layers use.
"""

from maestro.render.app import (
    effective_components,
    effective_jobs,
    effective_services,
    render_app,
    render_component,
)
from maestro.render.job import DEFAULT_HISTORY_LIMIT, RUN_KEY_LABEL, run_key, run_name
from maestro.render.names import (
    CONFIG_HASH_ANNOTATION,
    LABEL_COMPONENT,
    LABEL_INSTANCE,
    LABEL_MANAGED_BY,
    MANAGED_BY,
    child_name,
    endpoint,
    image_version,
    owned_labels,
    owner_reference,
    selector_labels,
)
from maestro.render.target import Component

__all__ = [
    "CONFIG_HASH_ANNOTATION",
    "DEFAULT_HISTORY_LIMIT",
    "LABEL_COMPONENT",
    "LABEL_INSTANCE",
    "LABEL_MANAGED_BY",
    "MANAGED_BY",
    "RUN_KEY_LABEL",
    "Component",
    "child_name",
    "effective_components",
    "effective_jobs",
    "effective_services",
    "endpoint",
    "image_version",
    "owned_labels",
    "owner_reference",
    "render_app",
    "render_component",
    "run_key",
    "run_name",
    "selector_labels",
]
