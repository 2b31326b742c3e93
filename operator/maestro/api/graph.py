"""The dependency graph of an app's services (`dependsOn`): unknown names, cycles, order and rollout gating.

Pure functions over a plain mapping `service name -> names it depends on` (see `models.dependency_graph`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set

Graph = Mapping[str, Sequence[str]]


class CycleError(ValueError):
    """The graph has a cycle; `cycle` is its path with the first name repeated at the end (a -> b -> a)."""

    def __init__(self, cycle: Sequence[str]) -> None:
        self.cycle = list(cycle)
        super().__init__("dependency cycle: " + " -> ".join(self.cycle))


def unknown_dependencies(graph: Graph) -> list[tuple[str, str]]:
    """(service, dependency) pairs whose dependency is not a service of the graph, in declaration order."""
    return [(name, dep) for name, deps in graph.items() for dep in deps if dep not in graph]


def find_cycle(graph: Graph) -> list[str] | None:
    """A cycle as a path (["a", "b", "a"]), or None. Deterministic: explores in declaration order.

    Unknown dependencies are ignored (they are reported by `unknown_dependencies`).
    """
    done: set[str] = set()
    for start in graph:
        if start in done:
            continue
        # Iterative depth-first search: specs are small, but recursion limits should not be a concern.
        path: list[str] = [start]
        stack = [iter(graph[start])]
        while stack:
            dep = next(stack[-1], None)
            if dep is None:
                stack.pop()
                done.add(path.pop())
                continue
            if dep not in graph or dep in done:
                continue
            if dep in path:
                return [*path[path.index(dep) :], dep]
            path.append(dep)
            stack.append(iter(graph[dep]))
    return None


def topological_order(graph: Graph) -> list[str]:
    """Services ordered so that every service comes after its dependencies; ties keep declaration order.

    Raises CycleError. Unknown dependencies are ignored.
    """
    cycle = find_cycle(graph)
    if cycle is not None:
        raise CycleError(cycle)
    order: list[str] = []
    placed: set[str] = set()
    while len(order) < len(graph):
        for name, deps in graph.items():
            if name not in placed and all(dep in placed or dep not in graph for dep in deps):
                order.append(name)
                placed.add(name)
                break
    return order


def rollout_allowed(graph: Graph, service: str, available: Set[str]) -> list[str]:
    """The dependencies `service` is waiting for: those not in `available` (the services whose Deployment is
    Available at its current generation). An empty list means the service may be created or updated now.

    Only direct dependencies count: a dependency is itself held until its own dependencies are available.
    """
    return [dep for dep in graph.get(service, ()) if dep not in available]
