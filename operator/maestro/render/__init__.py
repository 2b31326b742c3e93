"""Rendering: a MicroserviceApp's spec in, its desired children out. Pure: no I/O, no kopf.

One module per child kind (deployment, service, hpa, pdb), each a `render(Target)`, listed once in `kinds.py`;
`app.py` renders a whole app or one service; `names.py` holds the names and labels children share;
`confighash.py` hashes a service's config sources. The names below are what the other layers use.
"""

from maestro.render.app import effective_services, render_app, render_service
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
    selector_labels,
)

__all__ = [
    "CONFIG_HASH_ANNOTATION",
    "LABEL_COMPONENT",
    "LABEL_INSTANCE",
    "LABEL_MANAGED_BY",
    "MANAGED_BY",
    "child_name",
    "effective_services",
    "endpoint",
    "image_version",
    "owned_labels",
    "render_app",
    "render_service",
    "selector_labels",
]
