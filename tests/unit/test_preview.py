"""preview.py: what `maestro diff` shows, as pure decisions. Each case is an app, the children live in the cluster
(rendered from an older spec or config), and what the preview must say: each child's action, the services that
change with their reasons and waves, who waits for whom, the prunes."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from maestro.controller import compare, plan, preview
from tests.unit.helpers import app as make_app
from tests.unit.helpers import svc
from tests.unit.test_plan import NOW, Children, all_of, desired_of, edited, in_cluster, rendered


def image(name: str, tag: str) -> str:
    return f"registry.example.com/{name}:{tag}"


CHAIN = make_app(svc("web", dependsOn=["api"]), svc("api", dependsOn=["db"]), svc("db"))
WITH_CONFIG = make_app(svc("web", dependsOn=["db"]), svc("db", configFrom=[{"configMap": "db-config"}]))


def live(app: dict[str, Any], *, ready: bool = True, config: Mapping[str, str] | None = None) -> Children:
    """Every child of `app` (an older spec) in the cluster, Available unless not `ready`."""
    before = desired_of(app, config)
    return lambda _desired: [in_cluster(c, ready=ready) for s in before.order for c in before.children[s]]


@dataclass(frozen=True)
class Case:
    name: str
    app: dict[str, Any]
    children: Children = lambda desired: []
    config: Mapping[str, str] = field(default_factory=dict)  # config hashes now
    # what the preview must say
    actions: Mapping[str, str] = field(default_factory=dict)  # Kind/name -> action (the rest: unchanged)
    rollouts: list[tuple[str, tuple[str, ...], int]] = field(default_factory=list)  # in wave order
    waits: list[tuple[str, str, str]] = field(default_factory=list)
    prunes: list[str] = field(default_factory=list)
    config_named: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


CASES = [
    Case(
        "a new app: every child created, every service new, in waves of its dependency chain",
        CHAIN,
        actions={
            f"{kind}/shop-{service}": "create"
            for service in ("web", "api", "db")
            for kind in ("Deployment", "Service", "NetworkPolicy")
        },
        rollouts=[("db", ("new",), 1), ("api", ("new",), 2), ("web", ("new",), 3)],
        waits=[("api", "db", "rolls in wave 1"), ("web", "api", "rolls in wave 2")],
    ),
    Case(
        "an image change: the changed services roll in dependency order, unchanged ones hold nothing",
        make_app(
            svc("web", image=image("web", "2.0.0"), dependsOn=["api"]),
            svc("api", image=image("api", "2.0.0"), dependsOn=["db"]),
            svc("db"),
        ),
        children=live(CHAIN),
        actions={  # the Services too: the version label follows the image (a policy has none)
            f"{kind}/shop-{service}": "update"
            for service in ("web", "api")
            for kind in ("Deployment", "Service")
        },
        rollouts=[("api", ("image",), 1), ("web", ("image",), 2)],
        waits=[("web", "api", "rolls in wave 1")],
    ),
    Case(
        "a config change: the service reading the config rolls, naming its ConfigMap",
        WITH_CONFIG,
        children=live(WITH_CONFIG, config={"db": "hash-before"}),
        config={"db": "hash-after"},
        actions={"Deployment/shop-db": "update"},
        rollouts=[("db", ("config",), 1)],
        config_named={"db": ("ConfigMap db-config",)},
    ),
    Case(
        "more replicas: scaling only, no new pods",
        make_app(svc("web", replicas=3)),
        children=live(make_app(svc("web"))),
        actions={"Deployment/shop-web": "update", "PodDisruptionBudget/shop-web": "create"},
        rollouts=[("web", ("scaling only",), 1)],
    ),
    Case(
        "autoscaling on: the HPA created and the replicas left to it: scaling only",
        make_app(svc("web", autoscaling={"minReplicas": 2, "maxReplicas": 5})),
        children=live(make_app(svc("web", replicas=2))),
        actions={"Deployment/shop-web": "update", "HorizontalPodAutoscaler/shop-web": "create"},
        rollouts=[("web", ("scaling only",), 1)],
    ),
    Case(
        "a new environment variable: a pod spec change",
        make_app(svc("web", env=[{"name": "MODE", "value": "fast"}])),
        children=live(make_app(svc("web"))),
        actions={"Deployment/shop-web": "update"},
        rollouts=[("web", ("pod spec",), 1)],
    ),
    Case(
        "a Service change only: other, no new pods",
        make_app(svc("web", expose={"type": "NodePort"})),
        children=live(make_app(svc("web"))),
        actions={"Service/shop-web": "update", "NetworkPolicy/shop-web": "update"},  # open to the outside
        rollouts=[("web", ("other",), 1)],
    ),
    Case(
        "a removed service: its children are pruned, the rest is unchanged",
        make_app(svc("web")),
        children=live(make_app(svc("web"), svc("search"))),
        actions={
            "Deployment/shop-search": "prune",
            "Service/shop-search": "prune",
            "NetworkPolicy/shop-search": "prune",
        },
        prunes=["Deployment/shop-search", "Service/shop-search", "NetworkPolicy/shop-search"],
    ),
    Case(
        "a dependency not Available now holds a changed service, which is still in the first wave",
        make_app(svc("web", image=image("web", "2.0.0"), dependsOn=["db"]), svc("db")),
        children=all_of(
            live(make_app(svc("db")), ready=False),
            lambda desired: [
                in_cluster(c)
                for c in desired_of(make_app(svc("web", dependsOn=["db"]), svc("db"))).children["web"]
            ],
        ),
        actions={
            "Deployment/shop-web": "update",
            "Service/shop-web": "update",
            "NetworkPolicy/shop-db": "update",  # web is a new dependent: let in
        },
        rollouts=[("db", ("other",), 1), ("web", ("image",), 2)],
        waits=[("web", "db", "rolls in wave 1")],
    ),
    Case(
        "a new image and a new config: both reasons, the config named",
        make_app(
            svc("web", dependsOn=["db"]),
            svc("db", image=image("db", "2"), configFrom=[{"configMap": "db-config"}]),
        ),
        children=live(WITH_CONFIG, config={"db": "hash-before"}),
        config={"db": "hash-after"},
        actions={"Deployment/shop-db": "update", "Service/shop-db": "update"},
        rollouts=[("db", ("image", "config"), 1)],
        config_named={"db": ("ConfigMap db-config",)},
    ),
    Case(
        "an edit by hand is undone at once: the first wave, waiting for nobody",
        make_app(svc("web", dependsOn=["db"]), svc("db")),
        children=all_of(
            live(make_app(svc("db")), ready=False),
            edited("Deployment", "shop-web", lambda deployment: deployment["spec"].update(replicas=5)),
            lambda desired: [in_cluster(c) for c in desired.children["web"][1:]],
        ),
        actions={"Deployment/shop-web": "update", "NetworkPolicy/shop-db": "update"},  # web is let in
        rollouts=[("db", ("other",), 1), ("web", ("scaling only",), 1)],
    ),
    Case(
        "no change: every child in place",
        CHAIN,
        children=live(CHAIN),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_preview(case: Case) -> None:
    desired = desired_of(case.app, case.config)
    children = {compare.key_of(c): c for c in case.children(desired)}
    shown = preview.preview(desired, plan.Observed(NOW, children=children))
    assert isinstance(shown, preview.Preview)
    actions = {f"{c.kind}/{c.name}": c.action for c in shown.children if c.action != "unchanged"}
    assert actions == dict(case.actions)
    assert [(r.service, r.reasons, r.wave) for r in shown.rollouts] == case.rollouts
    assert [(w.service, w.dependency, w.why) for w in shown.waits] == case.waits
    assert list(shown.prunes) == case.prunes
    assert shown.changed == bool(case.actions)
    assert {r.service: r.config for r in shown.rollouts if r.config} == dict(case.config_named)
    assert all(r.rolls_pods == (r.reasons[0] not in ("scaling only", "other")) for r in shown.rollouts)
    for child in shown.children:  # a diff for each change, none for the rest
        assert bool(child.diff) == (child.action != "unchanged"), child


def test_a_new_child_is_a_diff_from_nothing_and_a_pruned_one_a_diff_to_nothing() -> None:
    desired = desired_of(make_app(svc("web")))
    gone = in_cluster(rendered(desired_of(make_app(svc("web"), svc("old"))), "Service", "shop-old"))
    shown = preview.preview(desired, plan.Observed(NOW, children={compare.key_of(gone): gone}))
    assert isinstance(shown, preview.Preview)
    created = next(c for c in shown.children if (c.kind, c.name) == ("Deployment", "shop-web"))
    assert created.diff.startswith("--- live Deployment/shop-web\n+++ desired Deployment/shop-web\n")
    assert "+  replicas: 1" in created.diff.splitlines()
    assert not [line for line in created.diff.splitlines()[2:] if line.startswith("-")]
    pruned = next(c for c in shown.children if c.action == "prune")
    assert (pruned.kind, pruned.name, pruned.service) == ("Service", "shop-old", "old")
    assert not [line for line in pruned.diff.splitlines()[2:] if line.startswith("+")]


def test_the_api_servers_answer_is_diffed_without_the_fields_it_sets_on_every_write() -> None:
    old = desired_of(make_app(svc("web")))
    new = desired_of(make_app(svc("web", image=image("web", "2.0.0"))))
    before = in_cluster(rendered(old, "Deployment", "shop-web"))
    before["metadata"] |= {"resourceVersion": "41", "managedFields": [{"manager": "maestro"}]}
    before["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    answer = copy.deepcopy(rendered(new, "Deployment", "shop-web"))  # the dry run's: a new version, a default
    answer["metadata"] |= {"resourceVersion": "42", "generation": 2, "uid": "uid-Deployment-shop-web"}
    answer["metadata"]["managedFields"] = [{"manager": "maestro", "time": "now"}]
    answer["status"] = {"observedGeneration": 1}
    for obj in (before, answer):
        obj["spec"]["revisionHistoryLimit"] = 10
    service = in_cluster(rendered(old, "Service", "shop-web"))
    service["spec"] |= {"clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1"]}
    policy = in_cluster(rendered(new, "NetworkPolicy", "shop-web"))
    shown = preview.preview(
        new,
        plan.Observed(NOW, children={compare.key_of(c): c for c in (before, service, policy)}),
        {compare.key_of(answer): answer},
    )
    assert isinstance(shown, preview.Preview)
    deployment = next(c for c in shown.children if c.kind == "Deployment")
    changed = [line for line in deployment.diff.splitlines()[2:] if line[:1] in "+-" and line[:2] != "@@"]
    # the image, its version label (metadata and pod template), the applied-hash: nothing the server set
    assert sorted(line[0] for line in changed) == ["+"] * 4 + ["-"] * 4, deployment.diff
    assert all(
        word not in deployment.diff for word in ("resourceVersion", "managedFields", "status", "creationTime")
    )
    # the Service: only its version label changes, not its allocated cluster IP
    assert [(c.kind, c.action) for c in shown.children] == [
        ("Deployment", "update"),
        ("Service", "update"),
        ("NetworkPolicy", "unchanged"),
    ]
    assert "clusterIP" not in shown.children[1].diff
    assert "app.kubernetes.io/version: 2.0.0" in shown.children[1].diff


def test_an_app_the_operator_would_refuse_gives_its_errors() -> None:
    desired = desired_of(make_app(svc("web")))
    taken = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "shop-web", "uid": "f"}}
    shown = preview.preview(desired, plan.Observed(NOW, foreign={compare.key_of(taken): taken}))
    assert isinstance(shown, plan.Invalid)
    assert shown.reason == "NameConflict"
    assert [path for path, _ in shown.errors] == ["spec.services[0].name"]


def test_the_next_pass_is_the_operators_plan() -> None:
    shown = preview.preview(desired_of(CHAIN), plan.Observed(NOW))
    assert isinstance(shown, preview.Preview)
    assert [compare.label(w.child) for w in shown.next_pass.writes] == [
        "Deployment/shop-db",
        "Service/shop-db",
        "NetworkPolicy/shop-db",
    ]
    assert dict(shown.next_pass.waiting) == {"api": ("db",), "web": ("api",)}
