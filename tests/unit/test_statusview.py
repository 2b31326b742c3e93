"""cli/statusview.py: the tree of `maestro status` from an app, its children and its Events (pure), as data and
as text; and the --watch loop of cli/status.py against a scripted sequence of snapshots (no cluster)."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from maestro import render
from maestro.cli import status as status_cmd
from maestro.cli import statusview
from maestro.render import kinds

from .helpers import app, svc

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def shop(generation: int = 1, **db_fields: Any) -> dict[str, Any]:
    """db (autoscaled: all four child kinds) and web, which depends on it."""
    obj = app(
        svc("db", autoscaling={"minReplicas": 2, "maxReplicas": 4}, **db_fields),
        svc("web", replicas=2, dependsOn=["db"]),
    )
    obj["metadata"]["generation"] = generation
    return obj


def children(obj: dict[str, Any], **deployments: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """The app's rendered children as kube.owned_children returns them; `deployments`: status per service (a
    service given None has no children yet)."""
    result = {}
    for child in render.render_app(obj):
        component = child["metadata"]["labels"]["app.kubernetes.io/component"]
        status = deployments.get(component, available(2))
        if status is None:
            continue
        child = dict(child)
        if child["kind"] == "Deployment":
            child["metadata"] = child["metadata"] | {"generation": 1}
            # the API server defaults spec.replicas, and an autoscaler sets it
            child["spec"] = {"replicas": status.get("replicas", 1)} | child["spec"]
            child["status"] = status
        result[(child["kind"], child["metadata"]["name"])] = child
    return result


def available(replicas: int) -> dict[str, Any]:
    return {
        "observedGeneration": 1,
        "replicas": replicas,
        "readyReplicas": replicas,
        "updatedReplicas": replicas,
        "availableReplicas": replicas,
        "conditions": [{"type": "Available", "status": "True"}],
    }


ROLLING = {"observedGeneration": 1, "replicas": 2, "readyReplicas": 1, "updatedReplicas": 1}
DEADLINE = {
    "observedGeneration": 1,
    "replicas": 1,
    "conditions": [
        {
            "type": "Progressing",
            "status": "False",
            "reason": "ProgressDeadlineExceeded",
            "message": "timed out",
        }
    ],
}


def with_status(obj: dict[str, Any], phase: str, services: list[dict[str, Any]] | None, **extra: Any) -> None:
    ready = sum(1 for s in services or [] if s["phase"] == "Ready")
    message = extra.pop("message", "")
    obj["status"] = {
        "observedGeneration": extra.pop("observed", obj["metadata"]["generation"]),
        "phase": phase,
        "readyServices": f"{ready}/{len(services or [])}" if services is not None else None,
        "conditions": [
            {"type": "Ready", "status": "True" if phase == "Ready" else "False", "message": message}
        ],
        **({"services": services} if services is not None else {}),
    }


def service(name: str, phase: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "phase": phase, "endpoint": f"http://shop-{name}.prod.svc:80", **fields}


def warning(reason: str, message: str, at: str, count: int = 1) -> dict[str, Any]:
    return {"type": "Warning", "reason": reason, "message": message, "lastTimestamp": at, "count": count}


@dataclass
class Case:
    id: str
    app: dict[str, Any]
    children: dict[tuple[str, str], dict[str, Any]]
    events: list[dict[str, Any]] = field(default_factory=list)
    shows: tuple[str, ...] = ()  # substrings of the text, in this order
    hides: tuple[str, ...] = ()
    outcome: int | None = None
    progress: str = ""


def cases() -> Iterator[Case]:
    obj = shop()
    with_status(obj, "Ready", [service("db", "Ready"), service("web", "Ready")])
    yield Case(
        "ready",
        obj,
        children(obj),
        events=[warning("RolloutFailed", "an old failure", "2026-01-01T11:00:00Z")],
        shows=(
            "shop  Ready  2/2 services ready  generation 1",
            "├─ db  Ready  http://shop-db.prod.svc:80",
            "│  ├─ Deployment/shop-db  2/2 ready, 2 updated, 2 available",
            "│  │  image registry.example.com/db:1.0.0",
            "│  ├─ Service/shop-db  ClusterIP  80/TCP",
            "│  ├─ HorizontalPodAutoscaler/shop-db  ? current, ? desired (2-4)",
            "│  │  metrics cpu ?/80%",
            "│  ├─ PodDisruptionBudget/shop-db  0 disruptions allowed",
            "│  └─ NetworkPolicy/shop-db  1 ingress rule, egress open",
            "└─ web  Ready",
            "   ├─ PodDisruptionBudget/shop-web",
            "   └─ NetworkPolicy/shop-web  0 ingress rules, egress open",
        ),
        hides=("Warning", "an old failure", "(status is of"),  # old warnings of a Ready app are history
        outcome=0,
        progress="2/2 services ready",
    )

    obj = shop(generation=2)
    with_status(obj, "Ready", [service("db", "Ready"), service("web", "Ready")], observed=1)
    yield Case(
        "new generation not observed yet",
        obj,
        children(obj),
        shows=("shop  Ready  2/2 services ready  generation 2 (status is of 1)",),
        outcome=None,
        progress="waiting for the operator to observe generation 2",
    )

    obj = shop()
    message = "db: 1/2 replicas ready, 1 updated; web: waiting for db to be available"
    db = service("db", "Progressing", message="1/2 replicas ready, 1 updated")
    web = service("web", "Waiting", waitingFor=["db"], message="waiting for db to be available")
    with_status(obj, "Progressing", [db, web], message=message)
    yield Case(
        "progressing and waiting",
        obj,
        children(obj, db=ROLLING, web=None),
        shows=(
            "shop  Progressing  0/2 services ready",
            "  db: 1/2 replicas ready",
            "├─ db  Progressing  http://shop-db.prod.svc:80\n",  # the counts are the Deployment's line
            "Deployment/shop-db  1/2 ready, 1 updated, 0 available",
            "└─ web  Waiting for db  http://shop-web.prod.svc:80",
        ),
        hides=("Deployment/shop-web",),
        progress="0/2 services ready, 1 rolling, 1 waiting",
    )

    obj = shop()
    db = service("db", "Degraded", message="timed out")
    with_status(obj, "Degraded", [db, web], message="db: timed out; web: waiting for db to be available")
    events = [
        warning("RolloutFailed", "db: timed out", "2026-01-01T11:58:00Z", count=2),
        {
            "type": "Normal",
            "reason": "Created",
            "message": "created",
            "lastTimestamp": "2026-01-01T11:59:00Z",
        },
        warning("Older", "first", "2026-01-01T10:00:00Z"),
        warning("Oldest", "dropped: only the last three are shown", "2026-01-01T09:00:00Z"),
        warning("Newest", "last", "2026-01-01T11:59:30Z"),
    ]
    yield Case(
        "degraded with events",
        obj,
        children(obj, db=DEADLINE, web=None),
        events=events,
        shows=(
            "shop  Degraded",
            "├─ db  Degraded  http://shop-db.prod.svc:80\n",
            "│  │  image registry.example.com/db:1.0.0\n│  │  timed out",
            "Warning events:\n  Older (2h ago): first\n  RolloutFailed (x2, 2m ago): db: timed out\n"
            "  Newest (30s ago): last",
        ),
        hides=("Created", "Oldest"),
        outcome=1,
        progress="0/2 services ready, 1 waiting, 1 failed",
    )

    obj = shop()
    cycle = "spec.services[0].dependsOn: dependency cycle db -> web -> db"
    with_status(obj, "Invalid", None, message=cycle)
    yield Case(
        "invalid",
        obj,
        {},
        events=[warning("InvalidSpec", cycle, "2026-01-01T11:59:59Z")],
        shows=(
            "shop  Invalid  generation 1",
            "  " + cycle,
            "├─ db  (no status)",
            "└─ web  (no status)",
            "  InvalidSpec (1s ago): spec.services[0]",
        ),
        outcome=1,
        progress="the spec is invalid",
    )

    obj = shop()
    obj["status"] = {"observedGeneration": 0}  # the CRD's default
    yield Case(
        "no status yet",
        obj,
        {},
        shows=("shop  (no status yet)  generation 1 (not observed yet)",),
        progress="waiting for the operator to observe generation 1",
    )


@pytest.mark.parametrize("case", list(cases()), ids=lambda case: case.id)
def test_tree(case: Case) -> None:
    tree = statusview.build(case.app, case.children, case.events)
    text = "\n".join(statusview.lines(tree, now=NOW)) + "\n"
    position = 0
    for expected in case.shows:
        found = text.find(expected, position)
        assert found >= 0, f"{expected!r} not after position {position} in:\n{text}"
        position = found + len(expected)
    for hidden in case.hides:
        assert hidden not in text, text
    assert statusview.outcome(case.app) == case.outcome
    assert statusview.progress_line(tree) == case.progress
    assert all(len(line) <= statusview.WIDTH for line in text.splitlines()), text
    assert not ANSI.search(text)  # no colour unless asked for (piped output)


def test_data_tree_has_every_child_by_service() -> None:
    obj = shop()
    with_status(obj, "Ready", [service("db", "Ready"), service("web", "Ready")])
    owned = children(obj)
    tree = statusview.build(obj, owned)
    assert [s["name"] for s in tree["services"]] == ["db", "web"]
    listed = {(c["kind"], c["name"]) for s in tree["services"] for c in s["children"]}
    assert listed == set(owned)
    db_kinds = [c["kind"] for c in tree["services"][0]["children"]]
    # in the table's order: db has every kind a service can have but a route
    assert db_kinds == [k for k in kinds.KIND_NAMES if k not in ("Job", "CronJob", "HTTPRoute", "Ingress")]
    deployment = tree["services"][0]["children"][0]
    assert deployment["state"] == "ok" and deployment["image"] == "registry.example.com/db:1.0.0"
    assert tree["progress"] == {"total": 2, "ready": 2, "rolling": 0, "waiting": 0, "failed": 0}


def test_an_unknown_kind_and_a_service_left_out_of_the_spec_are_shown() -> None:
    obj = shop()
    with_status(obj, "Ready", [service("db", "Ready"), service("web", "Ready")])
    owned = children(obj)
    labels = {"app.kubernetes.io/component": "db"}
    owned[("Gadget", "shop-db")] = {
        "metadata": {"name": "shop-db", "labels": labels},
        "status": {"conditions": [{"type": "Accepted", "status": "True"}]},
    }
    gone = {"app.kubernetes.io/component": "old"}
    owned[("Deployment", "shop-old")] = {"metadata": {"name": "shop-old", "labels": gone}, "spec": {}}
    tree = statusview.build(obj, owned)
    text = "\n".join(statusview.lines(tree, now=NOW))
    assert "└─ Gadget/shop-db  Accepted=True" in text
    assert "└─ (not in the spec)\n   └─ Deployment/shop-old  0/1 ready" in text


def test_long_texts_fit_80_columns_with_an_ellipsis() -> None:
    image = "registry.example.com/" + "very-long-path/" * 6 + "db:1.0.0-with-a-long-tag"
    obj = shop(image=image)
    long_message = "db: " + "this rollout failed for a reason that takes many words to say " * 3
    with_status(obj, "Degraded", [service("db", "Degraded", message=long_message)], message=long_message)
    tree = statusview.build(obj, children(obj, db=DEADLINE), [warning("RolloutFailed", long_message, "x")])
    text = statusview.lines(tree, now=NOW)
    assert all(len(line) <= 80 for line in text), "\n".join(text)
    image_line = next(line for line in text if "image " in line)
    assert "…" in image_line and image_line.endswith("db:1.0.0-with-a-long-tag")  # the tag stays
    assert any(line.endswith("…") and "this rollout failed" in line for line in text)
    ascii_text = statusview.lines(tree, now=NOW, glyphs=statusview.ASCII)
    assert all(line.isascii() and len(line) <= 80 for line in ascii_text), "\n".join(ascii_text)
    wide = statusview.lines(tree, now=NOW, width=400)
    assert any(long_message.strip() in line for line in wide)


def test_colour_only_when_asked() -> None:
    obj = shop()
    with_status(obj, "Degraded", [service("db", "Degraded"), service("web", "Ready")])
    tree = statusview.build(obj, children(obj, db=DEADLINE))
    coloured = statusview.lines(tree, now=NOW, color=True)
    assert "\x1b[31mDegraded\x1b[0m" in coloured[0]  # red: failed
    assert any("\x1b[32mReady\x1b[0m" in line for line in coloured)  # green: Ready
    plain = [ANSI.sub("", line) for line in coloured]
    assert plain == statusview.lines(tree, now=NOW)
    assert all(len(line) <= 80 for line in plain)  # colour codes do not count toward the width


def test_display_is_plain_when_piped_or_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert not status_cmd.Display.for_stream(io.StringIO(), None).color
    assert status_cmd.Display.for_stream(Terminal(), None).color
    monkeypatch.setenv("NO_COLOR", "1")
    assert not status_cmd.Display.for_stream(Terminal(), None).color


# ------------------------------------------------------------------------------------ --watch, scripted


def snapshots(*phases: tuple[str, int]) -> Iterator[status_cmd.Snapshot]:
    """(phase, observed generation) of an app at generation 2, one per poll."""
    for phase, observed in phases:
        obj = shop(generation=2)
        with_status(obj, phase, [service("db", phase), service("web", phase)], observed=observed)
        yield obj, statusview.build(obj, {})


def run_watch(
    polls: Iterator[status_cmd.Snapshot], timeout: float | None = None
) -> tuple[int, list[str], int]:
    out = io.StringIO()
    display = status_cmd.Display(out, None, False, False, 80, statusview.UNICODE)
    clock = iter(range(1000))
    calls = 0

    def fetch() -> status_cmd.Snapshot:
        nonlocal calls
        calls += 1
        return next(polls)

    code = status_cmd.watch(
        fetch, display, timeout=timeout, clock=lambda: float(next(clock)), sleep=lambda _: None
    )
    return code, out.getvalue().split("\n\n")[:-1], calls


def test_watch_ends_when_ready_at_the_current_generation() -> None:
    polls = snapshots(("Ready", 1), ("Progressing", 2), ("Progressing", 2), ("Ready", 2), ("Ready", 2))
    code, blocks, calls = run_watch(polls)
    assert (code, calls) == (0, 4)  # a Ready status of the previous generation does not count
    assert len(blocks) == 3  # piped: the unchanged view is not printed again
    assert blocks[0].endswith("waiting for the operator to observe generation 2")
    assert blocks[-1].startswith("shop  Ready") and blocks[-1].endswith("2/2 services ready")


@pytest.mark.parametrize("phase", ["Degraded", "Invalid"])
def test_watch_fails_when_degraded_or_invalid(phase: str) -> None:
    code, blocks, _ = run_watch(snapshots((phase, 1), ("Progressing", 2), (phase, 2)))
    assert code == 1 and blocks[-1].startswith(f"shop  {phase}")


def test_watch_times_out(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, calls = run_watch(snapshots(*[("Progressing", 2)] * 10), timeout=3)
    assert (code, calls) == (3, 2)  # the fake clock moves a second per reading
    assert "timed out after 3s: shop is not Ready (0/2 services ready, 2 rolling)" in capsys.readouterr().err


# ------------------------------------------------------------------------- the command's errors, offline


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--kubeconfig", "/nonexistent/kubeconfig"], "cannot load the kubeconfig"),
        (["--timeout", "5"], "--timeout goes with --watch"),
    ],
)
def test_errors_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    from maestro.cli import main as cli

    assert cli.main(["status", "shop", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("maestro status: ") and message in err


def test_jobs_are_shown_after_the_services_with_their_runs() -> None:
    obj = shop()
    obj["spec"]["jobs"] = [
        {"name": "migrate", "image": "registry.example.com/migrate:1"},
        {"name": "report", "image": "registry.example.com/report:1", "schedule": "@daily"},
    ]
    rendered = children(obj)
    (run,) = [key for key in rendered if key[0] == "Job"]
    failure = "BackoffLimitExceeded: Job has reached the specified backoff limit"
    rendered[run]["status"] = {
        "failed": 3,
        "conditions": [
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": failure[22:]}
        ],
    }
    earlier = {
        "metadata": {"name": "shop-migrate-0000000000", "labels": {"app.kubernetes.io/component": "migrate"}}
    }
    rendered[("Job", "shop-migrate-0000000000")] = earlier | {
        "status": {
            "succeeded": 1,
            "completionTime": "2026-01-01T00:00:00Z",
            "conditions": [{"type": "Complete", "status": "True"}],
        }
    }
    with_status(obj, "Degraded", [service("db", "Ready"), service("web", "Ready")])
    obj["status"]["jobs"] = [
        {
            "name": "migrate",
            "phase": "Failed",
            "run": run[1],
            "message": f"{failure}; pod x: exit code 3 (Error): boom",
        },
        {"name": "report", "phase": "Scheduled", "run": "shop-report", "lastResult": "Succeeded"},
    ]
    tree = statusview.build(obj, rendered)
    assert [j["name"] for j in tree["jobs"]] == ["migrate", "report"]
    migrate, report = tree["jobs"]
    assert [c["name"] for c in migrate["children"]] == [
        run[1],
        "shop-migrate-0000000000",
    ]  # the current run first
    assert [c["state"] for c in migrate["children"]] == ["failed", "ok"]
    assert [c["kind"] for c in report["children"]] == ["CronJob"]
    text = "\n".join(statusview.lines(tree, now=NOW, width=200))
    assert "job migrate  Failed  BackoffLimitExceeded" in text and "exit code 3 (Error): boom" in text
    assert f"Job/{run[1]}  failed (3 pods failed)" in text
    assert "job report  Scheduled  last run Succeeded" in text
    assert "CronJob/shop-report  schedule @daily" in text
