"""rollout.py: when the pods of a Deployment's new ReplicaSet show its rollout failed, long before its progress
deadline (issue 16), and which ReplicaSet is the new one. Tables of pods (or Deployments) -> verdict."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import pytest

from maestro.controller import rollout

NOW = "2026-01-01T00:01:00Z"  # a minute after BORN


def container(
    restarts: int = 0,
    waiting: str | None = None,
    message: str = "",
    last_exit: int | None = None,
    last_reason: str = "Error",
    last_message: str = "",
    name: str = "web",
    finished: str | None = None,
) -> dict[str, Any]:
    state: dict[str, Any] = {"running": {"startedAt": "2026-01-01T00:00:10Z"}}
    if waiting is not None:
        state = {"waiting": {"reason": waiting, **({"message": message} if message else {})}}
    result: dict[str, Any] = {"name": name, "restartCount": restarts, "ready": False, "state": state}
    if last_exit is not None:
        terminated = {"exitCode": last_exit, "reason": last_reason}
        if last_message:
            terminated["message"] = last_message
        if finished:
            terminated["finishedAt"] = finished
        result["lastState"] = {"terminated": terminated}
    return result


def pod(
    *containers: dict[str, Any], age: int = 60, init: tuple[dict[str, Any], ...] = (), **meta: Any
) -> dict:
    born = (
        f"2026-01-01T00:{(60 - age) // 60:02d}:{(60 - age) % 60:02d}Z"
        if age <= 60
        else "2025-12-31T23:00:00Z"
    )
    status: dict[str, Any] = {"phase": "Running", "containerStatuses": list(containers)}
    if init:
        status["initContainerStatuses"] = list(init)
    return {"metadata": {"name": "shop-web-abc-1", "creationTimestamp": born, **meta}, "status": status}


@dataclass(frozen=True)
class Case:
    name: str
    pods: list[dict[str, Any]]
    failure: str | None


CASES = [
    Case("no pods yet: undecided", [], None),
    Case("a pod starting: undecided", [pod(container(waiting="ContainerCreating"))], None),
    Case("a pod running, not ready yet: undecided", [pod(container())], None),
    Case(
        "two restarts: not yet (a crash or two can be a dependency starting late)",
        [pod(container(restarts=2, waiting="CrashLoopBackOff", last_exit=1))],
        None,
    ),
    Case(
        "three restarts in CrashLoopBackOff: failed, with the count, the time and the exit code",
        [pod(container(restarts=3, waiting="CrashLoopBackOff", last_exit=1), age=40)],
        "3 restarts in 40 s, CrashLoopBackOff (exit code 1)",
    ),
    Case(
        "three restarts, running again since a crash long ago, not ready: judged by what it does next",
        [pod(container(restarts=3, last_exit=2, last_reason="Error", finished="2025-12-31T23:50:00Z"))],
        None,
    ),
    Case(
        "three restarts, running again between crashes (the last 20 s ago): failed, named by that crash",
        [
            pod(
                container(restarts=3, last_exit=2, last_reason="Error", finished="2026-01-01T00:00:40Z"),
                age=30,
            )
        ],
        "3 restarts in 30 s, Error (exit code 2)",
    ),
    Case(
        "three restarts, ended and not restarted yet: failed, named by its termination",
        [
            pod(
                container(restarts=3, last_exit=2, last_reason="Error")
                | {"state": {"terminated": {"exitCode": 2}}}
            )
        ],
        "3 restarts in 60 s, Error (exit code 2)",
    ),
    Case(
        "a long-lived pod's old restarts, running and ready: not this rollout's",
        [pod(container(restarts=7, last_exit=137, last_reason="OOMKilled") | {"ready": True}, age=3600)],
        None,
    ),
    Case(
        "the container's last words are quoted",
        [
            pod(
                container(
                    restarts=4, waiting="CrashLoopBackOff", last_exit=1, last_message="no DATABASE_URL\n"
                )
            )
        ],
        "4 restarts in 60 s, CrashLoopBackOff (exit code 1): no DATABASE_URL",
    ),
    Case(
        "the pod with the most restarts is the one told",
        [
            pod(container(restarts=3, waiting="CrashLoopBackOff", last_exit=1)),
            pod(container(restarts=5, waiting="CrashLoopBackOff", last_exit=137, last_reason="OOMKilled")),
        ],
        "5 restarts in 60 s, CrashLoopBackOff (exit code 137)",
    ),
    Case(
        "an init container crash-looping counts",
        [
            pod(
                container(waiting="PodInitializing"),
                init=(container(restarts=3, waiting="CrashLoopBackOff"),),
            )
        ],
        "3 restarts in 60 s, CrashLoopBackOff",
    ),
    Case(
        "an image that cannot be pulled, within the grace period: undecided",
        [pod(container(waiting="ErrImagePull"), age=10)],
        None,
    ),
    Case(
        "an image that cannot be pulled past the grace period: failed, with the kubelet's message",
        [pod(container(waiting="ImagePullBackOff", message='Back-off pulling image "web:typo"'), age=45)],
        'ImagePullBackOff for 45 s: Back-off pulling image "web:typo"',
    ),
    Case(
        "a missing configuration key past the grace period: failed",
        [pod(container(waiting="CreateContainerConfigError", message='secret "db" not found'), age=31)],
        'CreateContainerConfigError for 31 s: secret "db" not found',
    ),
    Case(
        "a crash loop says more than a stuck pull in another pod",
        [
            pod(container(waiting="ImagePullBackOff"), age=50),
            pod(container(restarts=3, waiting="CrashLoopBackOff"), age=50),
        ],
        "3 restarts in 50 s, CrashLoopBackOff",
    ),
    Case(
        "a pod being deleted is not the rollout's doing",
        [pod(container(restarts=9, waiting="CrashLoopBackOff"), deletionTimestamp="2026-01-01T00:00:59Z")],
        None,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_pods_failure(case: Case) -> None:
    assert rollout.pods_failure(case.pods, NOW) == case.failure


def test_the_thresholds_are_what_the_docs_say() -> None:
    assert (rollout.RESTART_THRESHOLD, rollout.GRACE_SECONDS) == (3, 30.0)
    assert rollout.pods_failure([pod(container(waiting="ErrImagePull"), age=30)], NOW) is not None
    assert rollout.pods_failure([pod(container(waiting="ErrImagePull"), age=29)], NOW) is None


# ------------------------------------------------------------------------------------- rolling out, new RS


TEMPLATE = {
    "metadata": {
        "labels": {"app.kubernetes.io/name": "web"},
        "annotations": {"maestro.dev/config-hash": "a"},
    },
    "spec": {"containers": [{"name": "web", "image": "web:2"}]},
}


def deployment(
    *, generation: int = 2, observed: int = 2, available: bool = False, deadline: bool = False, **spec: Any
) -> dict[str, Any]:
    conditions = [{"type": "Available", "status": "True" if available else "False"}]
    if deadline:
        conditions.append({"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"})
    ready = 1 if available else 0
    return {
        "kind": "Deployment",
        "metadata": {"name": "shop-web", "uid": "d-1", "generation": generation},
        "spec": {"replicas": 1, "template": copy.deepcopy(TEMPLATE), **spec},
        "status": {
            "observedGeneration": observed,
            "replicas": 1 if available else 2,
            "updatedReplicas": 1,
            "availableReplicas": ready,
            "readyReplicas": ready,
            "conditions": conditions,
        },
    }


@dataclass(frozen=True)
class Rolling:
    name: str
    deployment: dict[str, Any] | None
    rolling_out: bool


ROLLING = [
    Rolling("no Deployment", None, False),
    Rolling(
        "a new spec its controller has not seen: its pods are not made yet", deployment(observed=1), False
    ),
    Rolling("in the middle of a rollout", deployment(), True),
    Rolling("Available at its generation: steady, no pods read", deployment(available=True), False),
    Rolling("past its progress deadline: it says why itself", deployment(deadline=True), False),
]


@pytest.mark.parametrize("case", ROLLING, ids=[case.name for case in ROLLING])
def test_rolling_out(case: Rolling) -> None:
    assert rollout.rolling_out(case.deployment) is case.rolling_out


def replicaset(name: str, template: dict[str, Any], *, owner: str = "d-1", template_hash: str = "h") -> dict:
    copied = copy.deepcopy(template)
    copied["metadata"]["labels"] = {
        **copied["metadata"]["labels"],
        rollout.TEMPLATE_HASH_LABEL: template_hash,
    }
    return {
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/name": "web", rollout.TEMPLATE_HASH_LABEL: template_hash},
            "ownerReferences": [{"kind": "Deployment", "uid": owner, "controller": True}],
        },
        "spec": {"template": copied},
    }


def test_the_new_replicaset_is_the_one_with_the_deployments_template() -> None:
    old_template = copy.deepcopy(TEMPLATE)
    old_template["spec"]["containers"][0]["image"] = "web:1"
    old = replicaset("shop-web-old", old_template, template_hash="old")
    new = replicaset("shop-web-new", TEMPLATE, template_hash="new")
    foreign = replicaset("other-new", TEMPLATE, owner="someone-else", template_hash="x")
    found = rollout.new_replicaset(deployment(), [foreign, old, new])
    assert found is new and rollout.template_hash(found) == "new"
    assert rollout.new_replicaset(deployment(), [foreign, old]) is None  # not made yet


def test_an_undecided_rollout_is_looked_at_again_until_its_newest_pod_is_as_old_as_the_deadline() -> None:
    young, old = pod(container(), age=30), pod(container(), age=3600)
    assert rollout.watch_again(deployment(), [], NOW)  # pods not made yet
    assert rollout.watch_again(deployment(), [old, young], NOW)
    assert not rollout.watch_again(deployment(), [old], NOW)  # e.g. unschedulable: the deadline tells
    assert not rollout.watch_again(deployment(progressDeadlineSeconds=20), [young], NOW)


@pytest.mark.parametrize(
    ("status", "generation", "due"),
    [
        (None, 1, False),  # a new app: its first rollout has just begun
        ({"phase": "Ready", "observedGeneration": 1}, 1, False),  # a config change, or a pod lost, just now
        ({"phase": "Ready", "observedGeneration": 1}, 2, False),  # a spec change not acted on yet
        ({"phase": "Progressing", "observedGeneration": 1}, 2, False),  # the previous rollout's status
        ({"phase": "Progressing", "observedGeneration": 2}, 2, True),  # written after the hold: still going
        ({"phase": "Degraded", "observedGeneration": 2}, 2, True),
        ({"phase": "Pending", "observedGeneration": 2}, 2, True),
    ],
)
def test_pods_are_read_once_the_written_status_says_a_rollout_goes_on(
    status: dict[str, Any] | None, generation: int, due: bool
) -> None:
    app: dict[str, Any] = {"metadata": {"generation": generation}}
    if status is not None:
        app["status"] = status
    assert rollout.pods_due(app) is due
