"""Which watch events can change what a pass does, so that the others start no pass at all.

Most events the operator receives cannot change anything a pass would do: the controller manager rewrites a
Deployment's status at every step of a rollout (timestamps, ready counts of old ReplicaSets), the HPA and PDB
controllers rewrite their own status, and every write Maestro makes comes back to it as an event: without this
filter most passes would write nothing (docs/benchmarks.md).

A pass reads from a child only what `controller/projection.py` keeps of it; the child index (children.py) keeps
the projection of every child, and an event whose projection is the one kept cannot change the outcome of a
pass.

For the app itself the test is level-triggered and needs no memory: a pass is due while
`status.observedGeneration` lags `metadata.generation` (a spec change not yet handled); Maestro's own status
writes leave the generation alone and so start nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def app_event_needs_pass(event_type: str | None, app: Mapping[str, Any]) -> bool:
    """Whether an app's watch event calls for a pass: on the initial listing (the resume after a restart), and
    while the status has not caught up with the spec's generation. Deletion is the garbage collector's job."""
    meta = app.get("metadata") or {}
    if event_type == "DELETED" or meta.get("deletionTimestamp"):
        return False
    if event_type is None:
        return True
    return spec_unobserved(app)


def spec_unobserved(app: Mapping[str, Any]) -> bool:
    """Whether the app's status has not caught up with its spec (a new app, or a spec change not acted on)."""
    observed = (app.get("status") or {}).get("observedGeneration")
    return observed is None or observed != (app.get("metadata") or {}).get("generation")
