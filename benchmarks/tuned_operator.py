"""An experiment, not the operator: `maestro run` with kopf's per-resource worker limit lifted
(settings.queueing.worker_limit = None, kopf's default), to measure the change proposed in docs/benchmarks.md
side by side with the operator as it is. Used by the scripts' `--tuned` flag.

Why: with worker_limit = 16, kopf keeps at most 16 objects of a kind in handling, and a worker holds its slot for
settings.queueing.idle_timeout (5 s) after its last event, so each kind is handled at about 16 objects / 5 s.
The handler threads (settings.execution.max_workers = 8) already bound the load on the API server.
"""

from __future__ import annotations

import sys
from typing import Any

import kopf

from maestro import cli, handlers  # noqa: F401  (registers the operator's handlers and settings first)


@kopf.on.startup()
def tune(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.queueing.worker_limit = None


if __name__ == "__main__":
    sys.exit(cli.main())
