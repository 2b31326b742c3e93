"""Generated MicroserviceApps for the fuzz case: valid ones (tests/unit/test_properties.py's strategy) and
invalid ones beyond the models: junk at any path, keys removed or added, semantic breaks (cycles, unknown or
self dependencies, duplicate names, names too long), and the hand-written invalid manifests."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from tests.e2e.invalid_apps import INVALID_APPS
from tests.unit.test_properties import QUANTITIES
from tests.unit.test_properties import apps as valid_apps

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=12),
    st.lists(st.integers(-5, 70000), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path (dict keys and list indices) under value."""
    found = []
    if isinstance(value, dict):
        items: list[tuple[Any, Any]] = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        return []
    for key, child in items:
        found.append((*prefix, key))
        found += _paths(child, (*prefix, key))
    return found


def _parent(spec: Any, path: tuple[Any, ...]) -> Any:
    for key in path[:-1]:
        spec = spec[key]
    return spec


def _slow_rollouts(spec: dict[str, Any]) -> None:
    """A rollout deadline of seconds would fail on this slow machine (Degraded, not Ready): keep it long. A job's
    run deadline too."""
    for item in [spec.get("defaults") or {}, *spec.get("services", [])]:
        rollout = item.get("rollout")
        if isinstance(rollout, dict) and isinstance(rollout.get("progressDeadlineSeconds"), int):
            rollout["progressDeadlineSeconds"] = max(rollout["progressDeadlineSeconds"], 600)
    for job in spec.get("jobs") or []:
        if isinstance(job.get("activeDeadlineSeconds"), int):
            job["activeDeadlineSeconds"] = max(job["activeDeadlineSeconds"], 600)


def _schedulable(spec: dict[str, Any]) -> None:
    """Requests the 3 simulated nodes can hold for a batch of apps: valid specs asking for 1Gi CPUs stay
    Pending (not Ready) for want of a node, which says nothing about the operator."""
    for item in [spec.get("defaults") or {}, *spec.get("services", []), *(spec.get("jobs") or [])]:
        requests = (item.get("resources") or {}).get("requests") or {}
        if QUANTITIES.get(requests.get("cpu"), 0) > 0.1:
            requests["cpu"] = "100m"
        if QUANTITIES.get(requests.get("memory"), 0) > 2**27:
            requests["memory"] = "128Mi"


@st.composite
def mutated(draw: st.DrawFn, app: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(what was done, the app) after one break."""
    spec = app["spec"]
    services = spec["services"]
    kind = draw(
        st.sampled_from(
            ["junk", "remove", "unknown-key", "cycle", "unknown-dep", "self-dep", "duplicate", "long-name"]
        )
    )
    if kind in ("junk", "remove"):
        path = draw(st.sampled_from(_paths(spec)))
        parent = _parent(spec, path)
        if kind == "junk":
            parent[path[-1]] = draw(junk)
        else:
            del parent[path[-1]]
    elif kind == "unknown-key":
        path = draw(
            st.sampled_from([p for p in _paths(spec) if isinstance(_parent(spec, (*p, 0)), dict)] or [()])
        )
        target = _parent(spec, (*path, 0)) if path else spec
        target[draw(st.sampled_from(["replica", "imagePullSecret", "x", "Ports"]))] = draw(junk)
    elif kind == "cycle" and len(services) >= 2:
        services[0]["dependsOn"] = [services[-1]["name"]]
        services[-1]["dependsOn"] = [services[0]["name"]]
    elif kind == "unknown-dep":
        services[-1]["dependsOn"] = ["ghost"]
    elif kind == "self-dep":
        services[0]["dependsOn"] = [services[0]["name"]]
    elif kind == "duplicate":
        services.append(copy.deepcopy(services[0]))
    elif kind == "long-name":  # a valid app name whose children's names exceed 63 characters
        longest = max(len(s["name"]) for s in services)
        app["metadata"]["name"] += "x" * (63 - longest)
    return kind, app


@st.composite
def fuzzed_app(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """(label, manifest without namespace): about half valid, half broken in some way."""
    choice = draw(st.sampled_from(["valid", "valid", "mutated", "mutated", "handwritten"]))
    if choice == "handwritten":
        label, manifest, _ = draw(st.sampled_from(INVALID_APPS))
        return f"handwritten:{label}", copy.deepcopy(manifest)
    app = draw(valid_apps())
    app["metadata"] = {"name": "fz"}  # the case numbers it; no namespace or uid from the strategy
    _slow_rollouts(app["spec"])
    _schedulable(app["spec"])
    if choice == "valid":
        return "valid", app
    kind, app = draw(mutated(app))
    return f"mutated:{kind}", app


def draw_apps(count: int, random_seed: int) -> list[tuple[str, dict[str, Any]]]:
    """`count` generated apps, reproducibly from the seed."""
    drawn: list[tuple[str, dict[str, Any]]] = []

    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @seed(random_seed)
    @given(fuzzed_app())
    def collect(item: tuple[str, dict[str, Any]]) -> None:
        drawn.append(item)

    collect()
    return drawn[:count]
