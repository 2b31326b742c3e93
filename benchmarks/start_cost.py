"""The CPU of a start's own work beside its listings, by parts, in-process against the real API server: the
children of a namespace and its apps are listed once (kept in memory), then, in turn, three times each:

- the child index filled from that listing, packing as before stop 29 (zlib's default window and memLevel) and
  as now (an 8 KiB window, memLevel 2);
- the settled-mark check of every app, as before stop 29 (each app's children decoded from the index, then
  digested), as in stops 29-32 (the index's projection bytes unpacked and digested as they are) and as now (the
  digests the index keeps, computed as it takes each child in: inside "index, packing now").

Every way computes the same thing (the script checks that the marks agree), so the ratio is the cut. The listings
themselves and kopf's per-event handling (gone since stop 29) are not in it: `latency.py`'s restart times a whole
start.

    .venv/bin/python benchmarks/start_cost.py --namespace idle --keep-cluster --cluster-name perf-bench
"""

from __future__ import annotations

import statistics
import sys
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

from maestro.api import models as api
from maestro.controller import settledmark, status
from maestro.controller.projection import projection_digest
from maestro.kube import client as kube
from maestro.render import kinds
from maestro.runtime import packing
from maestro.runtime.children import ChildIndex


def cpu_seconds(work: Callable[[], object]) -> float:
    started = time.process_time()
    work()
    return time.process_time() - started


def filled(children: list[dict[str, Any]]) -> ChildIndex:
    index = ChildIndex()
    for obj in children:
        index.observe(None, obj)
    return index


def packing_before_stop_29(kind: str, data: bytes, dictionary: bytes) -> bytes:
    packer = zlib.compressobj(1, zlib.DEFLATED, -15, zdict=dictionary)
    return packer.compress(data) + packer.flush()


def marks_before_stop_29(index: ChildIndex, apps: Sequence[Mapping[str, Any]], code: str) -> list[str]:
    return [
        settledmark.digest(
            code, app, status.own(app.get("status") or {}), index.children(app["metadata"]["uid"]).values()
        )
        for app in apps
    ]


def marks_before_stop_33(index: ChildIndex, apps: Sequence[Mapping[str, Any]], code: str) -> list[str]:
    """Each child's projection unpacked from the index (its private parts: the index no longer does this) and
    digested at the check."""

    def states(owner: str) -> list[settledmark.ChildState]:
        entries = [(uid, index._entries[uid]) for uid in index._by_owner.get(owner, ())]
        return [
            (*entry.key, uid, projection_digest(index._packer.unpack(entry.key[0], entry.body)))
            for uid, entry in entries
        ]

    return [
        settledmark.digest_of_states(
            code, app, status.own(app.get("status") or {}), states(app["metadata"]["uid"])
        )
        for app in apps
    ]


def marks_now(index: ChildIndex, apps: Sequence[Mapping[str, Any]], code: str) -> list[str]:
    return [
        settledmark.digest_of_states(
            code, app, status.own(app.get("status") or {}), index.states(app["metadata"]["uid"])
        )
        for app in apps
    ]


def main() -> int:
    parser = common.base_parser(__doc__ or "")
    parser.add_argument("--namespace", default="idle", help="the namespace of the apps (default idle)")
    args = parser.parse_args()
    with common.cluster(args):
        children = [obj for kind in kinds.WATCHED for obj in kube.list_pages(kind, args.namespace)]
        apps = list(kube.list_pages(api.KIND, args.namespace))
    code = "start-cost"
    rows: dict[str, list[float]] = {}
    original_pack = packing.Packer.pack

    def old_pack(self: packing.Packer, kind: str, data: bytes) -> bytes:
        return packing_before_stop_29(kind, data, self.dictionary(kind, data))

    for _ in range(3):
        packing.Packer.pack = old_pack  # type: ignore[method-assign]
        try:
            rows.setdefault("index, packing before", []).append(cpu_seconds(lambda: filled(children)))
        finally:
            packing.Packer.pack = original_pack  # type: ignore[method-assign]
        rows.setdefault("index, packing now", []).append(cpu_seconds(lambda: filled(children)))
    index = filled(children)
    marks = marks_now(index, apps, code)
    assert marks == marks_before_stop_29(index, apps, code) == marks_before_stop_33(index, apps, code), "same"
    for _ in range(3):
        rows.setdefault("marks, decoded children", []).append(
            cpu_seconds(lambda: marks_before_stop_29(index, apps, code))
        )
        rows.setdefault("marks, projections unpacked", []).append(
            cpu_seconds(lambda: marks_before_stop_33(index, apps, code))
        )
        rows.setdefault("marks, digests kept", []).append(cpu_seconds(lambda: marks_now(index, apps, code)))

    print()
    print(f"a start's own CPU beside its listings: {len(children)} children, {len(apps)} apps (median of 3)")
    median = {label: statistics.median(times) for label, times in rows.items()}
    for label, seconds in median.items():
        print(f"  {label:28s} {seconds:6.2f} CPU s   ({', '.join(f'{t:.2f}' for t in rows[label])})")
    print(
        f"  ratios now/before: index {median['index, packing now'] / median['index, packing before']:.2f},"
        f" marks {median['marks, digests kept'] / median['marks, decoded children']:.2f}"
        f" (against stops 29-32: {median['marks, digests kept'] / median['marks, projections unpacked']:.2f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
