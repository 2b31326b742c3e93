"""Jobs, pure: their validation, their rendering (the Job of a run and its run key, the CronJob), and whole passes
of the plan with jobs in the dependency graph (gating, a failed run, a new run, history, pruning, scheduled jobs)
and their status."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

import pytest

from maestro import render
from maestro.api import models as api
from maestro.controller import compare, plan, status
from tests.unit.helpers import app as make_app
from tests.unit.helpers import by_kind, svc

NOW = "2026-01-01T00:00:00Z"


def job(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": f"registry.example.com/{name}:1.0.0"} | fields


def migrating(**changes: Any) -> dict[str, Any]:
    """db -> migrate -> api, the issue's chain; `changes` are the migrate job's fields."""
    return make_app(
        svc("db"),
        svc("api", dependsOn=["db", "migrate"]),
        jobs=[job("migrate", dependsOn=["db"], **changes)],
    )


def errors_of(spec: Mapping[str, Any], name: str = "shop") -> list[str]:
    try:
        api.validate_app(name, spec)
    except api.SpecError as error:
        return error.lines()
    return []


# ------------------------------------------------------------------------------------------------ validation


def test_a_valid_app_with_jobs() -> None:
    assert errors_of(migrating()["spec"]) == []
    scheduled = make_app(svc("web"), jobs=[job("report", schedule="@daily", timeZone="Europe/Paris")])
    assert errors_of(scheduled["spec"]) == []


@pytest.mark.parametrize(
    ("spec", "line"),
    [
        (
            {"services": [svc("web")], "jobs": [job("web")]},
            "spec.jobs[0].name: 'web' is the name of a service: services and jobs share one set of names",
        ),
        (
            {"services": [svc("web")], "jobs": [job("m"), job("m")]},
            "spec.jobs[1].name: duplicate job name 'm'",
        ),
        (
            {"services": [svc("web")], "jobs": [job("m", dependsOn=["ghost"])]},
            "spec.jobs[0].dependsOn[0]: unknown service or job 'ghost'",
        ),
        (
            {"services": [svc("web", dependsOn=["report"])], "jobs": [job("report", schedule="@hourly")]},
            "spec.services[0].dependsOn[0]: 'report' is a scheduled job (it has a schedule): nothing waits for one",
        ),
        (
            {"services": [svc("web")], "jobs": [job("m", dependsOn=["m"])]},
            "spec.jobs[0].dependsOn: a job cannot depend on itself",
        ),
        (
            {"services": [svc("api", dependsOn=["migrate"])], "jobs": [job("migrate", dependsOn=["api"])]},
            "spec.services[0].dependsOn: dependency cycle: api -> migrate -> api",
        ),
        (
            {"services": [svc("web")], "jobs": [job("m", timeZone="UTC")]},
            "spec.jobs[0].timeZone: timeZone needs a schedule",
        ),
        (
            {"services": [svc("web")], "jobs": [job("m", concurrencyPolicy="Allow")]},
            "spec.jobs[0].concurrencyPolicy: concurrencyPolicy needs a schedule",
        ),
        (
            {"services": [svc("web")], "jobs": [job("m", schedule="5-1 * * * *")]},
            "spec.jobs[0].schedule: range 5-1 runs backwards (0-59 is the field's range)",
        ),
        (
            {"services": [svc("web")], "jobs": [job("m", schedule="0 0 * mar-jan *")]},
            "spec.jobs[0].schedule: range mar-jan runs backwards (1-12 is the field's range)",
        ),
        (
            {"services": [svc("web")], "jobs": [job("m", dependsOn=["web", "web"])]},
            "spec.jobs[0].dependsOn[1]: duplicate entry 'web'",
        ),
        (
            {"services": [svc("web")], "jobs": [job("m", backoffLimit=-1)]},
            "spec.jobs[0].backoffLimit: must be at least 0",
        ),
    ],
)
def test_job_rules_name_the_field(spec: dict[str, Any], line: str) -> None:
    assert line in errors_of(spec)


@pytest.mark.parametrize(
    "schedule",
    [
        "*/5 * * * *",
        "0 3 * * *",
        "30 2 1,15 * mon-fri",
        "0 0 1 JAN-MAR/2 ?",
        "@hourly",
        "59 23 31 12 6",
    ],
)
def test_cron_schedules_kubernetes_takes(schedule: str) -> None:
    assert errors_of({"services": [svc("web")], "jobs": [job("m", schedule=schedule)]}) == []


@pytest.mark.parametrize(
    "schedule",
    [
        "60 * * * *",  # minute out of range
        "0 24 * * *",
        "0 0 0 * *",  # days of the month start at 1
        "0 0 * 13 *",
        "* * * * 7",  # robfig/cron's days of the week are 0-6
        "*/0 * * * *",  # a step of 0
        "0 3 * *",  # four fields
        "0 3 * * * *",  # six (seconds are not Kubernetes')
        "CRON_TZ=UTC 0 3 * * *",  # timeZone says it
        "TZ=UTC 0 3 * * *",
        "@fortnightly",
        "@every 1h",  # robfig's, but a duration Go cannot hold would pass any pattern and fail the CronJob
        "*/100 * * * *",  # a step that long could overflow the parser
        "",
    ],
)
def test_cron_schedules_refused_at_apply(schedule: str) -> None:
    lines = errors_of({"services": [svc("web")], "jobs": [job("m", schedule=schedule)]})
    assert lines and all(line.startswith("spec.jobs[0].schedule") for line in lines), lines
    # The CRD's pattern is the model's: the API server refuses what `maestro validate` refuses.
    assert not re.fullmatch(api.CRON_PATTERN, schedule)


def test_app_and_job_name_fit_the_cronjob_limit() -> None:
    spec = {"services": [svc("web")], "jobs": [job("j" * 30)]}
    assert errors_of(spec, name="a" * 21) == []  # 21 + 1 + 30 = 52
    (line,) = errors_of(spec, name="a" * 22)
    assert line.startswith("spec.jobs[0].name: child name") and "must be at most 52" in line


def test_defaults_are_merged_under_jobs_but_not_their_pod_spec_patch() -> None:
    spec = api.validate_app(
        "shop",
        {
            "defaults": {
                "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "REGION", "value": "eu"}],
                "resources": {"requests": {"cpu": "100m"}},
                "podSpecPatch": {"containers": [{"name": "log-shipper", "image": "shipper:1"}]},
                "replicas": 3,
            },
            "services": [svc("web")],
            "jobs": [job("migrate", env=[{"name": "LOG_LEVEL", "value": "debug"}])],
        },
    )
    (merged,) = render.effective_jobs(spec)
    assert [(e.name, e.value) for e in merged.env or []] == [("LOG_LEVEL", "debug"), ("REGION", "eu")]
    assert merged.resources is not None and merged.resources.requests == {"cpu": "100m"}
    assert merged.pod_spec_patch is None  # a sidecar would keep the Job from ever completing


# ------------------------------------------------------------------------------------------------- rendering


def run_of(app: Mapping[str, Any], name: str = "migrate", **hashes: str) -> dict[str, Any]:
    (run,) = [
        c
        for c in render.render_app(app, config_hashes=hashes)
        if c["kind"] == "Job" and c["metadata"]["labels"][render.LABEL_COMPONENT] == name
    ]
    return run


def test_a_run_is_a_job_named_by_its_run_key() -> None:
    app = migrating(activeDeadlineSeconds=600)
    run = run_of(app)
    key = run["metadata"]["labels"][render.RUN_KEY_LABEL]
    assert re.fullmatch(r"[0-9a-f]{10}", key)
    assert run["metadata"]["name"] == f"shop-migrate-{key}"
    assert key == render.run_key(run["spec"])
    assert run["metadata"]["ownerReferences"][0]["uid"] == app["metadata"]["uid"]
    spec = run["spec"]
    assert spec["backoffLimit"] == 2 and spec["activeDeadlineSeconds"] == 600
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert "topologySpreadConstraints" not in pod  # one pod: nothing to spread
    assert pod["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    (container,) = pod["containers"]
    assert container["name"] == "migrate" and "ports" not in container
    # It depends on db: db's variables, as a service gets them.
    assert {"name": "DB_URL", "value": "http://shop-db:80"} in container["env"]
    assert spec["template"]["metadata"]["labels"][render.LABEL_COMPONENT] == "migrate"


def test_the_run_key_follows_the_job_and_its_config_only() -> None:
    base = run_of(migrating())["metadata"]["name"]
    other = migrating()
    other["spec"]["services"][1]["image"] = "registry.example.com/api:2.0.0"  # another service's image
    other["spec"]["services"][0]["replicas"] = 3  # a replica count
    assert run_of(other)["metadata"]["name"] == base
    assert run_of(migrating(image="registry.example.com/migrate:2.0.0"))["metadata"]["name"] != base
    assert run_of(migrating(env=[{"name": "STEP", "value": "2"}]))["metadata"]["name"] != base
    assert run_of(migrating(backoffLimit=5))["metadata"]["name"] != base
    assert run_of(migrating(), migrate="config-a")["metadata"]["name"] != base
    assert run_of(migrating(), migrate="config-a") != run_of(migrating(), migrate="config-b")
    assert run_of(migrating(historyLimit=5))["metadata"]["name"] == base  # how many runs are kept


def test_a_scheduled_job_is_a_cronjob() -> None:
    app = make_app(
        svc("web"),
        jobs=[
            job("report", schedule="30 2 * * *", timeZone="Europe/Paris", historyLimit=2, dependsOn=["web"])
        ],
    )
    children = render.render_app(app)
    assert [c["kind"] for c in children].count("Job") == 0
    cron = by_kind(children, "CronJob", "shop-report")
    spec = cron["spec"]
    assert spec["schedule"] == "30 2 * * *" and spec["timeZone"] == "Europe/Paris"
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["successfulJobsHistoryLimit"] == spec["failedJobsHistoryLimit"] == 2
    # Its Jobs are the CronJob's, not the app's: no managed-by label for the operator's watches to take.
    labels = spec["jobTemplate"]["metadata"]["labels"]
    assert render.LABEL_MANAGED_BY not in labels and labels[render.LABEL_COMPONENT] == "report"
    assert spec["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert cron["metadata"]["labels"][render.LABEL_MANAGED_BY] == "maestro"


def test_render_app_puts_jobs_in_dependency_order() -> None:
    kinds_and_names = [
        (c["kind"], c["metadata"]["labels"][render.LABEL_COMPONENT]) for c in render.render_app(migrating())
    ]
    assert kinds_and_names == [
        ("Deployment", "db"),
        ("Service", "db"),
        ("NetworkPolicy", "db"),
        ("Job", "migrate"),
        ("Deployment", "api"),
        ("Service", "api"),
        ("NetworkPolicy", "api"),
    ]


# ---------------------------------------------------------------------------------------------- whole passes


def desired_of(app: Mapping[str, Any], hashes: Mapping[str, str] | None = None) -> plan.Desired:
    return plan.desire(app, plan.validated(app), hashes or {})


def in_cluster(child: Mapping[str, Any], **status_fields: Any) -> dict[str, Any]:
    """A child as the cluster holds it: a Deployment Available, a Job with the status given."""
    obj = copy.deepcopy(dict(child))
    obj["metadata"] = {**obj["metadata"], "uid": f"uid-{obj['metadata']['name']}", "generation": 1}
    obj["metadata"].setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
    if obj["kind"] == "Deployment":
        obj["status"] = {
            "observedGeneration": 1,
            "replicas": 1,
            "readyReplicas": 1,
            "updatedReplicas": 1,
            "availableReplicas": 1,
            "conditions": [{"type": "Available", "status": "True"}],
        }
    elif obj["kind"] == "Job":
        obj["status"] = dict(status_fields)
    return obj


def succeeded(run: Mapping[str, Any], created: str = "2026-01-01T00:00:00Z") -> dict[str, Any]:
    obj = in_cluster(
        run,
        succeeded=1,
        startTime="2026-01-01T00:00:01Z",
        completionTime="2026-01-01T00:00:05Z",
        conditions=[{"type": "Complete", "status": "True"}],
    )
    obj["metadata"]["creationTimestamp"] = created
    return obj


def failed(run: Mapping[str, Any]) -> dict[str, Any]:
    return in_cluster(
        run,
        failed=3,
        startTime="2026-01-01T00:00:01Z",
        conditions=[
            {
                "type": "Failed",
                "status": "True",
                "reason": "BackoffLimitExceeded",
                "message": "Job has reached the specified backoff limit",
            }
        ],
    )


def running(run: Mapping[str, Any]) -> dict[str, Any]:
    return in_cluster(run, active=1, startTime="2026-01-01T00:00:01Z")


def observed_with(*children: Mapping[str, Any], **fields: Any) -> plan.Observed:
    return plan.Observed(NOW, children={compare.key_of(c): c for c in children}, **fields)


def services_in_cluster(desired: plan.Desired, *names: str) -> list[dict[str, Any]]:
    return [in_cluster(c) for name in names for c in desired.children[name]]


def decide(desired: plan.Desired, observed: plan.Observed) -> plan.Plan:
    decided = plan.plan(desired, observed)
    assert isinstance(decided, plan.Plan), decided
    return decided


def writes(decided: plan.Plan) -> list[str]:
    return [f"{w.change} {compare.label(w.child)}" for w in decided.writes]


def job_status(report: plan.Report, name: str = "migrate") -> api.JobStatus:
    return next(j for j in report.status.jobs or [] if j.name == name)


def test_a_new_app_waits_for_db_then_runs_the_migration_then_rolls_out_api() -> None:
    desired = desired_of(migrating())
    run = desired.run("migrate")
    assert run is not None
    first = decide(desired, observed_with())
    assert writes(first) == [
        "create Deployment/shop-db",
        "create Service/shop-db",
        "create NetworkPolicy/shop-db",
    ]
    assert first.waiting == {"migrate": ("db",), "api": ("db", "migrate")}
    assert job_status(first.report()).phase == "Waiting"
    assert job_status(first.report()).run == run["metadata"]["name"]  # the run it will be

    db = services_in_cluster(desired, "db")
    second = decide(desired, observed_with(*db))
    assert writes(second) == [f"create Job/{run['metadata']['name']}"]
    assert second.waiting == {"api": ("migrate",)}  # a run created in this pass has not run yet

    third = decide(desired, observed_with(*db, running(run)))
    assert writes(third) == []
    assert third.waiting == {"api": ("migrate",)}
    assert third.held_by_failures() == {}  # waiting for a run going is no failure
    report = third.report()
    assert job_status(report).phase == "Running" and report.status.phase == "Progressing"

    fourth = decide(desired, observed_with(*db, succeeded(run), previous=status.to_dict(report.status)))
    assert writes(fourth) == [
        "create Deployment/shop-api",
        "create Service/shop-api",
        "create NetworkPolicy/shop-api",
    ]
    assert fourth.waiting == {}
    report = fourth.report()
    done = job_status(report)
    assert (done.phase, done.run_key) == ("Succeeded", run["metadata"]["labels"][render.RUN_KEY_LABEL])
    assert (done.start_time, done.completion_time) == ("2026-01-01T00:00:01Z", "2026-01-01T00:00:05Z")
    assert [e.reason for e in report.if_written] == ["JobSucceeded"]


def test_ready_once_every_service_is_ready_and_every_run_succeeded() -> None:
    desired = desired_of(migrating())
    run = desired.run("migrate")
    assert run is not None
    decided = decide(desired, observed_with(*services_in_cluster(desired, "db", "api"), succeeded(run)))
    assert writes(decided) == [] and decided.prunes == ()
    report = decided.report()
    assert report.status.phase == "Ready"
    assert [e.message for e in report.if_written if e.reason == "Ready"] == [
        "all 2 services are ready, 1 job done"
    ]


def test_a_failed_migration_holds_api_and_marks_the_app_degraded_with_its_pods_word() -> None:
    app = migrating()
    app["spec"]["services"][1]["image"] = "registry.example.com/api:2.0.0"
    desired = desired_of(app)
    run = desired.run("migrate")
    assert run is not None
    old_api = services_in_cluster(desired_of(migrating()), "api")  # api at its previous image
    children = [*services_in_cluster(desired, "db"), *old_api, failed(run)]
    name = run["metadata"]["name"]
    assert plan.unexplained_failures(desired, {compare.key_of(c): c for c in children}, {}) == [name]
    detail = f"pod {name}-x1: exit code 3 (Error): relation already exists"
    decided = decide(desired, observed_with(*children, pod_failures={name: detail}))
    assert writes(decided) == []  # api keeps its previous image: the migration never let it through
    assert decided.waiting == {"api": ("migrate",)}
    report = decided.report()
    assert report.status.phase == "Degraded"
    (degraded,) = [c for c in report.status.conditions or [] if c.type == "Degraded"]
    assert degraded.reason == "JobFailed"
    assert degraded.message == (
        f"migrate: BackoffLimitExceeded: Job has reached the specified backoff limit; {detail}; holding api"
    )
    assert job_status(report).phase == "Failed"
    assert [(e.type, e.reason) for e in report.if_written] == [("Warning", "JobFailed")]
    # The seam for automatic rollbacks (issue 16): api never received this revision.
    assert decided.held_by_failures() == {"api": ("migrate",)}
    assert detail in report.if_written[0].message

    # Told once: the next pass reads no pods (the status has their word) and says the same.
    previous = status.to_dict(report.status)
    by_key = {compare.key_of(c): c for c in children}
    assert plan.unexplained_failures(desired, by_key, previous) == []
    again = decide(desired, observed_with(*children, previous=previous)).report()
    assert job_status(again).message == job_status(report).message
    assert again.if_written == () and not status.changed(previous, status.to_dict(again.status))


def test_a_new_api_image_alone_does_not_run_the_migration_again() -> None:
    before = desired_of(migrating())
    run = before.run("migrate")
    assert run is not None
    app = migrating()
    app["spec"]["services"][1]["image"] = "registry.example.com/api:2.0.0"
    desired = desired_of(app)
    assert desired.run("migrate") == run
    decided = decide(desired, observed_with(*services_in_cluster(before, "db", "api"), succeeded(run)))
    assert writes(decided) == [
        "update Deployment/shop-api",
        "update Service/shop-api",
    ]  # not the policy: no version label


def test_a_new_migrate_image_runs_again_and_api_waits_for_it() -> None:
    before = desired_of(migrating())
    old = before.run("migrate")
    app = migrating(image="registry.example.com/migrate:2.0.0")
    app["spec"]["services"][1]["image"] = "registry.example.com/api:2.0.0"
    desired = desired_of(app)
    new = desired.run("migrate")
    assert old is not None and new is not None and new["metadata"]["name"] != old["metadata"]["name"]
    children = [*services_in_cluster(before, "db", "api"), succeeded(old)]
    decided = decide(desired, observed_with(*children))
    assert writes(decided) == [f"create Job/{new['metadata']['name']}"]
    assert decided.waiting == {"api": ("migrate",)}
    assert decided.prunes == ()  # the previous run is kept for its logs


def test_a_new_run_waits_for_the_run_still_going() -> None:
    before = desired_of(migrating())
    old = before.run("migrate")
    desired = desired_of(migrating(image="registry.example.com/migrate:2.0.0"))
    assert old is not None
    decided = decide(desired, observed_with(*services_in_cluster(before, "db", "api"), running(old)))
    assert writes(decided) == []
    assert decided.waiting == {"migrate": (old["metadata"]["name"],)}
    assert decided.prunes == ()
    assert job_status(decided.report()).phase == "Waiting"


def test_earlier_runs_are_kept_up_to_the_history_limit_and_never_cut_short() -> None:
    desired = desired_of(migrating(historyLimit=3))
    current = desired.run("migrate")
    assert current is not None
    olds = [
        succeeded(
            desired_of(migrating(historyLimit=3, image=f"registry.example.com/m:{i}")).run("migrate") or {},
            created,
        )
        for i, created in enumerate(
            ["2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z", "2026-01-01T00:00:03Z", "2026-01-01T00:00:04Z"]
        )
    ]
    going = running(desired_of(migrating(image="registry.example.com/m:old")).run("migrate") or {})
    going["metadata"]["creationTimestamp"] = "2025-12-31T00:00:00Z"  # the oldest of all, still going
    children = [
        *services_in_cluster(desired, "db", "api"),
        succeeded(current, "2026-01-02T00:00:00Z"),
        *olds,
        going,
    ]
    decided = decide(desired, observed_with(*children))
    # The current run and the two newest earlier ones stay; so does the one still going.
    assert sorted(compare.label(p.child) for p in decided.prunes) == sorted(
        compare.label(o) for o in olds[:2]
    )


def test_a_job_left_out_of_the_spec_has_all_its_runs_pruned() -> None:
    before = desired_of(migrating())
    run = before.run("migrate")
    assert run is not None
    app = make_app(svc("db"), svc("api", dependsOn=["db"]))
    desired = desired_of(app)
    decided = decide(desired, observed_with(*services_in_cluster(before, "db", "api"), running(run)))
    assert [compare.label(p.child) for p in decided.prunes] == [compare.label(run)]
    assert decided.report().status.jobs is None


def test_a_scheduled_job_waits_for_its_dependencies_and_holds_nobody() -> None:
    app = make_app(
        svc("db"),
        svc("api", dependsOn=["migrate"]),
        jobs=[job("migrate"), job("report", schedule="@daily", dependsOn=["migrate"])],
    )
    desired = desired_of(app)
    first = decide(desired, observed_with())
    assert first.waiting == {"api": ("migrate",), "report": ("migrate",)}
    run = desired.run("migrate")
    assert run is not None
    second = decide(desired, observed_with(*services_in_cluster(desired, "db"), succeeded(run)))
    assert writes(second) == [
        "create Deployment/shop-api",
        "create Service/shop-api",
        "create NetworkPolicy/shop-api",
        "create CronJob/shop-report",
    ]
    cron = in_cluster(desired.children["report"][0])
    cron["status"] = {
        "lastScheduleTime": "2026-01-01T02:00:00Z",
        "lastSuccessfulTime": "2026-01-01T02:00:09Z",
    }
    children = [*services_in_cluster(desired, "db", "api"), succeeded(run), cron]
    report = decide(desired, observed_with(*children)).report()
    report_status = job_status(report, "report")
    assert (report_status.phase, report_status.last_result) == ("Scheduled", "Succeeded")
    assert report.status.phase == "Ready"
    # A failed scheduled run is reported, and leaves the app Ready (nothing waits for it).
    cron["status"] = {
        "lastScheduleTime": "2026-01-02T02:00:00Z",
        "lastSuccessfulTime": "2026-01-01T02:00:09Z",
    }
    report = decide(desired, observed_with(*children[:-1], cron)).report()
    assert job_status(report, "report").last_result == "Failed" and report.status.phase == "Ready"


def test_a_run_deleted_by_hand_runs_again() -> None:
    """The Job of the current run is the record that it ran: deleting it is how one retries a run."""
    desired = desired_of(migrating())
    decided = decide(desired, observed_with(*services_in_cluster(desired, "db", "api")))
    run = desired.run("migrate")
    assert run is not None
    assert writes(decided) == [f"create Job/{run['metadata']['name']}"]
    assert decided.waiting == {}  # api is in place: a run that does not change it does not hold it


def test_diff_preview_shows_a_new_run_and_who_waits_for_it() -> None:
    from maestro.controller import preview

    before = desired_of(migrating())
    old = before.run("migrate")
    assert old is not None
    app = migrating(image="registry.example.com/migrate:2.0.0")
    app["spec"]["services"][1]["image"] = "registry.example.com/api:2.0.0"
    result = preview.preview(
        desired_of(app), observed_with(*services_in_cluster(before, "db", "api"), succeeded(old))
    )
    assert isinstance(result, preview.Preview)
    assert [(r.service, r.reasons, r.wave) for r in result.rollouts] == [
        ("migrate", ("run",), 1),
        ("api", ("image",), 2),
    ]
    assert [(w.service, w.dependency) for w in result.waits] == [("api", "migrate")]


# ---------------------------------------------------------------------------------------------------- status


def test_pod_failure_says_what_the_newest_failed_pod_said() -> None:
    def pod(name: str, created: str, code: int, message: str = "") -> dict[str, Any]:
        ended: dict[str, Any] = {"exitCode": code, "reason": "Error"}
        if message:
            ended["message"] = message
        return {
            "metadata": {"name": name, "creationTimestamp": created},
            "status": {"phase": "Failed", "containerStatuses": [{"state": {"terminated": ended}}]},
        }

    pods = [
        pod("run-a", "2026-01-01T00:00:01Z", 1, "first"),
        pod("run-b", "2026-01-01T00:00:09Z", 3, "boom\n"),
    ]
    assert status.pod_failure(pods) == "pod run-b: exit code 3 (Error): boom"
    assert status.pod_failure([pod("run-c", "t", 2)]) == "pod run-c: exit code 2 (Error)"
    evicted = {
        "metadata": {"name": "run-d"},
        "status": {"phase": "Failed", "reason": "Evicted", "message": "low memory"},
    }
    assert status.pod_failure([evicted]) == "pod run-d: Evicted: low memory"
    assert status.pod_failure([{"metadata": {"name": "run-e"}, "status": {"phase": "Running"}}]) is None


def test_job_status_phases() -> None:
    app = migrating()
    spec = api.JobSpec.model_validate(job("migrate"))
    run = desired_of(app).run("migrate")
    assert run is not None
    assert status.job_status(app, spec, None).phase == "Pending"
    assert status.job_status(app, spec, running(run)).phase == "Running"
    assert status.job_status(app, spec, succeeded(run)).phase == "Succeeded"
    deadline = in_cluster(
        run,
        conditions=[
            {
                "type": "Failed",
                "status": "True",
                "reason": "DeadlineExceeded",
                "message": "Job was active longer than specified deadline",
            }
        ],
    )
    result = status.job_status(app, spec, deadline, failure_detail="pod x: DeadlineExceeded")
    assert (result.phase, result.message) == (
        "Failed",
        "DeadlineExceeded: Job was active longer than specified deadline; pod x: DeadlineExceeded",
    )
    # The Job controller's FailureTarget comes first: the run is failing, not failed, until its pods are gone.
    failing = in_cluster(
        run, conditions=[{"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded"}]
    )
    assert status.job_status(app, spec, failing).phase == "Running"


def test_held_by_failures_names_a_failed_rollout_too() -> None:
    app = make_app(svc("db"), svc("api", dependsOn=["db"]), svc("web", dependsOn=["api"]))
    desired = desired_of(app)
    db = in_cluster(desired.children["db"][0])
    db["status"]["conditions"] = [
        {"type": "Available", "status": "False"},
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "stuck"},
    ]
    decided = decide(desired, observed_with(db))
    assert decided.waiting == {"api": ("db",), "web": ("api",)}
    assert decided.held_by_failures() == {"api": ("db",)}  # web waits for api, which has not failed
