"""The idle operator's cost by parts: the CPU of one safety pass over the N apps of a namespace, measured
in-process against the real API server. The child index is filled by a listing and every app is recorded as
settled, as the pass that left it Ready would (runtime/settled.py); then `Operator.safety_pass` runs three times
without the children's listing (the usual minute) and three times with it (after a watch gap, or every
`safety_full_every` passes), timed by this process's CPU. Plus the app listing whole against metadata only.

For a cluster whose own controllers do not go idle at thousands of apps, where `idle_cpu.py`'s wait for a quiet
operator does not end (docs/benchmarks.md, stop 26). Passes the safety pass asks for are counted, not run: an
app whose children changed since the index was filled gets one.

    .venv/bin/python benchmarks/safety_pass_cost.py --namespace idle --keep-cluster --cluster-name perf-bench
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

from maestro.api import models as api
from maestro.kube import client as kube
from maestro.render import kinds
from maestro.runtime.operator import Operator
from maestro.runtime.settings import Settings
from maestro.runtime.settled import Seen


class _NoGaps:
    gaps = 0  # as the child watches report when no stream broke


def settled_operator(ns: str) -> tuple[Operator, list[bool], int]:
    """An acting operator whose index holds every child of `ns` and whose every app is settled; the passes it
    asks for are recorded (live or not) instead of run."""
    op = Operator(Settings(namespaces=(ns,)))
    children = 0
    for kind in kinds.WATCHED:
        for obj in kube.list_pages(kind, ns):
            op.children.observe(None, obj)
            children += 1
    for app in kube.list_pages(api.KIND, ns):
        uid = str(app["metadata"]["uid"])
        op.settled.settle(uid, Seen(kube.resource_version(app), op.children.fingerprint(uid)))
    asked: list[bool] = []

    def request(app: Mapping[str, Any], *, live: bool = False, urgent: bool = False) -> None:
        asked.append(live)

    op.request = request  # type: ignore[method-assign]
    op.leadership.acting = lambda: True  # type: ignore[method-assign]
    op._child_watches = _NoGaps()  # type: ignore[assignment]
    op._gaps_listed = 0
    return op, asked, children


def main() -> int:
    parser = common.base_parser(__doc__ or "")
    parser.add_argument("--namespace", default="idle", help="the namespace of the apps (default idle)")
    args = parser.parse_args()
    rows: list[str] = []
    with common.cluster(args):
        ns = args.namespace
        op, asked, children = settled_operator(ns)
        apps = len(op.settled)
        for label, kinds_listed in (
            ("without the children's listing", lambda gaps: []),
            ("with the children's listing", lambda gaps: list(kinds.WATCHED)),
        ):
            op._kinds_to_list = kinds_listed  # type: ignore[method-assign]
            for _ in range(3):
                asked.clear()
                wall, cpu = time.monotonic(), time.process_time()
                op.safety_pass()
                rows.append(
                    f"  safety pass {label:32s} {time.process_time() - cpu:6.2f} CPU s "
                    f"{time.monotonic() - wall:6.2f} s wall   passes asked {len(asked)}"
                )
        for metadata_only in (False, True):
            cpu = time.process_time()
            listed = sum(1 for _ in kube.list_pages(api.KIND, ns, metadata_only=metadata_only))
            what = "metadata only" if metadata_only else "whole"
            rows.append(f"  listing the {listed} apps {what:13s} {time.process_time() - cpu:6.2f} CPU s")
    print()
    print(f"safety pass over {apps} settled apps, {children} children in the index (namespace {ns})")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
