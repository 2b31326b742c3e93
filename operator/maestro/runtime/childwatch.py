"""The operator's own watches: of the child kinds (render/kinds.py: Deployments, Services, HPAs, PDBs, Jobs,
CronJobs), which feed the child index, and of the apps: a plain list and watch per kind and namespace, each followed
by a thread, instead of kopf's event handlers.

Why not kopf: kopf runs every watch event through its per-object machinery (a worker task, a queue and a
memory per object, kept for seconds after its last event). Child events are most of the events the operator
receives (a rollout alone makes a dozen), and all one needs is a call: index it (children.py), and queue a
pass when it can change one. Through kopf that machinery was a large share of the operator's CPU and memory
(docs/benchmarks.md). The apps' events need no more than a call either, and at a start there is one per app
(a third of a start at 5000 apps went into kopf's handling of them: docs/benchmarks.md, stop 29). ConfigMaps and
Secrets stay kopf's: few events, and kopf's peering pauses them on a standby (which keeps these watches open:
the operator's handlers ask `Leadership` whether to act).

How the index stays complete (what client-go's reflector does):
- list first (a page at a time), then watch from the list's resourceVersion: no change in between is missed;
- bookmarks keep the version fresh on a quiet stream, so reopening one rarely needs a new list;
- a stream the API server ends (every kube.WATCH_SECONDS) is reopened from the last version seen, a broken one
  after a back-off; a version too old to watch from (410 Gone) lists again. A stream that opens again after a
  failure calls `on_reconnect`: the passes that failed in an API server outage are retried then, not after
  their back-off (up to a minute);
- an object deleted while no stream was open sends no event: after listing again, `on_relist` gets the uids
  listed, and the caller reports what it knew and is no longer there as deleted (children.py, `absent`), as
  client-go's informers do. The safety pass's listing is the last resort (children.py, `disagreeing`);
- `gaps` counts the streams that broke and the listings again (a stream the API server ends, reopened from the
  last version seen, misses nothing and is no gap): the safety pass lists the children after every gap, and
  only every few intervals otherwise (operator.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from maestro.kube import client as kube

log = logging.getLogger(__name__)

# (event type, object): None for an object of the first listing, else ADDED, MODIFIED or DELETED.
OnEvent = Callable[[str | None, Mapping[str, Any]], None]
# (kind, namespace or None, uids listed): after listing again, what was listed (the rest was deleted meanwhile).
OnRelist = Callable[[str, str | None, set[str]], None]
# Seconds to wait before reopening a stream that broke, by failures in a row (the last one repeats): at most
# 5 s, so that the operator notices an API server that is back within 5 s (a small request per child kind and namespace).
BACKOFF = (0.5, 1.0, 2.0, 5.0)
# Seconds between listings of an optional kind the cluster does not serve (its CRD not installed).
UNSERVED_RETRY = 30.0
# The first listings made at once: enough to keep the API server's cores busy, not a burst per namespace.
LISTINGS_AT_ONCE = 4


class KindWatch:
    """One kind in one namespace (None: the whole cluster): `list` once, then `follow` in a thread."""

    def __init__(
        self,
        kind: str,
        namespace: str | None,
        on_event: OnEvent,
        stopping: threading.Event,
        on_reconnect: Callable[[], None] = lambda: None,
        on_relist: OnRelist = lambda kind, namespace, uids: None,
        on_gap: Callable[[], None] = lambda: None,
    ) -> None:
        self.kind = kind
        self.namespace = namespace
        self.on_event = on_event
        self.stopping = stopping
        self.on_reconnect = on_reconnect  # called when a stream opens again after a failure
        self.on_relist = on_relist  # called after listing again (not after the first listing)
        self.on_gap = on_gap  # called when the stream broke or its version was too old: events may be lost
        self.failures = 0  # in a row
        self.version: str | None = None  # the last resourceVersion seen; None: list (again) first
        self.listed = False
        self.served = True  # False while an optional kind's CRD is not installed

    def list(self) -> None:
        """The first listing reports its objects as a listing (None: the apps' own listing starts their passes);
        a listing again after a gap reports them as ADDED, so that one changed meanwhile starts a pass."""
        event_type = "ADDED" if self.listed else None
        listing = kube.list_pages(self.kind, self.namespace)
        uids: set[str] = set()
        for obj in listing:
            self.on_event(event_type, obj)
            uids.add(str((obj.get("metadata") or {}).get("uid")))
        if not listing.served:
            # An optional kind (the Gateway API's HTTPRoute) whose CRD is not installed: nothing to index; list
            # again later, so that the CRD installed meanwhile is watched without a restart.
            if self.served:
                log.info(
                    "%s is not served by this cluster; looking again every %.0fs",
                    self._scope(),
                    UNSERVED_RETRY,
                )
            self.served = False
            self.version = None
            return
        if not self.served:
            log.info("%s is served now: watching it", self._scope())
            self.served = True
        self.version = listing.resource_version
        if self.listed:
            self.on_relist(self.kind, self.namespace, uids)
        self.listed = True

    def follow(self) -> None:
        """Watch until `stopping` is set, listing again whenever the version is too old."""
        while not self.stopping.is_set():
            try:
                if self.version is None:
                    self.list()
                    if not self.served:
                        self.stopping.wait(UNSERVED_RETRY)
                        continue
                for event in kube.watch(self.kind, self.namespace, self.version or "", self._opened):
                    if self.stopping.is_set():
                        return
                    self._take(event)
            except kube.Gone:
                log.info("watch of %s: its version is too old; listing again", self._scope())
                self.version = None
                self.on_gap()
            except Exception as error:  # the thread must survive anything, an API server outage above all
                self.on_gap()
                delay = BACKOFF[min(self.failures, len(BACKOFF) - 1)]
                self.failures += 1
                expected = isinstance(error, kube.ApiError | OSError | ValueError)  # requests' are OSErrors
                log.log(
                    logging.WARNING if expected else logging.ERROR,
                    "watch of %s broke (%s); reopening in %.1fs",
                    self._scope(),
                    error,
                    delay,
                    exc_info=not expected,
                )
                self.stopping.wait(delay)

    def _opened(self) -> None:
        if self.failures:
            log.info("watch of %s: open again", self._scope())
            self.failures = 0
            self.on_reconnect()

    def _take(self, event: Mapping[str, Any]) -> None:
        obj = event.get("object") or {}
        self.version = (obj.get("metadata") or {}).get("resourceVersion") or self.version
        if event.get("type") != "BOOKMARK":
            self.on_event(str(event.get("type")), obj)

    def _scope(self) -> str:
        return f"{self.kind} in {self.namespace or 'all namespaces'}"


class KindWatches:
    """Some kinds (the child kinds, or the apps) in every watched namespace: `start` lists them all, then
    follows each in a thread."""

    def __init__(
        self,
        kinds: Sequence[str],
        namespaces: Sequence[str | None],
        on_event: OnEvent,
        on_reconnect: Callable[[], None] = lambda: None,
        on_relist: OnRelist = lambda kind, namespace, uids: None,
    ) -> None:
        self.stopping = threading.Event()
        self.gaps = 0  # streams broken or listed again since the start (only ever grows)
        self._gaps_guard = threading.Lock()
        self.watches = [
            KindWatch(kind, ns, on_event, self.stopping, on_reconnect, on_relist, self._gap)
            for kind in kinds
            for ns in namespaces
        ]
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        """`list`, then `follow`."""
        self.list()
        self.follow()

    def list(self) -> None:
        """List every kind (blocking: the caller knows every object listed when this returns). The listings run
        side by side: each waits on the API server more than on this process, and at thousands of apps they
        are most of a start (docs/benchmarks.md, stop 27). A failed one fails the start."""
        with ThreadPoolExecutor(max_workers=LISTINGS_AT_ONCE, thread_name_prefix="list") as pool:
            for _ in pool.map(KindWatch.list, self.watches):
                pass

    def follow(self) -> None:
        """Follow each kind from its listing in a daemon thread (a stream blocked in a read never holds the
        process up)."""
        for kind_watch in self.watches:
            name = f"watch-{kind_watch.kind}-{kind_watch.namespace or 'all'}"
            thread = threading.Thread(target=kind_watch.follow, name=name, daemon=True)
            thread.start()
            self.threads.append(thread)

    def _gap(self) -> None:
        with self._gaps_guard:
            self.gaps += 1

    def stop(self) -> None:
        """Ask every thread to stop: at its next event, or when its stream ends."""
        self.stopping.set()
