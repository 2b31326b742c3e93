"""What a failed rollout does (issue 16), pure: roll the app back to its last Ready revision, or hold it.

A pass that sees a service's rollout of the current rendering fail (its new pods crash-loop or cannot start,
rollout.py; or its Deployment's progress deadline passed) decides, and the decision is written to the app's
status before anything else is done (`status.rolloutFailure`): a pass cut short, or an operator killed, is
followed by one that reads the decision and carries it out. The decision holds while the app's rendering (its
spec and config, `revisions.rendering`) stays the one that failed; any change of spec or config starts a
normal rollout again. Maestro never edits the spec: GitOps tools keep seeing the app in sync, and Degraded.

- RolledBack: every service the rollout had reached (`reached`, recorded with the decision) whose policy is
  Rollback and whose rendering differs from the last Ready revision gets that revision's children back
  (dependents first), and so does a service the rollout removed. Services the rollout had not reached yet stay
  as they are. Services the revision does not know (new in this rollout),
  services whose policy is Hold, and the jobs keep what they have and roll nothing further.
- Held (`rollout.onFailure: Hold` on a failed service, or no Ready revision to return to while Hold applies):
  nothing rolls back and nothing rolls further.
With no Ready revision yet and the default policy, a failed rollout is only reported (RolloutFailed), as it was
before revisions existed: nothing is known to work to return to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from maestro import render
from maestro.api import models as api
from maestro.controller import revisions, status
from maestro.controller.compare import ChildKey, key_of, up_to_date


def _condition_reason(deployment: Mapping[str, Any], kind: str) -> str | None:
    for condition in (deployment.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            return condition.get("reason")  # type: ignore[no-any-return]
    return None


def active(previous: Mapping[str, Any], fingerprint: str) -> api.RolloutFailure | None:
    """The failure the app's status records, while the app's rendering is still the one that failed."""
    recorded = previous.get("rolloutFailure")
    if not recorded or recorded.get("rendering") != fingerprint:
        return None
    return api.RolloutFailure.model_validate(recorded)


def failing(
    app_name: str,
    services: Mapping[str, Sequence[Mapping[str, Any]]],
    owned: Mapping[ChildKey, Mapping[str, Any]],
    pod_failures: Mapping[str, str],
) -> dict[str, str]:
    """The services whose rollout of their current rendering failed, and why: their new pods said so
    (`pod_failures`: rollout.pods_failure, per service), or their Deployment's progress deadline passed. A
    Deployment that is not at the desired rendering is not this rollout's."""
    result: dict[str, str] = {}
    for service, children in services.items():
        key = ("Deployment", render.child_name(app_name, service))
        wanted = next((c for c in children if key_of(c) == key), None)
        deployment = owned.get(key)
        if wanted is None or deployment is None or not up_to_date(wanted, deployment):
            continue
        if service in pod_failures:
            result[service] = pod_failures[service]
        elif (
            status.observed_current(deployment)
            and _condition_reason(deployment, "Progressing") == "ProgressDeadlineExceeded"
        ):
            result[service] = status.deployment_failure(deployment) or "progress deadline exceeded"
    return result


def reached(
    app_name: str,
    children: Mapping[str, Sequence[Mapping[str, Any]]],
    owned: Mapping[ChildKey, Mapping[str, Any]],
) -> list[str]:
    """The services every child of which is at the current rendering (`children`, service -> its rendering):
    those the rollout has reached."""
    return [
        service
        for service, items in children.items()
        if all(up_to_date(child, owned.get(key_of(child))) for child in items)
    ]


def decide(
    services: Mapping[str, api.ServiceSpec],
    failed: Mapping[str, str],
    last_good: api.RevisionRef | None,
    fingerprint: str,
    generation: int,
    timestamp: str,
    reached: Sequence[str] = (),
) -> api.RolloutFailure | None:
    """What to do about the failed services (in spec order), or None: nothing to return to and nothing to
    hold (the default policy without a Ready revision), or the failed rendering is the last good one itself."""
    if not failed or (last_good is not None and last_good.name.endswith(f"-{fingerprint}")):
        return None
    first = next(name for name in services if name in failed)
    hold = any(revisions.on_failure(services[name]) == "Hold" for name in failed)
    if not hold and last_good is None:
        return None
    return api.RolloutFailure(
        action="Held" if hold else "RolledBack",
        service=first,
        cause=failed[first],
        generation=generation,
        rendering=fingerprint,
        revision=None if hold else last_good,
        reached=list(reached),
        time=timestamp,
    )


@dataclass(frozen=True)
class Target:
    """What the services are returned to while a rollback holds: each rolled-back service's children from the
    revision, in the order they are written (dependents first); the services and jobs frozen as they are."""

    children: Mapping[str, tuple[dict[str, Any], ...]]
    order: tuple[str, ...]
    rolled_back: tuple[str, ...]
    frozen: frozenset[str]


def target(
    order: Sequence[str],
    services: Mapping[str, api.ServiceSpec],
    children: Mapping[str, Sequence[dict[str, Any]]],
    revision: revisions.Revision | None,
    reached: Sequence[str] = (),
) -> Target:
    """Returning the app to `revision` (None: hold everything). `order`: the components in dependency order;
    `children`: their current rendering; `reached`: the services the failed rollout had reached (the others are
    as the revision left them, or new)."""
    components = set(order)
    if revision is None:
        return Target({}, (), (), frozenset(components))
    targets: dict[str, tuple[dict[str, Any], ...]] = {}
    rolled_back: list[str] = []
    # Dependents first: the reverse of the dependency order; services the spec no longer has (removed by the
    # failed rollout) last, as nothing in the current spec depends on them.
    candidates = [
        *reversed([n for n in order if n in services]),
        *(n for n in revision.services if n not in services),
    ]
    for name in candidates:
        record = revision.services.get(name)
        if record is None or (name in services and name not in reached):
            continue  # new in the failed rollout, or not reached by it: kept as it is
        current = children.get(name, ())
        same = {key_of(c): c for c in current} == {key_of(c): c for c in record.children}
        policy = revisions.on_failure(services[name]) if name in services else record.on_failure
        if same:
            targets[name] = record.children
        elif policy == "Rollback":
            targets[name] = record.children
            rolled_back.append(name)
    frozen = frozenset((components | set(revision.services)) - set(targets))
    return Target(targets, tuple(n for n in candidates if n in targets), tuple(rolled_back), frozen)
