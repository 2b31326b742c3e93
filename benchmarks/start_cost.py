"""The CPU of a start's own work beside its listings, by parts, in-process against the real API server: the
pages of a listing of the children and apps of a namespace (or, `--all-namespaces`, of all) are fetched once
and kept as the API server sent them, then each part is run three times each way, in turn:

- decoding the pages: `json.loads`, as before stop 35, and pydantic's parser (`kube.decode`), as now;
- the child index filled from the decoded children: each projection encoded as sorted JSON (`json.dumps`, before
  stop 35) and as now (pydantic's `to_json`, in the API server's key order);
- each app's part of its settled mark: with its spec, as before stop 35, and as now (the generation stands for it);
- the three as now, one page after the other as a start takes them, with the cyclic collector's default thresholds
  (before stop 35) and with those `maestro run` sets.

The pairs but the last run with the default thresholds. Each pair computes the same thing (the script checks that the decoders agree), so the ratio is the cut. The
requests themselves (TLS, HTTP) are not in it: `restart.py` times a whole start.

    .venv/bin/python benchmarks/start_cost.py --namespace idle --keep-cluster --cluster-name perf-bench
"""

from __future__ import annotations

import gc
import json
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

from maestro.api import models as api
from maestro.cli import run
from maestro.controller import settledmark, status
from maestro.controller.projection import projection, projection_json
from maestro.kube import client as kube
from maestro.render import kinds
from maestro.runtime import children as children_module
from maestro.runtime.children import ChildIndex

DEFAULT_GC_THRESHOLDS = (700, 10, 10)  # CPython's


def cpu_seconds(work: Callable[[], object]) -> float:
    started = time.process_time()
    work()
    return time.process_time() - started


def raw_pages(kind: str, namespace: str | None) -> list[bytes]:
    """A listing's pages as the API server sent them (undone gzip aside), the way kube.Listing asks for them."""
    http, pages, token = kube.client(), [], ""
    while True:
        query = [("limit", "100")] + ([("continue", token)] if token else [])
        response = http.session.get(
            http.url.rstrip("/") + kube._collection(kind, namespace),
            params=query,
            headers={"Accept": "application/json"},
            timeout=60,
        )
        response.raise_for_status()
        pages.append(response.content)
        token = (json.loads(response.content).get("metadata") or {}).get("continue") or ""
        if not token:
            return pages


def items(pages: list[bytes], kind: str, decode: Callable[[bytes], Any]) -> list[dict[str, Any]]:
    decoded = [item for page in pages for item in decode(page).get("items") or []]
    for item in decoded:
        item.setdefault("kind", kind)
    return decoded


def filled(children: list[dict[str, Any]]) -> ChildIndex:
    index = ChildIndex()
    for obj in children:
        index.observe(None, obj)
    return index


def sorted_projection_json(obj: Mapping[str, Any]) -> bytes:
    """projection_json before stop 35."""
    return json.dumps(projection(obj), sort_keys=True, separators=(",", ":"), default=str).encode()


def app_state_with_spec(code: str, app: Mapping[str, Any], status_: Mapping[str, Any]) -> bytes:
    """settledmark.app_state before stop 35, which encoded the spec in the same canonical JSON: today's, and the
    spec's beside it (the same work)."""
    spec = json.dumps(app.get("spec"), sort_keys=True, separators=(",", ":"), default=str).encode()
    return settledmark.app_state(code, app, status_) + spec


def app_states(apps: Sequence[Mapping[str, Any]], state: Callable[..., bytes]) -> list[bytes]:
    return [state("start-cost", app, status.own(app.get("status") or {})) for app in apps]


def start(pages: Mapping[str, list[bytes]]) -> tuple[ChildIndex, list[bytes]]:
    """Decode, index and app states, a page at a time: a start's own work in the order it comes."""
    index, states = ChildIndex(), []
    for kind, kind_pages in pages.items():
        for page in kind_pages:
            for item in kube.decode(page).get("items") or []:
                item.setdefault("kind", kind)
                if kind == api.KIND:
                    states.append(
                        settledmark.app_state("start-cost", item, status.own(item.get("status") or {}))
                    )
                else:
                    index.observe(None, item)
    return index, states


def with_gc_thresholds(thresholds: tuple[int, int, int], work: Callable[[], object]) -> float:
    """`work`'s CPU seconds with these thresholds of the cyclic collector (then the ones before again)."""
    before = gc.get_threshold()
    gc.collect()
    gc.set_threshold(*thresholds)
    try:
        return cpu_seconds(work)
    finally:
        gc.set_threshold(*before)


def main() -> int:
    parser = common.base_parser(__doc__ or "")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--namespace", default="idle", help="the namespace of the apps (default idle)")
    where.add_argument(
        "--all-namespaces", action="store_true", help="the apps and children of every namespace"
    )
    args = parser.parse_args()
    scope = None if args.all_namespaces else args.namespace
    with common.cluster(args):
        pages = {kind: raw_pages(kind, scope) for kind in [*kinds.WATCHED, api.KIND]}

    def decode_all(decode: Callable[[bytes], Any]) -> dict[str, list[dict[str, Any]]]:
        return {kind: items(kind_pages, kind, decode) for kind, kind_pages in pages.items()}

    decoded = decode_all(kube.decode)
    assert decoded == decode_all(json.loads), "the two decoders disagree"
    children = [obj for kind in kinds.WATCHED for obj in decoded[kind]]
    apps = decoded[api.KIND]
    rows: dict[str, list[float]] = {}
    for _ in range(3):
        rows.setdefault("decode, json.loads", []).append(cpu_seconds(lambda: decode_all(json.loads)))
        rows.setdefault("decode, now", []).append(cpu_seconds(lambda: decode_all(kube.decode)))
        children_module.projection_json = sorted_projection_json  # type: ignore[attr-defined]
        try:
            rows.setdefault("index, sorted json.dumps", []).append(cpu_seconds(lambda: filled(children)))
        finally:
            children_module.projection_json = projection_json  # type: ignore[attr-defined]
        rows.setdefault("index, now", []).append(cpu_seconds(lambda: filled(children)))
        rows.setdefault("app states, with spec", []).append(
            cpu_seconds(lambda: app_states(apps, app_state_with_spec))
        )
        rows.setdefault("app states, now", []).append(
            cpu_seconds(lambda: app_states(apps, settledmark.app_state))
        )
        rows.setdefault("the three, GC default", []).append(
            with_gc_thresholds(DEFAULT_GC_THRESHOLDS, lambda: start(pages))
        )
        rows.setdefault("the three, GC as run sets it", []).append(
            with_gc_thresholds(run.GC_THRESHOLDS, lambda: start(pages))
        )

    size = sum(len(page) for kind_pages in pages.values() for page in kind_pages)
    print()
    print(
        f"a start's own CPU beside its requests: {len(children)} children, {len(apps)} apps,"
        f" {size / 2**20:.0f} MiB of JSON (median of 3)"
    )
    median = {label: statistics.median(times) for label, times in rows.items()}
    for label, seconds in median.items():
        print(f"  {label:28s} {seconds:6.2f} CPU s   ({', '.join(f'{t:.2f}' for t in rows[label])})")
    before = (
        median["decode, json.loads"] + median["index, sorted json.dumps"] + median["app states, with spec"]
    )
    now = median["decode, now"] + median["index, now"] + median["app states, now"]
    print(
        f"  ratios now/before: decode {median['decode, now'] / median['decode, json.loads']:.2f},"
        f" index {median['index, now'] / median['index, sorted json.dumps']:.2f},"
        f" app states {median['app states, now'] / median['app states, with spec']:.2f};"
        f" the three: {now:.2f} against {before:.2f} CPU s ({now / before:.2f});"
        f" GC {median['the three, GC as run sets it'] / median['the three, GC default']:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
