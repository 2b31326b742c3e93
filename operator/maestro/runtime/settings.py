"""kopf settings, chosen in one startup handler; each with the reason for it.

Who calls it: kopf, at operator startup (registered by importing handlers.py).
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from maestro.kube import client as kube

# Threads that run passes (handlers.PASSES) and kopf's handler threads (the sync handlers: config sources): a pass
# is a handful of blocking API calls; more threads than this only queue at the API server.
MAX_WORKERS = 8


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # The client used by kube.py: in-cluster service account, else the current kubeconfig (KUBECONFIG).
    kube.load_config()
    # Post Kubernetes Events from kopf's own logs only for warnings and errors: Maestro posts the meaningful
    # Normal events itself (created, ready, ...), and one event per handler run would flood `kubectl describe`.
    settings.posting.level = logging.WARNING
    # Only watch handlers are registered (handlers.py): kopf stores no handler progress and no last-handled
    # spec on the apps, so it writes nothing to them, and no kopf annotation appears on users' objects.
    # No finalizers: no on.delete handler is registered, so kopf adds none, and children are removed by the
    # garbage collector through their ownerReferences, also while the operator is down.
    # The work queue's threads bound the load on the API server. No per-kind worker limit (kopf's default): a kopf
    # worker keeps its slot for seconds after an object's last event, so a limit of 16 capped each kind at ~3
    # objects/s (benchmarks/convergence.py: 2.39x the raw client with it, 1.38x without; restart 31.8 s -> 3.0 s).
    settings.execution.max_workers = MAX_WORKERS
    # Watch streams end server-side after this long and are reopened: a stuck watch cannot go unnoticed.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    # Peering (pausing all replicas but one) is on with `maestro run --peering`: runner.py and leadership.py.
