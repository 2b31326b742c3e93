"""HA: of several operator replicas, only one acts. kopf peering does the pausing; this module fills its gaps.

kopf peering: every replica keeps a record (priority, lifetime, last seen) in the status of a peering object
(ClusterKopfPeering cluster-wide, KopfPeering per watched namespace) and pauses its watch streams while a live
peer has a higher priority, or the same (then kopf freezes every peer). So Maestro:

- gives each replica a distinct priority at startup, higher for older replicas: a standby that restarts, or
  the new pod of a rolling update, never preempts the replica that acts;
- creates the peering objects (kopf only patches them; with mandatory peering and no object kopf stays
  paused forever, so a missing CRD or namespace fails the startup instead);
- answers "may this replica act now?" for the work kopf does not pause, the safety pass (a plain asyncio
  task) and the operator's own watches, by the same rule kopf applies (`blockers`, checked against kopf's own
  code in the unit tests), and calls `on_acting` when this replica takes over (the operator resumes every app,
  as kopf does with its watches when it unpauses them);
- publishes the role as `maestro_leader` and logs every change of it (`Leadership`, one per operator).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from maestro import metrics
from maestro.kube import client as kube

log = logging.getLogger(__name__)

GROUP = "kopf.dev"
VERSION = "v1"
CLUSTER_KIND, CLUSTER_PLURAL = "ClusterKopfPeering", "clusterkopfpeerings"
NAMESPACED_KIND, NAMESPACED_PLURAL = "KopfPeering", "kopfpeerings"
DEFAULT_NAME = "maestro"
# Seconds a replica's record stays valid without a keep-alive. kopf renews it `lifetime - randint(5, 10)`
# seconds (at least 1) after the last time: with 10 s, a PATCH every 1-5 s (Kubernetes' own leader election
# renews every 2 s) and always at least 5 s of margin for a slow request. A standby then takes over 5-10 s after
# the acting replica dies (plus one pass); a graceful stop removes the record at once. Longer lifetimes only
# delay the takeover; shorter ones cannot renew earlier than every second.
DEFAULT_LIFETIME = 10
# kopf assumes this lifetime for a record that carries none.
KOPF_DEFAULT_LIFETIME = 60


@dataclass(frozen=True)
class Peering:
    name: str
    identity: str
    priority: int
    lifetime: int
    namespaces: tuple[str, ...] | None  # None: cluster-wide, one ClusterKopfPeering

    def objects(self) -> list[tuple[str | None, str]]:
        """(namespace or None, API path) of every peering object this replica keeps a record in."""
        base = f"/apis/{GROUP}/{VERSION}"
        if self.namespaces is None:
            return [(None, f"{base}/{CLUSTER_PLURAL}/{self.name}")]
        return [(ns, f"{base}/namespaces/{ns}/{NAMESPACED_PLURAL}/{self.name}") for ns in self.namespaces]


def identity() -> str:
    """This replica's record key: the pod name (its hostname in a pod), the process, and a random suffix."""
    return f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(2)}"


def startup_priority(now_ns: int | None = None, jitter: int | None = None) -> int:
    """Higher for replicas started earlier: minus the start time in milliseconds, times 1000 plus a random
    0-999 so that two replicas started in the same millisecond still differ (equal priorities freeze kopf).
    Stays below 2**53, exact in any JSON reader. Negative: a `kopf run --dev` (priority 666) still wins."""
    millis = (time.time_ns() if now_ns is None else now_ns) // 1_000_000
    return -(millis * 1000 + (secrets.randbelow(1000) if jitter is None else jitter))


def blockers(status: Mapping[str, Any], own_identity: str, priority: int, now: datetime) -> list[str]:
    """The live peers that make kopf pause this replica: a priority higher than ours, or the same.

    `status` is the peering object's status: identity -> {priority, lifetime, lastseen}. A record is dead
    once lastseen + lifetime has passed (kopf's rule in kopf/_core/engines/peering.py)."""
    found = []
    for peer, record in status.items():
        if peer == own_identity or not isinstance(record, Mapping):
            continue
        lastseen = record.get("lastseen")
        seen = datetime.fromisoformat(lastseen) if isinstance(lastseen, str) else now
        if seen.tzinfo is None:
            seen = seen.replace(tzinfo=UTC)
        lifetime = timedelta(seconds=int(record.get("lifetime", KOPF_DEFAULT_LIFETIME)))
        if seen + lifetime <= now:
            continue
        if int(record.get("priority", 0)) >= priority:
            found.append(peer)
    return found


def _read(path: str) -> dict[str, Any] | None:
    """The object at `path`, or None when there is none."""
    try:
        found: dict[str, Any] = kube.request("GET", path)
    except kube.ApiError as error:
        if error.status == 404:
            return None
        raise
    return found


def ensure_objects(peering: Peering) -> None:
    """Create the peering objects that do not exist yet (create only: an existing one is left as it is).
    Raises `kube.ApiError` when one cannot be created (the CRD is not installed, the namespace is missing)."""
    for namespace, path in peering.objects():
        collection = path.rsplit("/", 1)[0]
        meta: dict[str, str] = {"name": peering.name}
        if namespace is not None:
            meta["namespace"] = namespace
        kind = CLUSTER_KIND if namespace is None else NAMESPACED_KIND
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": meta}
        try:
            kube.request("POST", collection, body=body)
        except kube.ApiError as error:
            if error.status == 409:  # AlreadyExists: another replica or an earlier run made it
                continue
            if error.status != 404:
                raise
            where = f"namespace {namespace}" if namespace else "the cluster"
            raise kube.ApiError(
                404,
                "NotFound",
                f"cannot create {kind} {peering.name} in {where}: install the {GROUP} peering CRDs "
                "(the Helm chart's crds/) and create the namespace, or run without --peering",
            ) from None


def standing_by_for(peering: Peering, now: datetime | None = None) -> list[str]:
    """The peers this replica gives way to now (empty: it acts). A missing peering object means standing
    by too: kopf stays paused until the object exists."""
    now = now or datetime.now(UTC)
    found: list[str] = []
    for namespace, path in peering.objects():
        obj = _read(path)
        if obj is None:
            found.append(f"<no {peering.name} peering object in {namespace or 'the cluster'}>")
            continue
        found += blockers(obj.get("status") or {}, peering.identity, peering.priority, now)
    return sorted(set(found))


class Leadership:
    """This replica's role: standalone (no peering: it always acts), or one of the peers of `peering`."""

    def __init__(self, peering: Peering | None = None) -> None:
        self.peering = peering
        self._acting: bool | None = True if peering is None else None  # the role last seen by `monitor`
        self.on_acting: Callable[[], None] = lambda: None  # called (in the event loop) on taking over
        self._stopping = False  # set by `stand_down`: this replica acts no more
        metrics.LEADER.set(1 if peering is None else 0)

    def acting(self) -> bool:
        """Whether this replica may reconcile now (always, standalone). Blocking: one GET per peering object."""
        if self._stopping:
            return False
        if self.peering is None:
            return True
        return not standing_by_for(self.peering)

    def known_acting(self) -> bool:
        """Whether this replica acted when its role was last checked (no request: for every watch event that
        kopf does not pause, childwatch.py's). A replica that has just taken over resumes every app
        (`on_acting`)."""
        return not self._stopping and (self.peering is None or self._acting is True)

    def stand_down(self) -> None:
        """This replica is stopping: it acts no more, whatever its role (the passes running finish)."""
        self._stopping = True

    def role(self) -> str:
        """`active`, `standby`, or `starting` (not known yet) for the readiness answer."""
        if self._acting is None:
            return "starting"
        return "active" if self._acting else "standby"

    def set_role(self, now_acting: bool, peers: list[str]) -> None:
        """Take in the role just read: log a change, publish it as `maestro_leader`."""
        priority = self.peering.priority if self.peering else None
        if now_acting != self._acting:
            if now_acting:
                log.info("acting: no live peer with a higher priority (own priority %s)", priority)
                self._acting = True  # before the hook: what it starts must see this replica acting
                self.on_acting()
            else:
                log.info("standing by for %s (own priority %s)", ", ".join(peers), priority)
                metrics.forget_all()
        self._acting = now_acting
        metrics.LEADER.set(1 if now_acting else 0)

    async def monitor(self, interval: float) -> None:
        """Follow this replica's role (for `maestro_leader`, the readiness answer and the log) until cancelled."""
        peering = self.peering
        if peering is None:
            return
        loop = asyncio.get_running_loop()
        while True:
            try:
                peers = await loop.run_in_executor(None, standing_by_for, peering)
                self.set_role(not peers, peers)
            except (kube.ApiError, OSError) as error:
                log.warning("cannot read the peering object: %s", error)
            await asyncio.sleep(interval)
