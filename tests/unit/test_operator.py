"""One operator object (operator.py): its settings, that two of them share nothing, that kopf hands every handler
the one operator as its memo, and what its child events and passes do to its caches and queue."""

from __future__ import annotations

import asyncio
import copy
from types import SimpleNamespace
from typing import Any

import kopf
import pytest
from kopf._cogs.structs import ephemera
from kopf._core.actions import lifecycles
from kopf._core.engines import activities, indexing
from kopf._core.intents import causes
from kopf._core.reactor import inventory

import maestro.runtime.handlers  # noqa: F401  (registers the kopf handlers the test runs)
from maestro.controller import reconcile, statushold
from maestro.runtime import leadership
from maestro.runtime import operator as operator_module
from maestro.runtime.operator import Operator
from maestro.runtime.settings import Settings

# No worker threads: a queued pass stays queued, where the test can count it.
QUIET = Settings(workers=0)


def app(name: str = "shop", generation: int = 1, observed: int | None = None) -> dict[str, Any]:
    status = {} if observed is None else {"observedGeneration": observed}
    return {
        "apiVersion": "maestro.dev/v1alpha1",
        "kind": "MicroserviceApp",
        "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}", "generation": generation},
        "spec": {"services": [{"name": "web", "image": "web:1"}]},
        "status": status,
    }


def child(app_name: str = "shop") -> dict[str, Any]:
    return {
        "kind": "Deployment",
        "metadata": {
            "name": f"{app_name}-web",
            "namespace": "ns",
            "uid": "child-1",
            "resourceVersion": "5",
            "labels": {"app.kubernetes.io/instance": app_name, "app.kubernetes.io/managed-by": "maestro"},
            "ownerReferences": [{"kind": "MicroserviceApp", "uid": f"uid-{app_name}", "controller": True}],
        },
        "spec": {"replicas": 1},
    }


def test_settings_defaults_and_environment() -> None:
    defaults = Settings()
    assert (defaults.safety_interval, defaults.workers, defaults.status_hold) == (60.0, 8, 2.0)
    assert defaults.scopes() == [None]  # every namespace
    assert Settings.from_env(["a", "b"], environ={}) == Settings(namespaces=("a", "b"))
    tuned = Settings.from_env([], environ={"MAESTRO_SAFETY_INTERVAL": "2", "MAESTRO_STATUS_HOLD": "0.5"})
    assert (tuned.safety_interval, tuned.status_hold, tuned.scopes()) == (2.0, 0.5, [None])
    assert Settings(namespaces=("a",)).scopes() == ["a"]


def test_the_operator_is_built_from_its_settings() -> None:
    operator = Operator(Settings(status_hold=5.0, workers=0))
    assert operator.stores.apps is operator.apps
    assert operator.stores.children is operator.children
    assert operator.stores.held is operator.held
    assert operator.held.delay(("ns", "shop"), {"phase": "Ready"}, {"phase": "Progressing"}) == 5.0
    assert operator.leadership.acting()  # standalone unless given a peering


def test_two_operators_share_nothing() -> None:
    one, other = Operator(QUIET), Operator(QUIET)
    one.apps.record(app())
    one.children.record(child())
    one.request(app())
    assert one.apps.get("ns", "shop") is not None and other.apps.get("ns", "shop") is None
    assert len(one.children) == 1 and len(other.children) == 0
    assert (one.passes.depth(), other.passes.depth()) == (1, 0)


def test_kopf_hands_every_object_the_one_operator() -> None:
    """kopf copies the memo into the memory it keeps of each object: the copy is the operator itself."""
    operator = Operator(QUIET)
    assert copy.copy(operator) is operator

    async def memo_of(body: dict[str, Any]) -> object:
        memories = inventory.ResourceMemories()
        memory = await memories.recall(body, memobase=ephemera.AnyMemo(operator))  # type: ignore[arg-type]
        return memory.memo

    assert asyncio.run(memo_of(app("a"))) is operator
    assert asyncio.run(memo_of(app("b"))) is operator


def test_an_app_event_with_a_spec_not_acted_on_queues_a_pass() -> None:
    operator = Operator(QUIET)
    operator.on_app("MODIFIED", app(generation=2, observed=1))
    assert operator.passes.depth() == 1
    assert operator.apps.get("ns", "shop") is not None


def test_an_app_event_of_a_status_write_queues_no_pass() -> None:
    operator = Operator(QUIET)
    operator.on_app("MODIFIED", app(generation=2, observed=2))
    assert operator.passes.depth() == 0
    assert operator.apps.get("ns", "shop") is not None  # the cache has this version all the same


def test_an_app_deleted_forgets_it_and_its_held_status() -> None:
    now = [0.0]
    operator = Operator(QUIET)
    operator.held = statushold.HeldStatuses(hold=2.0, clock=lambda: now[0])
    operator.apps.record(app())
    operator.held.delay(("ns", "shop"), {"phase": "Ready"}, {"phase": "Progressing"})
    now[0] = 1.0
    operator.on_app("DELETED", app())
    assert operator.apps.get("ns", "shop") is None
    assert len(operator.held) == 0
    assert operator.passes.depth() == 0


def test_a_child_deleted_by_hand_brings_a_pass_reading_the_app_afresh() -> None:
    operator = Operator(QUIET)
    operator.apps.record(app())
    operator.on_child(None, child())  # the first listing: no pass
    assert operator.passes.depth() == 0
    operator.on_child("DELETED", child())
    assert operator.apps.get("ns", "shop") is None  # the pass reads the app from the API server
    assert operator.passes.depth() == 1


def test_a_standby_keeps_its_index_and_app_cache_and_starts_no_pass() -> None:
    standby = leadership.Leadership(leadership.Peering("maestro", "me", -1, 10, None))
    standby.set_role(False, ["old"])
    operator = Operator(QUIET, standby)
    operator.on_child("ADDED", child())
    operator.on_app(None, app())
    operator.on_app("MODIFIED", app(generation=2, observed=1))
    assert len(operator.children) == 1 and operator.apps.get("ns", "shop") is not None
    assert operator.passes.depth() == 0
    leadership.Leadership()  # the gauge back to standalone's


def test_a_standby_taking_over_resumes_every_app(monkeypatch: pytest.MonkeyPatch) -> None:
    standby = leadership.Leadership(leadership.Peering("maestro", "me", -1, 10, None))
    standby.set_role(False, ["old"])
    operator = Operator(QUIET, standby)
    listed = [app("a"), app("b", generation=2, observed=1)]
    monkeypatch.setattr(operator_module.kube, "list_pages", lambda kind, scope: iter(listed))
    operator.on_app(None, app("a"))  # the start's listing, on a standby: no pass
    assert operator.passes.depth() == 0

    async def take_over() -> None:
        operator._app_watches = object()  # type: ignore[assignment]  # the start's listing is done
        standby.set_role(True, [])
        for _ in range(100):  # the resume runs in a thread
            if operator.passes.depth() == 2:
                return
            await asyncio.sleep(0.01)

    asyncio.run(take_over())
    assert operator.passes.depth() == 2, "a pass over each app listed, as at a start"
    leadership.Leadership()


def test_a_resume_that_fails_is_logged_with_its_cause(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The resume runs in the executor and nobody awaits its future: what it raises must be logged where it runs.
    operator = Operator(QUIET)

    def unreachable(kind: Any, scope: Any) -> Any:
        raise ConnectionRefusedError("the API server is restarting")

    def malformed(kind: Any, scope: Any) -> Any:
        return iter([{"metadata": {}}])  # no name: a KeyError in on_app, a bug

    monkeypatch.setattr(operator_module.kube, "list_pages", unreachable)
    operator._resume_logged()
    assert "could not list the apps to resume them" in caplog.text
    monkeypatch.setattr(operator_module.kube, "list_pages", malformed)
    operator._resume_logged()
    failed = [record for record in caplog.records if record.getMessage() == "resuming the apps failed"]
    assert failed and failed[0].exc_info is not None, "logged with its traceback"


def test_taking_over_before_the_apps_first_listing_leaves_the_resume_to_it() -> None:
    standby = leadership.Leadership(leadership.Peering("maestro", "me", -1, 10, None))
    operator = Operator(QUIET, standby)
    standby.set_role(True, [])  # no running loop needed: nothing is started
    operator.on_app(None, app())  # the first listing, now acting
    assert operator.passes.depth() == 1
    leadership.Leadership()


def test_a_failed_pass_forgets_the_app_and_a_held_status_comes_back(monkeypatch: pytest.MonkeyPatch) -> None:
    operator = Operator(QUIET)
    operator.apps.record(app())

    def fail(app: Any, stores: Any) -> Any:
        raise OSError("connection refused")

    monkeypatch.setattr(reconcile, "reconcile", fail)
    with pytest.raises(OSError):
        operator.run_pass(app())
    assert operator.apps.get("ns", "shop") is None  # its retry reads it from the API server

    later: list[tuple[Any, float]] = []
    monkeypatch.setattr(operator.passes, "add_after", lambda key, item, delay: later.append((key, delay)))
    monkeypatch.setattr(reconcile, "reconcile", lambda app, stores: SimpleNamespace(recheck_after=1.5))
    operator.run_pass(app())
    assert later == [(("ns", "shop"), 1.5)]


def test_kopfs_startup_and_cleanup_handlers_get_the_operator(monkeypatch: pytest.MonkeyPatch) -> None:
    """kopf's own activity runner, with the handlers handlers.py registers, as `kopf.operator(memo=...)` runs it."""
    operator = Operator(Settings(workers=3))
    calls: list[str] = []

    async def start() -> None:
        calls.append("start")

    monkeypatch.setattr(operator, "start", start)
    monkeypatch.setattr(operator, "stop", lambda: calls.append("stop"))
    settings = kopf.OperatorSettings()

    async def run(activity: causes.Activity) -> None:
        await activities.run_activity(
            lifecycle=lifecycles.all_at_once,
            registry=kopf.get_default_registry(),
            settings=settings,
            activity=activity,
            indices=indexing.OperatorIndexers().indices,
            memo=ephemera.AnyMemo(operator),  # type: ignore[arg-type]
        )

    asyncio.run(run(causes.Activity.STARTUP))
    assert calls == ["start"]
    assert settings.execution.max_workers == 3
    asyncio.run(run(causes.Activity.CLEANUP))
    assert calls[-1] == "stop"


def test_the_resume_pass_at_start_reads_the_caches_not_live(monkeypatch: pytest.MonkeyPatch) -> None:
    # The child watches listed every child before the apps' listing began, and that listing filled the app
    # cache: a live read (a LIST per child kind per app) would return the same.
    operator = Operator(QUIET)
    queued: list[dict[str, Any]] = []
    monkeypatch.setattr(operator.passes, "add", lambda key, item, urgent=False: queued.append(item))
    operator.on_app(None, app())
    assert [item["live"] for item in queued] == [False]
    assert operator.apps.get("ns", "shop") is not None


def test_apps_listed_before_the_children_are_decided_once_the_children_are_listed() -> None:
    # `start` lists the apps beside the children: an app listed first waits for the child index.
    operator = Operator(QUIET)
    operator._listed_early = []  # a children's listing under way
    operator.on_app(None, app("shop"))
    operator.on_app(None, app("gone"))
    operator.on_app("MODIFIED", app("cart", generation=2, observed=1))  # not a first listing: at once
    assert operator.passes.depth() == 1
    operator.on_child(None, child("shop"))
    operator.apps.forget("ns", "gone")  # deleted meanwhile (its DELETED event)
    operator._resume_listed_early()
    assert operator.passes.depth() == 2, "shop now; not the app deleted meanwhile"
    operator.on_app(None, app("late"))  # the children are listed: decided at once
    assert operator.passes.depth() == 3
