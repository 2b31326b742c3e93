"""Jobs in the dependency graph on a real API server, through the real Job and CronJob controllers: the operator
(`maestro run`) gates services on a migration's run, runs a job once per revision of its rendering and config,
reports a failed run with its pod's termination message, keeps and prunes runs, and renders scheduled jobs as
CronJobs.

On the local cluster kwok plays the kubelet: a Job's pod succeeds at once, or after `kwok.maestro.dev/duration`,
or fails with `kwok.maestro.dev/exit-code` and `kwok.maestro.dev/message` (hack/cluster/cluster.py's stages,
set here through the job's podAnnotations). Each job's container also runs a command that does the same, so the
tests hold on a real node too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import operator_process
from tests.e2e.kubectl import Kubectl
from tests.e2e.operator_process import OperatorProcess
from tests.e2e.waits import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

MANAGED = "app.kubernetes.io/managed-by=maestro"
IMAGE = "busybox:1.36"  # the jobs' image: real nodes run their commands


@pytest.fixture
def op(
    request: pytest.FixtureRequest, test_cluster: object, crd: None, namespace: str, tmp_path: Path
) -> Iterator[OperatorProcess]:
    yield from operator_process.running(request, namespace, tmp_path)


def svc(name: str, version: str = "1.0.0", **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "image": f"registry.example.com/{name}:{version}",
        "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
    } | fields


def task(
    name: str, step: str = "1", *, seconds: int = 0, fail: str | None = None, **fields: Any
) -> dict[str, Any]:
    """A job whose pod runs `seconds` then succeeds, or fails with exit code 3 and `fail` as its termination
    message: on kwok through its annotations, on a real node through its command. `step` tells revisions apart
    (an environment variable: a new value is a new rendering, hence a new run)."""
    annotations: dict[str, str] = {}
    script = f"sleep {seconds}"
    if seconds:
        annotations["kwok.maestro.dev/duration"] = f"{seconds}s"
    if fail is not None:
        annotations |= {"kwok.maestro.dev/exit-code": "3", "kwok.maestro.dev/message": fail}
        script += f"; echo '{fail}' > /dev/termination-log; exit 3"
    job: dict[str, Any] = {
        "name": name,
        "image": IMAGE,
        "command": ["sh", "-c", script],
        "env": [{"name": "STEP", "value": step}],
        "podSecurityContext": {"runAsUser": 65534},
    }
    if annotations:
        job["podAnnotations"] = annotations
    return job | fields


def msa(*services: dict[str, Any], jobs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "maestro.dev/v1alpha1",
        "kind": "MicroserviceApp",
        "metadata": {"name": "blog"},
        "spec": {"services": list(services), "jobs": jobs},
    }


def chain(api_version: str = "1.0.0", **migrate: Any) -> dict[str, Any]:
    """db -> migrate -> api."""
    return msa(
        svc("db"),
        svc("api", api_version, dependsOn=["db", "migrate"]),
        jobs=[task("migrate", dependsOn=["db"], **migrate)],
    )


def app(kubectl: Kubectl) -> dict[str, Any]:
    obj: dict[str, Any] = kubectl.get("msa", "blog")
    return obj


def current(kubectl: Kubectl) -> dict[str, Any] | None:
    """The app, once the operator has written a status for its current generation."""
    obj = app(kubectl)
    status = obj.get("status") or {}
    return obj if status.get("observedGeneration") == obj["metadata"]["generation"] else None


def wait_phase(kubectl: Kubectl, phase: str, timeout: float = 90) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        obj = current(kubectl)
        return obj if obj is not None and obj["status"].get("phase") == phase else None

    return wait_until(f"msa/blog {phase} at its current generation", reached, timeout=timeout)


def part(obj: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    """One service's or job's entry in the app's status."""
    return next(item for item in obj["status"].get(kind) or [] if item["name"] == name)


def runs(kubectl: Kubectl, job: str = "migrate") -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kubectl.get("jobs", selector=f"{MANAGED},app.kubernetes.io/component={job}")
    return sorted(items, key=lambda j: j["metadata"]["creationTimestamp"])


def apply_time(kubectl: Kubectl, kind: str, name: str) -> str:
    """When the operator last applied the object (its field manager's time)."""
    obj = json.loads(kubectl("get", kind, name, "--show-managed-fields", "-o", "json"))
    return max(str(m["time"]) for m in obj["metadata"]["managedFields"] if m.get("manager") == "maestro")


def events(kubectl: Kubectl, reason: str) -> list[dict[str, Any]]:
    return [
        e
        for e in kubectl.get("events")
        if e["involvedObject"].get("kind") == "MicroserviceApp" and e.get("reason") == reason
    ]


def test_the_migration_runs_before_api_once_per_revision(kubectl: Kubectl, op: OperatorProcess) -> None:
    kubectl.apply(chain(seconds=4))

    # While the migration runs, api waits for it.
    def waiting_for_migrate() -> dict[str, Any] | None:
        obj = app(kubectl)
        api = next((s for s in (obj.get("status") or {}).get("services") or [] if s["name"] == "api"), None)
        return obj if api is not None and api.get("waitingFor") == ["migrate"] else None

    waiting = wait_until("api Waiting for migrate", waiting_for_migrate)
    assert part(waiting, "services", "api")["phase"] == "Waiting"
    assert part(waiting, "jobs", "migrate")["phase"] in ("Pending", "Running")
    assert kubectl.get("deployment", "blog-api") is None

    ready = wait_phase(kubectl, "Ready")
    (first,) = runs(kubectl)
    migrate = part(ready, "jobs", "migrate")
    assert migrate["phase"] == "Succeeded" and migrate["run"] == first["metadata"]["name"]
    assert first["metadata"]["name"] == f"blog-migrate-{migrate['runKey']}"
    assert first["metadata"]["ownerReferences"][0]["uid"] == ready["metadata"]["uid"]
    # api's Deployment appeared only after the migration had succeeded.
    api = kubectl.get("deployment", "blog-api")
    assert api["metadata"]["creationTimestamp"] >= first["status"]["completionTime"]
    assert [e["message"] for e in events(kubectl, "JobSucceeded")] == [
        f"migrate: run {first['metadata']['name']} succeeded"
    ]

    # A new api image alone: api rolls, the migration does not run again.
    kubectl.apply(chain("1.1.0", seconds=4))
    wait_until(
        "api at 1.1.0",
        lambda: (
            (current(kubectl) or {}).get("status", {}).get("phase") == "Ready"
            and kubectl.get("deployment", "blog-api")["spec"]["template"]["spec"]["containers"][0][
                "image"
            ].endswith(":1.1.0")
        ),
    )
    assert [r["metadata"]["uid"] for r in runs(kubectl)] == [first["metadata"]["uid"]]

    # A release: a new migration and a new api. The migration runs again, and api waits for it again.
    kubectl.apply(chain("2.0.0", step="2", seconds=4))
    wait_until("a second run", lambda: len(runs(kubectl)) == 2)
    held = wait_until("api Waiting for the new run", waiting_for_migrate)
    assert kubectl.get("deployment", "blog-api")["spec"]["template"]["spec"]["containers"][0][
        "image"
    ].endswith(":1.1.0"), "api rolled before its migration ran"
    assert part(held, "jobs", "migrate")["run"] == runs(kubectl)[-1]["metadata"]["name"]
    ready = wait_phase(kubectl, "Ready")
    second = runs(kubectl)[-1]
    assert part(ready, "jobs", "migrate")["run"] == second["metadata"]["name"] != first["metadata"]["name"]
    api = kubectl.get("deployment", "blog-api")
    assert api["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":2.0.0")
    assert apply_time(kubectl, "deployment", "blog-api") >= second["status"]["completionTime"]


def test_a_failing_migration_holds_api_until_it_is_fixed(kubectl: Kubectl, op: OperatorProcess) -> None:
    message = 'relation "posts" already exists'
    kubectl.apply(chain(fail=message, backoffLimit=1))

    degraded = wait_phase(kubectl, "Degraded", timeout=120)  # two attempts, 10 s of back-off between them
    migrate = part(degraded, "jobs", "migrate")
    assert migrate["phase"] == "Failed"
    assert migrate["message"].startswith("BackoffLimitExceeded: ")
    assert f"exit code 3 (Error): {message}" in migrate["message"]  # the pod's termination message
    (condition,) = [c for c in degraded["status"]["conditions"] if c["type"] == "Degraded"]
    assert condition["status"] == "True" and condition["reason"] == "JobFailed"
    assert message in condition["message"] and condition["message"].endswith("holding api")
    assert part(degraded, "services", "api")["phase"] == "Waiting"
    assert kubectl.get("deployment", "blog-api") is None
    (warning,) = wait_until("a JobFailed event", lambda: events(kubectl, "JobFailed"))
    assert warning["type"] == "Warning" and message in warning["message"]
    (run,) = runs(kubectl)
    assert run["status"]["failed"] == 2  # backoffLimit 1: two attempts, each its own pod

    # The fix: a new migration, which succeeds; api follows.
    kubectl.apply(chain(step="2"))
    ready = wait_phase(kubectl, "Ready")
    assert part(ready, "jobs", "migrate")["phase"] == "Succeeded"
    assert kubectl.get("deployment", "blog-api") is not None
    assert len(runs(kubectl)) == 2  # the failed run is kept for its logs


def test_runs_are_kept_up_to_the_history_limit_and_pruned_with_their_job(
    kubectl: Kubectl, op: OperatorProcess
) -> None:
    for step in ("1", "2", "3", "4"):
        kubectl.apply(chain(step=step, historyLimit=2))
        wait_phase(kubectl, "Ready")
    kept = wait_until("two runs kept", lambda: len(found := runs(kubectl)) == 2 and found)
    steps = [
        next(e["value"] for e in r["spec"]["template"]["spec"]["containers"][0]["env"] if e["name"] == "STEP")
        for r in kept
    ]
    assert steps == ["3", "4"]

    # The job leaves the spec: its runs go; api no longer depends on it.
    kubectl.apply(msa(svc("db"), svc("api", dependsOn=["db"]), jobs=[]))
    ready = wait_phase(kubectl, "Ready")
    assert "jobs" not in ready["status"]
    wait_until("every run pruned", lambda: runs(kubectl) == [])


def test_a_scheduled_job_is_a_cronjob_validated_and_pruned(kubectl: Kubectl, op: OperatorProcess) -> None:
    report = task(
        "report", schedule="30 2 * * *", timeZone="Europe/Paris", historyLimit=2, dependsOn=["migrate"]
    )
    kubectl.apply(msa(svc("web"), jobs=[task("migrate"), report]))
    ready = wait_phase(kubectl, "Ready")
    assert part(ready, "jobs", "report")["phase"] == "Scheduled"
    cronjob = kubectl.get("cronjob", "blog-report")
    assert cronjob["spec"]["schedule"] == "30 2 * * *" and cronjob["spec"]["timeZone"] == "Europe/Paris"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert cronjob["spec"]["successfulJobsHistoryLimit"] == 2
    assert cronjob["metadata"]["ownerReferences"][0]["uid"] == ready["metadata"]["uid"]
    # Created once its dependency had run.
    assert apply_time(kubectl, "cronjob", "blog-report") >= runs(kubectl)[0]["status"]["completionTime"]

    # Cron syntax is checked at `kubectl apply`, naming the field.
    bad = msa(svc("web"), jobs=[task("migrate"), report | {"schedule": "61 2 * * *"}])
    refused = kubectl.try_apply(bad)
    assert refused.returncode != 0 and "spec.jobs[1].schedule" in refused.stderr, refused.stderr
    after = msa(svc("web", dependsOn=["report"]), jobs=[task("migrate"), report])
    refused = kubectl.try_apply(after)
    assert "dependsOn cannot name a scheduled job" in refused.stderr, refused.stderr

    # Its schedule changes in place; gone from the spec, it is pruned.
    kubectl.apply(msa(svc("web"), jobs=[task("migrate"), report | {"schedule": "@hourly"}]))
    wait_until(
        "the new schedule", lambda: kubectl.get("cronjob", "blog-report")["spec"]["schedule"] == "@hourly"
    )
    kubectl.apply(msa(svc("web"), jobs=[task("migrate")]))
    wait_phase(kubectl, "Ready")
    wait_until("the CronJob pruned", lambda: kubectl.get("cronjob", "blog-report") is None)
