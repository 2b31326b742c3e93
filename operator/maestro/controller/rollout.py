"""Whether a service's rollout has failed, early (issue 16, "Failure detection"), pure.

A Deployment says its rollout failed only when its progress deadline (10 minutes by default) has passed
(status.deployment_failure). The pods of its new ReplicaSet say it much earlier: a container crash-looping
after RESTART_THRESHOLD restarts, or one that has waited GRACE_SECONDS in a state it does not leave by
itself (its image cannot be pulled, its configuration refers to a missing key, ...). A pod that starts but never gets ready is not judged
here: a slow start looks the same, and the progress deadline is there for it.

The executor reads the pods only for the services that `inspected` names, i.e. whose Deployment is in the middle
of a rollout at its current generation (or that lost its availability after one: the Deployment's status, as the
child index keeps it, cannot tell them apart): a steady app costs no request. And only once the app's written
status already says a rollout is going on (`pods_due`): a rollout that ends within the status hold, as one that
goes well mostly does, costs no LIST at all (each LIST by labels scans every ReplicaSet or pod of the namespace);
none can have failed by then (RESTART_THRESHOLD restarts, GRACE_SECONDS). While a rollout is neither done nor
failed, the pass comes back after RECHECK_SECONDS (`watch_again`): crash-looping pods change nothing in their
Deployment's status, so no watch event would bring it back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from maestro.controller import status

RESTART_THRESHOLD = 3  # restarts of one container of the new ReplicaSet's pods: the rollout failed
GRACE_SECONDS = 30.0  # how long a container may wait in one of WAITING_FAILURES before the rollout failed
RECHECK_SECONDS = 5.0  # a rollout in progress is looked at again after this long
# A container running again after its last crash counts as crash-looping for this long after that crash (the
# kubelet's back-off between restarts grows to 5 minutes): the pass that looks between two crashes sees it too.
CRASH_MEMORY_SECONDS = 300.0
DEFAULT_PROGRESS_DEADLINE = 600  # Kubernetes' default progressDeadlineSeconds

# The waiting reasons a container does not leave by itself (the kubelet's; CrashLoopBackOff is counted by its
# restarts instead, ContainerCreating and PodInitializing are the normal start).
WAITING_FAILURES = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)


def failure_reason(cause: str) -> str:
    """What a failure's cause says showed it, for the metric: CrashLoopBackOff (or the container's last reason),
    one of WAITING_FAILURES, ProgressDeadlineExceeded (the Deployment controller's words), or "Other", so that the
    series stay few."""
    if "progress deadline" in cause or "timed out progressing" in cause:
        return "ProgressDeadlineExceeded"
    if " restarts in " in cause:  # pods_failure's crash loop, whatever reason its container shows this moment
        return "CrashLoopBackOff"
    known = ("CrashLoopBackOff", *sorted(WAITING_FAILURES, key=len, reverse=True))
    return next((reason for reason in known if reason in cause), "Other")


TEMPLATE_HASH_LABEL = "pod-template-hash"  # set by the Deployment controller on a ReplicaSet and its pods


def rolling_out(deployment: Mapping[str, Any] | None) -> bool:
    """Whether the Deployment is in the middle of a rollout that its controller has seen and that has neither
    completed nor failed by its own account: the only state in which its pods are read."""
    return (
        deployment is not None
        and status.observed_current(deployment)
        and not status.deployment_available(deployment)
        and status.deployment_failure(deployment) is None
    )


def pods_due(app: Mapping[str, Any]) -> bool:
    """Whether the pods of the app's rollouts are read in this pass: once its written status says a rollout is in
    progress at its current generation (any phase but Ready: a previous pass saw it and the hold is over, or the
    operator restarted during it). Until then the pass only comes back after RECHECK_SECONDS."""
    previous = app.get("status") or {}
    return previous.get("phase") not in (None, "Ready") and previous.get("observedGeneration") == (
        app.get("metadata") or {}
    ).get("generation")


def _template(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A pod template without the label the Deployment controller adds to its ReplicaSets' copies."""
    template = dict((obj.get("spec") or {}).get("template") or {})
    meta = dict(template.get("metadata") or {})
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k != TEMPLATE_HASH_LABEL}
    meta["labels"] = labels
    template["metadata"] = {k: v for k, v in meta.items() if v or k != "labels"}
    return template


def new_replicaset(
    deployment: Mapping[str, Any], replicasets: Iterable[Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    """The Deployment's new ReplicaSet: one it controls whose pod template is the Deployment's, but for the
    pod-template-hash label (the Deployment controller's own rule; the API server defaults both templates
    alike). None before the controller has made it."""
    uid = (deployment.get("metadata") or {}).get("uid")
    wanted = _template(deployment)
    for replicaset in replicasets:
        owners = (replicaset.get("metadata") or {}).get("ownerReferences") or []
        if (
            any(o.get("controller") and o.get("uid") == uid for o in owners)
            and _template(replicaset) == wanted
        ):
            return replicaset
    return None


def template_hash(replicaset: Mapping[str, Any]) -> str | None:
    return ((replicaset.get("metadata") or {}).get("labels") or {}).get(TEMPLATE_HASH_LABEL)


def _seconds(timestamp: str | None) -> float | None:
    if not timestamp:
        return None
    return datetime.fromisoformat(str(timestamp).replace("Z", "+00:00")).timestamp()


def _age(pod: Mapping[str, Any], now: str) -> float:
    """Seconds since the pod was created (0 when unknown)."""
    created, current = _seconds((pod.get("metadata") or {}).get("creationTimestamp")), _seconds(now)
    return max(0.0, current - created) if created is not None and current is not None else 0.0


def _containers(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    pod_status = pod.get("status") or {}
    return [*(pod_status.get("initContainerStatuses") or []), *(pod_status.get("containerStatuses") or [])]


def _recently_crashed(container: Mapping[str, Any], now: str) -> bool:
    ended = _seconds(((container.get("lastState") or {}).get("terminated") or {}).get("finishedAt"))
    current = _seconds(now)
    return ended is not None and current is not None and current - ended < CRASH_MEMORY_SECONDS


def pods_failure(pods: Sequence[Mapping[str, Any]], now: str) -> str | None:
    """Why the new ReplicaSet's pods show the rollout failed, or None: of the containers crash-looping (not
    ready, and not running or running again after a crash less than CRASH_MEMORY_SECONDS ago), the one with the most restarts once they reach RESTART_THRESHOLD ("3 restarts in 40 s,
    CrashLoopBackOff (exit code 1): <its last words>"), else a container
    waiting in one of WAITING_FAILURES in a pod older than GRACE_SECONDS ("ImagePullBackOff for 35 s: <the
    kubelet's message>"). `now`: the pass's time (metav1.Time)."""
    crashing: tuple[int, Mapping[str, Any], Mapping[str, Any]] | None = None
    stuck: tuple[Mapping[str, Any], Mapping[str, Any]] | None = None
    for pod in pods:
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            continue  # on its way out: not the rollout's doing
        for container in _containers(pod):
            restarts = int(container.get("restartCount") or 0)
            # Crash-looping: not ready, and down now (waiting to restart, or ended) or running again after a
            # recent crash. A ready container, or one whose last crash is long past, is judged by what it does
            # next: a long-lived pod's old restarts are not this rollout's.
            down = not container.get("ready") and (
                "running" not in (container.get("state") or {}) or _recently_crashed(container, now)
            )
            if down and restarts >= RESTART_THRESHOLD and (crashing is None or restarts > crashing[0]):
                crashing = (restarts, pod, container)
            waiting = (container.get("state") or {}).get("waiting") or {}
            if (
                stuck is None
                and waiting.get("reason") in WAITING_FAILURES
                and _age(pod, now) >= GRACE_SECONDS
            ):
                stuck = (pod, container)
    if crashing is not None:
        restarts, pod, container = crashing
        state = container.get("state") or {}
        last = ((container.get("lastState") or {}).get("terminated")) or state.get("terminated") or {}
        reason = (state.get("waiting") or {}).get("reason") or last.get("reason") or "restarting"
        text = f"{restarts} restarts in {_age(pod, now):.0f} s, {reason}"
        if last.get("exitCode"):
            text += f" (exit code {last['exitCode']})"
        words = str(last.get("message") or "").strip()
        return f"{text}: {words}" if words else text
    if stuck is not None:
        pod, container = stuck
        waiting = (container.get("state") or {}).get("waiting") or {}
        text = f"{waiting['reason']} for {_age(pod, now):.0f} s"
        words = str(waiting.get("message") or "").strip()
        return f"{text}: {words}" if words else text
    return None


def watch_again(deployment: Mapping[str, Any], pods: Sequence[Mapping[str, Any]], now: str) -> bool:
    """Whether a rollout still undecided is worth another look in RECHECK_SECONDS: until its newest pod is as
    old as the progress deadline (then the Deployment says the rest, and a Deployment that stays unavailable,
    e.g. pods that cannot be scheduled, is not looked at forever)."""
    deadline = (deployment.get("spec") or {}).get("progressDeadlineSeconds") or DEFAULT_PROGRESS_DEADLINE
    return not pods or min(_age(pod, now) for pod in pods) < float(deadline)
