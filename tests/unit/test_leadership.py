"""HA: the rule "may this replica act?" matches kopf's own pausing rule, priorities order replicas by age, and
the safety pass of a standby does nothing."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf
import pytest
from kopf._cogs.aiokits import aiotoggles
from kopf._cogs.structs import references
from kopf._core.engines import peering as kopf_peering

from maestro.api import models as api
from maestro.render import kinds
from maestro.runtime import leadership
from maestro.runtime.operator import Operator
from maestro.runtime.settings import Settings

from .helpers import Listed

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
ME, MY_PRIORITY = "me", -100


def record(priority: int, age: float, lifetime: int = 15) -> dict[str, Any]:
    return {
        "priority": priority,
        "lifetime": lifetime,
        "lastseen": (NOW - timedelta(seconds=age)).isoformat(),
    }


SCENARIOS: dict[str, dict[str, Any]] = {
    "alone": {ME: record(MY_PRIORITY, 0)},
    "empty": {},
    "older replica alive": {ME: record(MY_PRIORITY, 0), "old": record(-200 + 300, 3)},
    "younger replica alive": {ME: record(MY_PRIORITY, 0), "young": record(-50 - 100, 3)},
    "older replica dead": {ME: record(MY_PRIORITY, 0), "old": record(200, 20)},
    "same priority": {ME: record(MY_PRIORITY, 0), "twin": record(MY_PRIORITY, 1)},
    "dev operator": {"dev": record(666, 1)},
    "record without lifetime, 30 s old": {
        "x": {"priority": 1, "lastseen": (NOW - timedelta(seconds=30)).isoformat()}
    },
    "record without lastseen": {"x": {"priority": 1, "lifetime": 15}},
    "removed on graceful stop": {ME: record(MY_PRIORITY, 0), "old": None},
}


def kopf_pauses(status: dict[str, Any]) -> bool:
    """Feed the peering object to kopf's own peering handler and read its pause toggle."""
    settings = kopf.OperatorSettings()
    settings.peering.name = "maestro"
    settings.peering.priority = MY_PRIORITY
    conflicts = aiotoggles.Toggle(False)

    async def run() -> bool:
        awake = asyncio.Event()
        awake.set()  # kopf would sleep until the blockers expire; the decision is made before that
        body = {"metadata": {"name": "maestro"}, "status": {k: v for k, v in status.items() if v is not None}}
        await kopf_peering.process_peering_event(
            raw_event={"type": "MODIFIED", "object": body},  # type: ignore[typeddict-item]
            namespace=None,
            resource=references.Resource("kopf.dev", "v1", "clusterkopfpeerings"),
            identity=kopf_peering.Identity(ME),
            settings=settings,
            autoclean=False,
            stream_pressure=awake,
            conflicts_found=conflicts,
        )
        return conflicts.is_on()

    return asyncio.run(run())


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_blockers_follow_kopfs_rule(scenario: str, monkeypatch: pytest.MonkeyPatch) -> None:
    status = {k: v for k, v in SCENARIOS[scenario].items() if v is not None}
    # kopf compares with the wall clock: put its "now" where the records were written.
    monkeypatch.setattr(kopf_peering.datetime, "datetime", _FrozenDatetime)
    ours = bool(leadership.blockers(status, ME, MY_PRIORITY, NOW))
    assert ours == kopf_pauses(SCENARIOS[scenario]), scenario


class _FrozenDatetime(datetime):
    @classmethod
    def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
        return NOW if tz is not None else NOW.replace(tzinfo=None)


def test_blockers_name_the_peers() -> None:
    status = {
        ME: record(MY_PRIORITY, 0),
        "old": record(0, 1),
        "young": record(-500, 1),
        "dead": record(9, 99),
    }
    assert leadership.blockers(status, ME, MY_PRIORITY, NOW) == ["old"]


def test_older_replicas_have_higher_priorities() -> None:
    first = leadership.startup_priority(now_ns=1_700_000_000_000_000_000, jitter=999)
    later = leadership.startup_priority(now_ns=1_700_000_000_001_000_000, jitter=0)  # 1 ms later
    assert first > later
    # Same millisecond: the jitter still tells them apart (equal priorities would freeze every replica).
    assert leadership.startup_priority(now_ns=5_000_000, jitter=1) != leadership.startup_priority(
        now_ns=5_000_000, jitter=2
    )
    # Exact in JSON (below 2**53) for the next few centuries, and below kopf's --dev priority.
    now = leadership.startup_priority()
    assert -(2**53) < now < 0 < 666


def test_identities_differ() -> None:
    assert leadership.identity() != leadership.identity()


def test_peering_objects() -> None:
    cluster = leadership.Peering("maestro", "me", 1, 15, None)
    assert cluster.objects() == [(None, "/apis/kopf.dev/v1/clusterkopfpeerings/maestro")]
    namespaced = leadership.Peering("p", "me", 1, 15, ("a", "b"))
    assert namespaced.objects() == [
        ("a", "/apis/kopf.dev/v1/namespaces/a/kopfpeerings/p"),
        ("b", "/apis/kopf.dev/v1/namespaces/b/kopfpeerings/p"),
    ]


def test_standalone_always_acts() -> None:
    standalone = leadership.Leadership()
    assert standalone.acting() and standalone.known_acting()
    assert standalone.role() == "active"


def test_standby_safety_pass_lists_and_reconciles_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    peering = leadership.Peering("maestro", ME, MY_PRIORITY, 15, None)
    operator = Operator(Settings(), leadership.Leadership(peering))
    monkeypatch.setattr(leadership, "standing_by_for", lambda _p, now=None: ["old"])
    one_app = [{"metadata": {"name": "shop", "namespace": "prod", "uid": "u"}}]

    def list_pages(kind: str, *_a: object, **_k: object) -> Listed:
        calls.append("list" if kind == api.KIND else "children")
        return Listed(kind, one_app if kind == api.KIND else [])

    monkeypatch.setattr(leadership.kube, "list_pages", list_pages)
    monkeypatch.setattr(operator, "request", lambda app, live=False: calls.append("pass"))
    operator.safety_pass()
    assert calls == []
    monkeypatch.setattr(leadership, "standing_by_for", lambda _p, now=None: [])
    operator.safety_pass()
    assert calls == ["list", *["children"] * len(kinds.WATCHED), "pass"]


def test_role_changes_publish_the_leader_gauge() -> None:
    from maestro import metrics

    peer = leadership.Leadership(leadership.Peering("maestro", ME, MY_PRIORITY, 15, None))
    assert peer.role() == "starting" and metrics.LEADER._value.get() == 0
    assert not peer.known_acting()
    peer.set_role(True, [])
    assert peer.role() == "active" and metrics.LEADER._value.get() == 1 and peer.known_acting()
    metrics.record_phase("ns", "app", "Ready")
    peer.set_role(False, ["old"])
    assert peer.role() == "standby" and metrics.LEADER._value.get() == 0 and not peer.known_acting()
    assert metrics.APPS.labels(phase="Ready")._value.get() == 0  # a standby reports no apps
    leadership.Leadership()  # standalone again: the gauge says it acts
    assert metrics.LEADER._value.get() == 1


class FakeResponse:
    def __init__(self, status: int, payload: dict[str, Any]) -> None:
        self.status_code, self._payload, self.reason, self.text = status, payload, "", ""
        self.content = json.dumps(payload).encode()

    def json(self) -> dict[str, Any]:
        return self._payload


class FakeSession:
    def __init__(self, *answers: FakeResponse) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, str, Any]] = []

    def request(self, method: str, url: str, data: Any = None, **_: Any) -> FakeResponse:
        self.calls.append((method, url, None if data is None else json.loads(data)))
        return self.answers.pop(0)


class FakeClient:
    url = "https://api"

    def __init__(self, session: FakeSession) -> None:
        self.session = session


def with_api(monkeypatch: pytest.MonkeyPatch, *answers: FakeResponse) -> FakeSession:
    session = FakeSession(*answers)
    monkeypatch.setattr(leadership.kube, "client", lambda: FakeClient(session))
    return session


def test_peering_objects_are_created_when_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    peering = leadership.Peering("maestro", ME, MY_PRIORITY, 15, ("a", "b"))
    session = with_api(monkeypatch, FakeResponse(201, {}), FakeResponse(409, {"reason": "AlreadyExists"}))
    leadership.ensure_objects(peering)
    assert session.calls == [
        (
            "POST",
            "https://api/apis/kopf.dev/v1/namespaces/a/kopfpeerings",
            {
                "apiVersion": "kopf.dev/v1",
                "kind": "KopfPeering",
                "metadata": {"name": "maestro", "namespace": "a"},
            },
        ),
        (
            "POST",
            "https://api/apis/kopf.dev/v1/namespaces/b/kopfpeerings",
            {
                "apiVersion": "kopf.dev/v1",
                "kind": "KopfPeering",
                "metadata": {"name": "maestro", "namespace": "b"},
            },
        ),
    ]


def test_missing_peering_crd_fails_the_startup_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    with_api(monkeypatch, FakeResponse(404, {}))
    with pytest.raises(leadership.kube.ApiError, match=r"install the kopf\.dev peering CRDs"):
        leadership.ensure_objects(leadership.Peering("maestro", ME, MY_PRIORITY, 15, None))
    with_api(monkeypatch, FakeResponse(403, {"reason": "Forbidden", "message": "no"}))
    with pytest.raises(leadership.kube.ApiError, match="403 Forbidden"):
        leadership.ensure_objects(leadership.Peering("maestro", ME, MY_PRIORITY, 15, None))


def test_standing_by_reads_every_peering_object(monkeypatch: pytest.MonkeyPatch) -> None:
    peering = leadership.Peering("maestro", ME, MY_PRIORITY, 15, ("a", "b"))
    alive = {"status": {ME: record(MY_PRIORITY, 0), "old": record(0, 1)}}
    with_api(
        monkeypatch, FakeResponse(200, {"status": {ME: record(MY_PRIORITY, 0)}}), FakeResponse(200, alive)
    )
    assert leadership.standing_by_for(peering, NOW) == ["old"]
    with_api(monkeypatch, FakeResponse(200, {}), FakeResponse(404, {}))
    assert leadership.standing_by_for(peering, NOW) == ["<no maestro peering object in b>"]
    with_api(monkeypatch, FakeResponse(200, {}), FakeResponse(200, {"status": {}}))
    assert leadership.standing_by_for(peering, NOW) == []


def test_a_replica_standing_down_acts_no_more_whatever_its_role() -> None:
    standalone = leadership.Leadership()
    assert standalone.acting() and standalone.known_acting()
    standalone.stand_down()  # SIGTERM: its peering record goes before its watches stop (cli/run.py)
    assert not standalone.acting() and not standalone.known_acting()
