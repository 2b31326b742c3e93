"""graph.py: unknown names, cycles, order and rollout gating."""

from __future__ import annotations

import pytest

from maestro.api import graph


def test_unknown_dependencies_in_declaration_order() -> None:
    assert graph.unknown_dependencies({"web": ["api", "cache"], "api": ["db"]}) == [
        ("web", "cache"),
        ("api", "db"),
    ]


def test_no_cycle() -> None:
    assert graph.find_cycle({"web": ["api"], "api": ["db"], "db": []}) is None


@pytest.mark.parametrize(
    ("deps", "cycle"),
    [
        ({"a": ["b"], "b": ["a"]}, ["a", "b", "a"]),
        ({"a": ["b"], "b": ["c"], "c": ["a"]}, ["a", "b", "c", "a"]),
        ({"x": [], "a": ["x", "b"], "b": ["c"], "c": ["b"]}, ["b", "c", "b"]),
        ({"a": ["a"]}, ["a", "a"]),
    ],
)
def test_cycle_path(deps: dict[str, list[str]], cycle: list[str]) -> None:
    assert graph.find_cycle(deps) == cycle


def test_cycle_ignores_unknown_names() -> None:
    assert graph.find_cycle({"a": ["ghost"]}) is None


def test_topological_order_puts_dependencies_first_and_keeps_declaration_order() -> None:
    deps = {"web": ["catalog", "cart"], "catalog": ["db"], "cart": ["db"], "db": [], "batch": []}
    assert graph.topological_order(deps) == ["db", "catalog", "cart", "web", "batch"]


def test_topological_order_raises_on_cycle() -> None:
    with pytest.raises(graph.CycleError, match="a -> b -> a"):
        graph.topological_order({"a": ["b"], "b": ["a"]})


def test_rollout_allowed_lists_what_a_service_waits_for() -> None:
    deps = {"web": ["catalog", "cart"], "catalog": [], "cart": []}
    assert graph.rollout_allowed(deps, "web", set()) == ["catalog", "cart"]
    assert graph.rollout_allowed(deps, "web", {"cart"}) == ["catalog"]
    assert graph.rollout_allowed(deps, "web", {"cart", "catalog"}) == []
    assert graph.rollout_allowed(deps, "catalog", set()) == []
