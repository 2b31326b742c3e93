"""childwatch.py against a real API server: the first listing, then every change as an event, also after
reopening from an old version."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from maestro.kube import client as kube
from maestro.runtime import childwatch
from tests.e2e.kubectl import Kubectl
from tests.e2e.waits import wait_until


class Recorder:
    """The events a watch reports, as (type, name), in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str | None, str]] = []
        self._guard = threading.Lock()

    def __call__(self, event_type: str | None, obj: Mapping[str, Any]) -> None:
        with self._guard:
            self.events.append((event_type, str(obj["metadata"]["name"])))

    def seen(self, *wanted: tuple[str | None, str]) -> bool:
        with self._guard:
            return all(event in self.events for event in wanted)


def service(kubectl: Kubectl, name: str) -> None:
    kubectl("create", "service", "clusterip", name, "--tcp=80:8080")


def test_lists_then_reports_each_change(namespace: str, kubectl: Kubectl) -> None:
    kube.load_config()
    service(kubectl, "before")
    recorder = Recorder()
    watches = childwatch.KindWatches(["Service"], [namespace], recorder)
    watches.start()  # returns once the listing is taken in
    try:
        assert recorder.events == [(None, "before")]
        service(kubectl, "after")
        kubectl("label", "service", "after", "edited=yes")
        kubectl("delete", "service", "before")
        wait_until(
            "the watch to report the changes",
            lambda: recorder.seen(("ADDED", "after"), ("MODIFIED", "after"), ("DELETED", "before")),
            timeout=30,
        )
    finally:
        watches.stop()


def test_reopened_from_an_old_version_it_misses_nothing(namespace: str, kubectl: Kubectl) -> None:
    """As after a long gap: listed once, and the version to reopen from is the cluster's first. An API server
    that has compacted it away answers 410 Gone and the watch lists again, reporting what it lists as ADDED;
    a young one (a fresh test cluster: compaction runs every 5 minutes) replays every change since, which
    reports it as ADDED too. Either way the object made during the gap is reported, and so is what follows."""
    kube.load_config()
    service(kubectl, "made-in-the-gap")
    recorder = Recorder()
    stopping = threading.Event()
    kind_watch = childwatch.KindWatch("Service", namespace, recorder, stopping)
    kind_watch.listed, kind_watch.version = True, "1"
    thread = threading.Thread(target=kind_watch.follow, daemon=True)
    thread.start()
    try:
        wait_until("the gap's object", lambda: recorder.seen(("ADDED", "made-in-the-gap")), timeout=60)
        service(kubectl, "after-the-gap")
        wait_until("events after it", lambda: recorder.seen(("ADDED", "after-the-gap")), timeout=30)
    finally:
        stopping.set()
