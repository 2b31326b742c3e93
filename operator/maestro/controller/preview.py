"""What applying an app would do, before it is applied (`maestro diff`): each child's change as a unified diff, and
the rollout the operator would carry out: the services that change and why, the waves they roll in (dependencies
first), who waits for whom, the children pruned. Pure: the CLI (cli/diff.py) observes the cluster and hands in
what it saw, and the children as the API server would store them (dry runs).

The operator's own decisions come from plan.py (`plan.plan`: the next pass's writes, prunes and waits) and
compare.py (what is up to date); this module only looks further ahead, to the end of the rollout.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from maestro import render
from maestro.controller import plan, status
from maestro.controller.compare import (
    APPLIED_HASH_ANNOTATION,
    ChildKey,
    in_place,
    keeps_generation,
    key_of,
    label,
    up_to_date,
)
from maestro.render import confighash
from maestro.render.names import LABEL_VERSION

Action = Literal["create", "update", "prune", "unchanged"]
# Why a service changes: the first four roll out new pods (a new Deployment or pod template), the last two do not.
# A job changes by a new run (its new rendering is a new Job), or its CronJob is new or changes ("other").
Reason = Literal["new", "image", "config", "pod spec", "scaling only", "other", "run"]
ROLLING: frozenset[Reason] = frozenset({"new", "image", "config", "pod spec", "run"})

# Fields the API server sets or bumps on every write (or dry run): they would make every diff noisy.
_SERVER_METADATA = ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp", "selfLink")
_SERVER_SPEC = {"Service": ("clusterIP", "clusterIPs")}  # allocated at creation, never Maestro's
_SCALING_KINDS = frozenset({"HorizontalPodAutoscaler", "PodDisruptionBudget"})


@dataclass(frozen=True)
class ChildDiff:
    """One child: what applying the app does to it, as a unified diff of its YAML (empty when unchanged)."""

    kind: str
    name: str
    service: str | None  # None for an owned child without Maestro's component label
    action: Action
    diff: str


@dataclass(frozen=True)
class Rollout:
    """A service that changes: why, and in which wave (1: at once; N: after its dependencies of wave N-1)."""

    service: str
    reasons: tuple[Reason, ...]
    wave: int
    config: tuple[str, ...] = ()  # its configFrom ("ConfigMap db-config"), when the reason is config

    @property
    def rolls_pods(self) -> bool:
        return any(reason in ROLLING for reason in self.reasons)


@dataclass(frozen=True)
class Wait:
    """A service held back until one of its dependencies is Available; `why`: it rolls in an earlier wave, or it
    is not Available now."""

    service: str
    dependency: str
    why: str


@dataclass(frozen=True)
class Preview:
    """Everything `maestro diff` shows of one app: the child diffs (desired children in dependency order, then
    the pruned ones), the services that change in wave order, the waits, the prunes, and the operator's next
    pass as plan.py decides it."""

    children: tuple[ChildDiff, ...]
    rollouts: tuple[Rollout, ...]
    waits: tuple[Wait, ...]
    prunes: tuple[str, ...]
    next_pass: plan.Plan

    @property
    def changed(self) -> bool:
        return any(child.action != "unchanged" for child in self.children)


def preview(
    desired: plan.Desired,
    observed: plan.Observed,
    stored: Mapping[ChildKey, Mapping[str, Any]] | None = None,
) -> Preview | plan.Invalid:
    """What applying the app does. `observed.children` are the app's live children; `stored` the desired ones as
    the API server would store them (its dry-run answers) for those not in place; without one, a child is
    predicted as plan.as_written writes it. An app the operator would refuse gives plan.py's Invalid."""
    decided = plan.plan(desired, observed)
    if isinstance(decided, plan.Invalid):
        return decided
    live = observed.children
    stored = stored or {}
    after: dict[ChildKey, Mapping[str, Any]] = {}
    diffs: list[ChildDiff] = []
    for service in desired.order:
        for child in desired.children[service]:
            key = key_of(child)
            before = live.get(key)
            if before is not None and in_place(child, before):
                after[key] = before
                diffs.append(ChildDiff(*key, service, "unchanged", ""))
                continue
            after[key] = stored.get(key) or plan.as_written(child, before)
            text = unified_diff(label(child), before, after[key])
            action: Action = "create" if before is None else "update" if text else "unchanged"
            diffs.append(ChildDiff(*key, service, action, text))
    for prune in decided.prunes:
        diffs.append(
            ChildDiff(
                *prune.key,
                _service_of(prune.child),
                "prune",
                unified_diff(label(prune.child), prune.child, None),
            )
        )

    rollouts, waits = _rollout(desired, live, after, diffs)
    return Preview(tuple(diffs), rollouts, waits, tuple(label(p.child) for p in decided.prunes), decided)


# ------------------------------------------------------------------------------------------------ the rollout


def _rollout(
    desired: plan.Desired,
    live: Mapping[ChildKey, Mapping[str, Any]],
    after: Mapping[ChildKey, Mapping[str, Any]],
    diffs: list[ChildDiff],
) -> tuple[tuple[Rollout, ...], tuple[Wait, ...]]:
    """The changing services in waves, and the waits. A service whose children are not all up to date waits,
    as the operator holds it (plan.plan), for its dependencies that are not Available: those whose Deployment
    gets a new generation roll in an earlier wave, the others are not Available now."""
    app_name = desired.app["metadata"]["name"]
    changes: dict[str, list[ChildDiff]] = {}
    for diff in diffs:
        if diff.action != "unchanged" and diff.service is not None and diff.service in desired.children:
            changes.setdefault(diff.service, []).append(diff)

    waves: dict[str, int] = {}
    rollouts: list[Rollout] = []
    waits: list[Wait] = []
    for service in desired.order:  # dependencies first: their waves are known
        if service not in changes:
            continue
        key = ("Deployment", render.child_name(app_name, service))
        gated = not all(up_to_date(c, live.get(key_of(c))) for c in desired.children[service])
        held = [dep for dep in desired.deps.get(service, []) if gated and _holds(desired, live, dep)]
        waves[service] = 1 + max((waves.get(dep, 0) for dep in held), default=0)
        waits += [
            Wait(service, dep, f"rolls in wave {waves[dep]}" if dep in waves else "not Available now")
            for dep in held
        ]
        if service in desired.jobs:
            reasons = _job_reasons(desired, service, changes[service])
        else:
            reasons = _reasons(live.get(key), after.get(key), changes[service])
        sources = tuple(f"{kind} {name}" for kind, name in confighash.referenced(desired.component(service)))
        rollouts.append(Rollout(service, reasons, waves[service], sources if "config" in reasons else ()))
    order = {service: index for index, service in enumerate(desired.order)}
    rollouts.sort(key=lambda rollout: (rollout.wave, order[rollout.service]))
    return tuple(rollouts), tuple(waits)


def _job_reasons(desired: plan.Desired, job: str, changes: list[ChildDiff]) -> tuple[Reason, ...]:
    """Why a job changes: a new run (a Job created: its run key is new), a new CronJob, or another change."""
    if desired.run(job) is not None:
        return ("run",) if any(c.kind == "Job" and c.action == "create" for c in changes) else ("other",)
    return ("new",) if any(c.action == "create" for c in changes) else ("other",)


def _holds(desired: plan.Desired, live: Mapping[ChildKey, Mapping[str, Any]], dependency: str) -> bool:
    """Whether a dependency holds its dependents back: its Deployment is not Available now, or the apply gives it
    a new generation (its controller has to roll it out first); a job: its current run has not succeeded."""
    run = desired.run(dependency)
    if run is not None:
        return not status.job_succeeded(live.get(key_of(run)))
    key = ("Deployment", render.child_name(desired.app["metadata"]["name"], dependency))
    deployment = next(c for c in desired.children[dependency] if key_of(c) == key)
    return not status.deployment_available(live.get(key)) or not keeps_generation(deployment, live.get(key))


def _reasons(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, changes: list[ChildDiff]
) -> tuple[Reason, ...]:
    """Why a service changes, from its Deployment before and after (as stored) and its other children's changes."""
    if before is None or after is None:
        return ("new",)
    old, new = without_noise(before), without_noise(after)
    old_pod, new_pod = _template(old), _template(new)
    reasons: list[Reason] = []
    if _images(old_pod) != _images(new_pod):
        reasons.append("image")
    if _config_hash(old_pod) != _config_hash(new_pod):
        reasons.append("config")
    if _pod_spec_rest(old_pod) != _pod_spec_rest(new_pod):
        reasons.append("pod spec")
    if reasons:
        return tuple(reasons)
    others = [c for c in changes if c.kind not in _SCALING_KINDS and c.kind != "Deployment"]
    return ("other",) if others or _beyond_replicas(old) != _beyond_replicas(new) else ("scaling only",)


def _template(deployment: Mapping[str, Any]) -> dict[str, Any]:
    return dict((deployment.get("spec") or {}).get("template") or {})


def _images(template: Mapping[str, Any]) -> list[tuple[Any, Any]]:
    spec = template.get("spec") or {}
    return [
        (c.get("name"), c.get("image")) for c in spec.get("initContainers", []) + spec.get("containers", [])
    ]


def _config_hash(template: Mapping[str, Any]) -> Any:
    return ((template.get("metadata") or {}).get("annotations") or {}).get(render.CONFIG_HASH_ANNOTATION)


def _pod_spec_rest(template: Mapping[str, Any]) -> dict[str, Any]:
    """The pod template but for what the image and config reasons cover (the version label follows the image)."""
    rest = copy.deepcopy(dict(template))
    meta = rest.get("metadata") or {}
    (meta.get("annotations") or {}).pop(render.CONFIG_HASH_ANNOTATION, None)
    (meta.get("labels") or {}).pop(LABEL_VERSION, None)
    spec = rest.get("spec") or {}
    for container in spec.get("initContainers", []) + spec.get("containers", []):
        container.pop("image", None)
    return rest


def _beyond_replicas(deployment: Mapping[str, Any]) -> dict[str, Any]:
    """The Deployment but for its replicas (scaling) and the applied-hash (which any change changes)."""
    rest = copy.deepcopy(dict(deployment))
    (rest.get("spec") or {}).pop("replicas", None)
    (rest["metadata"].get("annotations") or {}).pop(APPLIED_HASH_ANNOTATION, None)
    return rest


def _service_of(child: Mapping[str, Any]) -> str | None:
    return ((child.get("metadata") or {}).get("labels") or {}).get(render.LABEL_COMPONENT)


# -------------------------------------------------------------------------------------------------- the diffs


def without_noise(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The object without what the API server sets on every write or dry run (versions, uid, managed fields,
    timestamps, status, allocated cluster IPs): what is left differs only where the apply changes it."""
    clean = copy.deepcopy(dict(obj))
    clean.pop("status", None)
    meta = clean.get("metadata")
    if isinstance(meta, dict):
        for name in _SERVER_METADATA:
            meta.pop(name, None)
    spec = clean.get("spec")
    if isinstance(spec, dict):
        for name in _SERVER_SPEC.get(str(clean.get("kind")), ()):
            spec.pop(name, None)
    return clean


def as_yaml(obj: Mapping[str, Any] | None) -> str:
    """The object as diffed: without noise, keys sorted (stable whatever order the API server answers in)."""
    if obj is None:
        return ""
    return yaml.safe_dump(without_noise(obj), sort_keys=True, default_flow_style=False, width=110)


def unified_diff(name: str, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> str:
    """A unified diff of the child's YAML, live (`before`, None: absent) to desired (`after`, None: pruned);
    empty when they are the same."""
    lines = difflib.unified_diff(
        as_yaml(before).splitlines(),
        as_yaml(after).splitlines(),
        fromfile=f"live {name}",
        tofile=f"desired {name}",
        lineterm="",
    )
    return "\n".join(lines)
