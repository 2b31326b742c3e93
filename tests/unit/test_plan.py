"""plan.py: whole reconcile passes as pure decisions. Each case is an app, what the pass observed (its owned
children, the objects under its names it does not own, a dry run's refusal, its previous status), and the facts
the plan must state: the writes in order and why, the prunes, who waits for whom, the phase, the events."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from maestro.controller import compare, plan, status
from tests.unit.helpers import app as make_app
from tests.unit.helpers import svc

NOW = "2026-01-01T00:00:00Z"
UID = "0000-1111"  # helpers.app's uid

Children = Callable[[plan.Desired], list[dict[str, Any]]]


def desired_of(app: Mapping[str, Any], hashes: Mapping[str, str] | None = None) -> plan.Desired:
    return plan.desire(app, plan.validated(app), hashes or {})


def rendered(desired: plan.Desired, kind: str, name: str) -> dict[str, Any]:
    """The desired child of that kind and name."""
    return next(
        c for children in desired.children.values() for c in children if compare.key_of(c) == (kind, name)
    )


def in_cluster(
    child: Mapping[str, Any], *, ready: bool = True, failed: bool = False, generation: int = 1
) -> dict[str, Any]:
    """The child as the cluster holds it once applied; a Deployment Available (or failing) at its generation."""
    obj = copy.deepcopy(dict(child))
    obj["metadata"] = {**obj["metadata"], "uid": f"uid-{child['kind']}-{child['metadata']['name']}"}
    obj["metadata"]["generation"] = generation
    if child["kind"] == "Deployment":
        replicas = (obj["spec"] or {}).get("replicas", 1)
        conditions = [{"type": "Available", "status": "True" if ready else "False"}]
        if failed:
            conditions.append(
                {
                    "type": "Progressing",
                    "status": "False",
                    "reason": "ProgressDeadlineExceeded",
                    "message": "stuck",
                }
            )
        obj["status"] = {
            "observedGeneration": generation,
            "replicas": replicas,
            "readyReplicas": replicas if ready else 0,
            "updatedReplicas": replicas,
            "availableReplicas": replicas if ready else 0,
            "conditions": conditions,
        }
    return obj


def service_children(name: str, **options: Any) -> Children:
    """Every desired child of one service, in the cluster."""
    return lambda desired: [in_cluster(c, **options) for c in desired.children[name]]


def all_of(*parts: Children) -> Children:
    return lambda desired: [child for part in parts for child in part(desired)]


def edited(kind: str, name: str, change: Callable[[dict[str, Any]], None], **options: Any) -> Children:
    """That child in the cluster, then edited by hand."""

    def children(desired: plan.Desired) -> list[dict[str, Any]]:
        obj = in_cluster(rendered(desired, kind, name), **options)
        change(obj)
        return [obj]

    return children


def foreign_service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "prod", "uid": "f"},
    }


CHAIN = make_app(svc("web", dependsOn=["api"]), svc("api", dependsOn=["db"]), svc("db"))
WITH_CONFIG = make_app(svc("web", dependsOn=["db"]), svc("db", configFrom=[{"configMap": "db-config"}]))
OLD_DB_CONFIG = {"db": "hash-before"}


@dataclass(frozen=True)
class Case:
    name: str
    app: dict[str, Any]
    # what the pass observed
    children: Children = lambda desired: []
    foreign: list[dict[str, Any]] = field(default_factory=list)
    refusal: plan.FieldError | None = None
    config: Mapping[str, str] = field(default_factory=dict)  # config hashes now
    config_before: Mapping[str, str] | None = None  # those the observed children were rendered with
    # what the plan must say
    writes: list[tuple[str, str]] = field(default_factory=list)  # (change, Kind/name) in order
    prunes: list[tuple[str, str | None]] = field(default_factory=list)  # (Kind/name, uid)
    waiting: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    phase: str = "Progressing"
    reason: str | None = None  # the Invalid's
    fields: list[str] = field(default_factory=list)  # the Invalid's fields at fault
    events: list[str] = field(default_factory=list)  # reasons, the ones told only when written last
    no_replicas: bool = False  # the Deployment leaves spec.replicas to the HPA
    rollout_pods: Mapping[str, list[dict[str, Any]]] = field(
        default_factory=dict
    )  # the new ReplicaSets' pods


def crashing_pod(restarts: int = 3) -> dict[str, Any]:
    """A pod of a new ReplicaSet, 40 s old, whose container has crashed `restarts` times."""
    return {
        "metadata": {"name": "shop-db-new-1", "creationTimestamp": "2025-12-31T23:59:20Z"},
        "status": {
            "phase": "Running",
            "containerStatuses": [
                {
                    "name": "db",
                    "restartCount": restarts,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}},
                }
            ],
        },
    }


CASES = [
    Case(
        "a new app: the service without dependencies is created, its dependents wait",
        CHAIN,
        writes=[
            ("create", "Deployment/shop-db"),
            ("create", "Service/shop-db"),
            ("create", "NetworkPolicy/shop-db"),
        ],
        waiting={"api": ("db",), "web": ("api",)},
        events=["Created", "WaitingForDependency", "WaitingForDependency"],
    ),
    Case(
        "a dependency Available at its current generation lets its dependent roll out",
        CHAIN,
        children=service_children("db"),
        writes=[
            ("create", "Deployment/shop-api"),
            ("create", "Service/shop-api"),
            ("create", "NetworkPolicy/shop-api"),
        ],
        waiting={"web": ("api",)},
        events=["Created", "WaitingForDependency"],
    ),
    Case(
        "a dependency not Available yet holds its dependent",
        CHAIN,
        children=service_children("db", ready=False),
        waiting={"api": ("db",), "web": ("api",)},
        events=["WaitingForDependency", "WaitingForDependency"],
    ),
    Case(
        "a failed dependency: Degraded, holding its dependent, told once written",
        CHAIN,
        children=service_children("db", ready=False, failed=True),
        waiting={"api": ("db",), "web": ("api",)},
        phase="Degraded",
        events=["WaitingForDependency", "WaitingForDependency", "RolloutFailed"],
    ),
    Case(
        "a dependency whose new pods crash-loop: Degraded before its deadline, holding its dependent",
        CHAIN,
        children=service_children("db", ready=False),
        rollout_pods={"db": [crashing_pod()]},
        waiting={"api": ("db",), "web": ("api",)},
        phase="Degraded",
        events=["WaitingForDependency", "WaitingForDependency", "RolloutFailed"],
    ),
    Case(
        "a dependency whose new pods crashed less than the threshold: still rolling out",
        CHAIN,
        children=service_children("db", ready=False),
        rollout_pods={"db": [crashing_pod(restarts=2)]},
        waiting={"api": ("db",), "web": ("api",)},
        events=["WaitingForDependency", "WaitingForDependency"],
    ),
    Case(
        "every service Available: nothing to write, Ready told once written",
        CHAIN,
        children=all_of(service_children("db"), service_children("api"), service_children("web")),
        phase="Ready",
        events=["Ready"],
    ),
    Case(
        "a new config hash: the Deployment is updated, and is no dependency Available in this pass",
        WITH_CONFIG,
        children=all_of(service_children("db"), service_children("web")),
        config={"db": "hash-after"},
        config_before=OLD_DB_CONFIG,
        writes=[("update", "Deployment/shop-db")],
        waiting={},
        events=["Updated"],
    ),
    Case(
        "an edit by hand of a dependency's spec is undone, and holds a dependent's rollout",
        make_app(svc("web", image="registry.example.com/web:2", dependsOn=["db"]), svc("db")),
        children=all_of(
            edited(
                "Deployment",
                "shop-db",
                lambda d: d["spec"]["template"]["spec"]["containers"][0].update(image="x"),
            ),
            lambda desired: [in_cluster(rendered(desired, "Service", "shop-db"))],
            lambda desired: [in_cluster(rendered(desired, "NetworkPolicy", "shop-db"))],
            lambda desired: [
                in_cluster(
                    {
                        **c,
                        "metadata": {**c["metadata"], "annotations": {compare.APPLIED_HASH_ANNOTATION: "x"}},
                    }
                )
                for c in desired.children["web"]
            ],
        ),
        writes=[("repair", "Deployment/shop-db")],
        waiting={"web": ("db",)},
        events=["Updated", "WaitingForDependency"],
    ),
    Case(
        "an edit by hand is undone even while a dependency is not Available: no rollout, not gated",
        make_app(svc("web", dependsOn=["db"]), svc("db")),
        children=all_of(
            service_children("db", ready=False),
            edited(
                "Deployment",
                "shop-web",
                lambda d: d["spec"]["template"]["spec"]["containers"][0].update(image="x"),
            ),
            lambda desired: [in_cluster(rendered(desired, "Service", "shop-web"))],
            lambda desired: [in_cluster(rendered(desired, "NetworkPolicy", "shop-web"))],
        ),
        writes=[("repair", "Deployment/shop-web")],
        events=["Updated"],
    ),
    Case(
        "a desired name held by an object the app does not own: NameConflict, nothing written or pruned",
        make_app(svc("web"), svc("old-api")),
        children=lambda desired: [in_cluster(rendered(desired, "Deployment", "shop-web"))],
        foreign=[foreign_service("shop-old-api")],
        phase="Invalid",
        reason="NameConflict",
        fields=["spec.services[1].name"],
        events=["NameConflict"],
    ),
    Case(
        "a removed service's children are pruned by uid",
        make_app(svc("web")),
        children=all_of(
            service_children("web"),
            lambda desired: [
                in_cluster(c) for c in desired_of(make_app(svc("web"), svc("gone"))).children["gone"]
            ],
        ),
        prunes=[
            ("Deployment/shop-gone", "uid-Deployment-shop-gone"),
            ("Service/shop-gone", "uid-Service-shop-gone"),
            ("NetworkPolicy/shop-gone", "uid-NetworkPolicy-shop-gone"),
        ],
        phase="Ready",
        events=["Pruned", "Ready"],
    ),
    Case(
        "a spec Maestro cannot carry out: InvalidSpec naming the field, nothing written",
        make_app(svc("a", dependsOn=["b"]), svc("b", dependsOn=["a"])),
        phase="Invalid",
        reason="InvalidSpec",
        fields=["spec.services[0].dependsOn"],
        events=["InvalidSpec"],
    ),
    Case(
        "a child the API server refused in a dry run: ChildRejected, nothing written",
        make_app(svc("web", readinessProbe={"tcpSocket": True})),
        refusal=("spec.services[0]", "the API server rejected Deployment/shop-web: bad probe"),
        phase="Invalid",
        reason="ChildRejected",
        fields=["spec.services[0]"],
        events=["ChildRejected"],
    ),
    Case(
        "autoscaling on: the HPA owns the replicas, the Deployment does not set them",
        make_app(svc("web", autoscaling={"minReplicas": 2, "maxReplicas": 5})),
        writes=[
            ("create", "Deployment/shop-web"),
            ("create", "Service/shop-web"),
            ("create", "HorizontalPodAutoscaler/shop-web"),
            ("create", "PodDisruptionBudget/shop-web"),
            ("create", "NetworkPolicy/shop-web"),
        ],
        events=["Created"],
        no_replicas=True,
    ),
]


def run(case: Case, previous: Mapping[str, Any] | None = None) -> plan.Plan | plan.Invalid:
    desired = desired_of(case.app, case.config)
    before = desired if case.config_before is None else desired_of(case.app, case.config_before)
    observed = plan.Observed(
        NOW,
        previous=previous or {},
        children={compare.key_of(c): c for c in case.children(before)},
        foreign={compare.key_of(c): c for c in case.foreign},
        refusal=case.refusal,
        rollout_pods=case.rollout_pods,
    )
    return plan.plan(desired, observed)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_pass(case: Case) -> None:
    decided = run(case)
    if isinstance(decided, plan.Invalid):
        report = decided.report
        assert (decided.reason, [path for path, _ in decided.errors]) == (case.reason, case.fields)
        assert case.writes == [] and case.prunes == []
    else:
        assert case.reason is None, f"expected Invalid ({case.reason}), got a plan"
        report = decided.report()
        assert [(w.change, compare.label(w.child)) for w in decided.writes] == case.writes
        assert [(compare.label(p.child), p.uid) for p in decided.prunes] == case.prunes
        assert dict(decided.waiting) == dict(case.waiting)
        assert set(decided.applied) == set(decided.desired.order) - set(case.waiting)
    assert report.status.phase == case.phase
    assert [e.reason for e in report.events + report.if_written] == case.events
    if case.no_replicas:
        deployment = next(w.child for w in decided.writes if w.child["kind"] == "Deployment")  # type: ignore[union-attr]
        assert "replicas" not in deployment["spec"]


def test_the_same_observed_state_twice_tells_nothing_the_second_time() -> None:
    for case in CASES:
        first = run(case)
        report = first.report if isinstance(first, plan.Invalid) else first.report()
        previous = status.to_dict(report.status)
        again = run(case, previous=previous)
        second = again.report if isinstance(again, plan.Invalid) else again.report()
        assert not status.changed(previous, status.to_dict(second.status)), case.name
        told = [e.reason for e in second.events + second.if_written]
        # only what the second pass does again is told again: its writes and prunes (the cluster is as observed)
        assert set(told) <= {"Created", "Updated", "Pruned"}, (case.name, told)


def test_a_repair_is_an_update_only_when_the_write_gives_the_child_a_new_generation() -> None:
    app = make_app(svc("web"))
    desired = desired_of(app)
    deployment = in_cluster(rendered(desired, "Deployment", "shop-web"))
    deployment["metadata"]["labels"] = {}  # a label removed by hand: metadata only
    observed = plan.Observed(NOW, children={compare.key_of(deployment): deployment})
    decided = plan.plan(desired, observed)
    assert isinstance(decided, plan.Plan)
    assert [(w.change, w.key) for w in decided.writes] == [
        ("repair", ("Deployment", "shop-web")),
        ("create", ("Service", "shop-web")),
        ("create", ("NetworkPolicy", "shop-web")),
    ]
    same_generation = {
        w.key: {**w.child, "metadata": {**w.child["metadata"], "generation": 1}} for w in decided.writes
    }
    assert "Updated" not in [e.reason for e in decided.report(same_generation).events]
    new_generation = {
        w.key: {**w.child, "metadata": {**w.child["metadata"], "generation": 2}} for w in decided.writes
    }
    assert "Updated" in [e.reason for e in decided.report(new_generation).events]


def test_a_dependency_whose_labels_are_put_back_stays_available() -> None:
    app = make_app(svc("web", dependsOn=["db"]), svc("db"))
    desired = desired_of(app)
    children = [in_cluster(c) for c in desired.children["db"]]
    children[0]["metadata"]["labels"] = {}  # metadata only: the write keeps the Deployment's generation
    decided = plan.plan(desired, plan.Observed(NOW, children={compare.key_of(c): c for c in children}))
    assert isinstance(decided, plan.Plan)
    assert [compare.label(w.child) for w in decided.writes] == [
        "Deployment/shop-db",
        "Deployment/shop-web",
        "Service/shop-web",
        "NetworkPolicy/shop-web",
    ]
    assert not decided.waiting


def test_dry_runs_cover_new_renderings_of_services_the_models_cannot_judge() -> None:
    app = make_app(svc("web", readinessProbe={"httpGet": {"path": "/", "port": 80}}), svc("db"))
    desired = desired_of(app)
    assert [(path, compare.label(c)) for path, c in plan.dry_runs(desired, {})] == [
        ("spec.services[0]", "Deployment/shop-web"),
        ("spec.services[0]", "Service/shop-web"),
        ("spec.services[0]", "NetworkPolicy/shop-web"),
    ]
    applied = {compare.key_of(c): in_cluster(c) for c in desired.children["web"]}
    assert plan.dry_runs(desired, applied) == []  # applied before: the API server accepted it


def test_the_status_of_a_written_deployment_is_the_one_its_write_returned() -> None:
    app = make_app(svc("web", image="registry.example.com/web:2"))
    desired = desired_of(app)
    before = in_cluster(rendered(desired_of(make_app(svc("web"))), "Deployment", "shop-web"))
    decided = plan.plan(desired, plan.Observed(NOW, children={compare.key_of(before): before}))
    assert isinstance(decided, plan.Plan)
    # as predicted: the old status at a new generation, not observed yet
    service = decided.report().status.services[0]  # type: ignore[index]
    assert (service.phase, service.image) == ("Progressing", "registry.example.com/web:2")
    assert decided.report().status.phase == "Progressing"


def test_a_crash_looping_rollout_says_why_and_holds_its_dependents() -> None:
    case = next(c for c in CASES if c.name.startswith("a dependency whose new pods crash-loop"))
    decided = run(case)
    assert isinstance(decided, plan.Plan)
    assert decided.failures == {"db": "3 restarts in 40 s, CrashLoopBackOff (exit code 1)"}
    assert decided.watching == ()  # decided: no need to look again
    assert decided.held_by_failures() == {"api": ("db",)}  # what a rollback must leave alone
    report = decided.report()
    degraded = next(c for c in report.status.conditions or [] if c.type == status.DEGRADED)
    assert (degraded.status, degraded.reason) == ("True", "RolloutFailed")
    assert degraded.message == "db: 3 restarts in 40 s, CrashLoopBackOff (exit code 1); holding api"
    assert [(e.type, e.message) for e in report.if_written if e.reason == "RolloutFailed"] == [
        ("Warning", degraded.message)
    ]
    db = next(s for s in report.status.services or [] if s.name == "db")
    assert (db.phase, db.message) == ("Degraded", "3 restarts in 40 s, CrashLoopBackOff (exit code 1)")


def test_an_undecided_rollout_is_watched_and_a_rewritten_one_is_not_judged_by_its_old_pods() -> None:
    undecided = next(c for c in CASES if c.name.startswith("a dependency whose new pods crashed less"))
    decided = run(undecided)
    assert isinstance(decided, plan.Plan) and decided.watching == ("db",) and not decided.failures
    # A new rendering of db (a fix): the pods read are the failed rollout's, which is being replaced.
    fixed = make_app(svc("web", dependsOn=["api"]), svc("api", dependsOn=["db"]), svc("db", image="db:2"))
    old = {compare.key_of(c): c for c in service_children("db", ready=False)(desired_of(CHAIN))}
    decided = plan.plan(
        desired_of(fixed), plan.Observed(NOW, children=old, rollout_pods={"db": [crashing_pod()]})
    )
    assert isinstance(decided, plan.Plan)
    assert "Deployment/shop-db" in [compare.label(w.child) for w in decided.writes]
    assert (decided.failures, decided.watching) == ({}, ())
    assert decided.report().status.phase == "Progressing"


def test_a_rollout_whose_pods_are_not_read_yet_is_watched_not_judged() -> None:
    old = {compare.key_of(c): c for c in service_children("db", ready=False)(desired_of(CHAIN))}
    decided = plan.plan(desired_of(CHAIN), plan.Observed(NOW, children=old, rollout_pods={"db": None}))
    assert isinstance(decided, plan.Plan)
    assert (decided.failures, decided.watching) == ({}, ("db",))


def test_only_deployments_in_the_middle_of_a_rollout_are_inspected() -> None:
    desired = desired_of(CHAIN)
    children = all_of(
        service_children("db"), service_children("api", ready=False), service_children("web", failed=True)
    )(desired)
    # web past its deadline says why itself; db is steady; api's pods are read.
    assert plan.inspected(desired, {compare.key_of(c): c for c in children}, {}) == ["api"]
    steady = all_of(*(service_children(n) for n in ("db", "api", "web")))(desired)
    assert plan.inspected(desired, {compare.key_of(c): c for c in steady}, {}) == []
