"""The operator on a real API server: `maestro run` (kopf, the real handlers) watching the test's namespace.

Each test applies a MicroserviceApp as a user would and checks what a user would check: the children, their
fields and owners, the app's status and conditions, its events.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from maestro.render import kinds
from tests.e2e import operator_process
from tests.e2e.kubectl import Kubectl
from tests.e2e.operator_process import OperatorProcess
from tests.e2e.waits import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

CHILD_KINDS = ",".join(kinds.KIND_NAMES)  # kubectl resolves the kinds itself (its own discovery)
MANAGED = "app.kubernetes.io/managed-by=maestro"


@pytest.fixture
def op(
    request: pytest.FixtureRequest, test_cluster: object, crd: None, namespace: str, tmp_path: Path
) -> Iterator[OperatorProcess]:
    """The operator (`maestro run --namespace <the test's namespace>`), see operator_process.py."""
    yield from operator_process.running(request, namespace, tmp_path)


def msa(name: str, *services: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "maestro.dev/v1alpha1",
        "kind": "MicroserviceApp",
        "metadata": {"name": name},
        "spec": {"services": list(services), **spec},
    }


def svc(name: str, *, port: int | None = 80, **fields: Any) -> dict[str, Any]:
    service: dict[str, Any] = {"name": name, "image": f"registry.example.com/{name}:1.0.0"}
    if port is not None:
        service["ports"] = [{"name": "http", "port": port, "targetPort": 8080}]
    return service | fields


def wait_ready(kubectl: Kubectl, name: str, timeout: int = 60) -> dict[str, Any]:
    """Wait as a user would (`kubectl wait`), after the operator has seen the app's current generation."""

    def observed() -> bool:
        app = kubectl.get("msa", name)
        return (
            bool(app) and (app.get("status") or {}).get("observedGeneration") == app["metadata"]["generation"]
        )

    wait_until(f"the operator to observe msa/{name}'s current generation", observed, timeout=timeout)
    kubectl("wait", "--for=condition=Ready", f"--timeout={timeout}s", f"msa/{name}")
    app: dict[str, Any] = kubectl.get("msa", name)
    return app


def names(kubectl: Kubectl, kind: str) -> set[str]:
    return {item["metadata"]["name"] for item in kubectl.get(kind, selector=MANAGED)}


def phase(kubectl: Kubectl, name: str) -> str | None:
    app = kubectl.get("msa", name)
    return (app.get("status") or {}).get("phase") if app else None


def condition(app: dict[str, Any], kind: str) -> dict[str, Any]:
    for item in app["status"]["conditions"]:
        if item["type"] == kind:
            return dict(item)
    raise AssertionError(f"no {kind} condition in {app['status']}")


def events(kubectl: Kubectl, name: str) -> list[dict[str, Any]]:
    return [
        e
        for e in kubectl.get("events")
        if e["involvedObject"].get("kind") == "MicroserviceApp" and e["involvedObject"].get("name") == name
    ]


def test_app_becomes_ready_with_owned_children(kubectl: Kubectl, op: OperatorProcess) -> None:
    kubectl.apply(
        msa(
            "shop",
            svc("catalog", autoscaling={"minReplicas": 2, "maxReplicas": 4}),
            svc("web", replicas=2, dependsOn=["catalog"]),
        )
    )
    app = wait_ready(kubectl, "shop")
    uid = app["metadata"]["uid"]
    assert names(kubectl, "deployments") == {"shop-catalog", "shop-web"}
    assert names(kubectl, "services") == {"shop-catalog", "shop-web"}
    assert names(kubectl, "horizontalpodautoscalers") == {"shop-catalog"}
    assert names(kubectl, "poddisruptionbudgets") == {"shop-catalog", "shop-web"}
    for kind in CHILD_KINDS.split(","):
        for child in kubectl.get(kind, selector=MANAGED):
            owners = child["metadata"]["ownerReferences"]
            assert [(o["kind"], o["name"], o["uid"], o["controller"]) for o in owners] == [
                ("MicroserviceApp", "shop", uid, True)
            ], f"{kind}/{child['metadata']['name']}"
    status = app["status"]
    assert status["phase"] == "Ready"
    assert status["readyServices"] == "2/2"
    assert status["observedGeneration"] == app["metadata"]["generation"]
    by_name = {s["name"]: s for s in status["services"]}
    assert by_name["web"]["phase"] == "Ready"
    assert by_name["web"]["readyReplicas"] == 2
    assert by_name["catalog"]["endpoint"] == f"http://shop-catalog.{kubectl.namespace}.svc:80"
    web = kubectl.get("deployment", "shop-web")
    env = {e["name"]: e.get("value") for e in web["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["CATALOG_URL"] == "http://shop-catalog:80"
    # The printer columns, and the events a user sees.
    row = kubectl("get", "msa", "shop").splitlines()[1].split()
    assert row[:3] == ["shop", "2/2", "Ready"]
    reasons = {e["reason"] for e in events(kubectl, "shop")}
    assert {"Created", "Ready"} <= reasons


def test_removed_service_hpa_and_service_are_pruned(kubectl: Kubectl, op: OperatorProcess) -> None:
    kubectl.apply(
        msa(
            "shop",
            svc("web", autoscaling={"minReplicas": 1, "maxReplicas": 3}),
            svc("api"),
            svc("worker", port=None),
        )
    )
    wait_ready(kubectl, "shop")
    assert names(kubectl, "deployments") == {"shop-web", "shop-api", "shop-worker"}
    assert names(kubectl, "horizontalpodautoscalers") == {"shop-web"}
    kubectl.apply(msa("shop", svc("web"), svc("api", expose={"type": "None"})))
    wait_until(
        "shop-worker's Deployment, shop-web's HPA and shop-api's Service to be pruned",
        lambda: (
            names(kubectl, "deployments") == {"shop-web", "shop-api"}
            and not names(kubectl, "horizontalpodautoscalers")
            and names(kubectl, "services") == {"shop-web"}
        ),
        timeout=30,
    )
    app = wait_ready(kubectl, "shop")
    assert [s["name"] for s in app["status"]["services"]] == ["web", "api"]


def test_deleted_or_edited_child_is_restored(kubectl: Kubectl, op: OperatorProcess) -> None:
    kubectl.apply(msa("shop", svc("web")))
    wait_ready(kubectl, "shop")
    old_uid = kubectl.get("deployment", "shop-web")["metadata"]["uid"]
    kubectl("delete", "deployment", "shop-web", "--wait=false")
    wait_until(
        "a new shop-web Deployment",
        lambda: (d := kubectl.get("deployment", "shop-web")) and d["metadata"]["uid"] != old_uid,
        timeout=30,
    )
    # An edit by hand of a field Maestro owns is put back.
    kubectl("set", "image", "deployment/shop-web", "web=registry.example.com/evil:6.6.6")

    def image() -> str:
        return str(
            kubectl.get("deployment", "shop-web")["spec"]["template"]["spec"]["containers"][0]["image"]
        )

    wait_until(
        "shop-web's image to be restored", lambda: image() == "registry.example.com/web:1.0.0", timeout=30
    )
    kubectl("delete", "service", "shop-web", "--wait=false")
    wait_until("the shop-web Service to be restored", lambda: kubectl.get("service", "shop-web"), timeout=30)
    wait_ready(kubectl, "shop")


def test_hpa_owns_replicas(kubectl: Kubectl, op: OperatorProcess) -> None:
    kubectl.apply(msa("shop", svc("web", autoscaling={"minReplicas": 1, "maxReplicas": 5})))
    wait_ready(kubectl, "shop")
    deployment = json.loads(kubectl("get", "deployment", "shop-web", "-o", "json", "--show-managed-fields"))
    maestro_fields = [m for m in deployment["metadata"]["managedFields"] if m["manager"] == "maestro"]
    assert maestro_fields and all("f:replicas" not in json.dumps(m["fieldsV1"]) for m in maestro_fields)
    before = op.passes()
    kubectl("scale", "deployment/shop-web", "--replicas=3")  # through the scale subresource, as an HPA
    wait_until("a pass after the scale", lambda: op.passes() > before, timeout=20)
    time.sleep(3)
    assert kubectl.get("deployment", "shop-web")["spec"]["replicas"] == 3
    wait_until(
        "the app to report 3 replicas of web",
        lambda: kubectl.get("msa", "shop")["status"]["services"][0]["replicas"] == 3,
        timeout=30,
    )


def test_dependent_waits_for_its_dependency(kubectl: Kubectl, op: OperatorProcess) -> None:
    # db cannot schedule (no node has that label) and gives up quickly: it is never Available.
    stuck_db = svc(
        "db",
        scheduling={"nodeSelector": {"maestro.dev/e2e": "nowhere"}},
        rollout={"progressDeadlineSeconds": 5},
    )
    kubectl.apply(msa("shop", stuck_db, svc("web", dependsOn=["db"])))
    wait_until("shop-db's Deployment", lambda: kubectl.get("deployment", "shop-db"), timeout=30)
    wait_until("the app to be Degraded", lambda: phase(kubectl, "shop") == "Degraded", timeout=40)
    app = kubectl.get("msa", "shop")
    degraded = condition(app, "Degraded")
    assert degraded["status"] == "True"
    assert "holding web" in degraded["message"]
    web = next(s for s in app["status"]["services"] if s["name"] == "web")
    assert (web["phase"], web["waitingFor"]) == ("Waiting", ["db"])
    assert kubectl.get("deployment", "shop-web") is None
    assert "WaitingForDependency" in {e["reason"] for e in events(kubectl, "shop")}
    # db can run now: it becomes Available, then web is created.
    kubectl.apply(msa("shop", svc("db"), svc("web", dependsOn=["db"])))
    app = wait_ready(kubectl, "shop")
    db = kubectl.get("deployment", "shop-db")
    web_deployment = kubectl.get("deployment", "shop-web")
    available = next(c for c in db["status"]["conditions"] if c["type"] == "Available")
    assert web_deployment["metadata"]["creationTimestamp"] >= available["lastTransitionTime"]


def test_dependent_update_waits_for_the_dependency_rollout(kubectl: Kubectl, op: OperatorProcess) -> None:
    kubectl.apply(msa("shop", svc("db"), svc("web", dependsOn=["db"])))
    wait_ready(kubectl, "shop")
    # Both change at once; db's new pods cannot schedule, so db is not Available at its new generation.
    stuck_db = svc("db", image="registry.example.com/db:2.0.0", scheduling={"nodeSelector": {"x": "nowhere"}})
    kubectl.apply(msa("shop", stuck_db, svc("web", image="registry.example.com/web:2.0.0", dependsOn=["db"])))

    def web_status() -> dict[str, Any]:
        services = (kubectl.get("msa", "shop").get("status") or {}).get("services") or []
        return next((s for s in services if s["name"] == "web"), {})

    wait_until("web to wait for db", lambda: web_status().get("phase") == "Waiting", timeout=30)
    assert web_status()["waitingFor"] == ["db"]
    time.sleep(3)
    web = kubectl.get("deployment", "shop-web")
    assert web["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example.com/web:1.0.0"
    kubectl.apply(
        msa(
            "shop",
            svc("db", image="registry.example.com/db:2.0.0"),
            svc("web", image="registry.example.com/web:2.0.0", dependsOn=["db"]),
        )
    )
    wait_ready(kubectl, "shop")
    web = kubectl.get("deployment", "shop-web")
    assert web["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example.com/web:2.0.0"


def test_invalid_spec_creates_nothing(kubectl: Kubectl, op: OperatorProcess) -> None:
    kubectl.apply(msa("shop", svc("a", dependsOn=["b"]), svc("b", dependsOn=["a"])))
    wait_until("the app to be Invalid", lambda: phase(kubectl, "shop") == "Invalid", timeout=30)
    time.sleep(3)  # any late write (there should be none) lands before the resourceVersion is taken
    app = kubectl.get("msa", "shop")
    ready = condition(app, "Ready")
    assert ready["status"] == "False"
    assert ready["reason"] == "InvalidSpec"
    assert "spec.services[0].dependsOn" in ready["message"]
    assert "cycle" in ready["message"]
    wait_until(
        "a Warning event InvalidSpec",
        lambda: any(e["type"] == "Warning" and e["reason"] == "InvalidSpec" for e in events(kubectl, "shop")),
        timeout=15,
    )
    resource_version = app["metadata"]["resourceVersion"]
    time.sleep(5)
    assert kubectl.get(CHILD_KINDS, selector=MANAGED) == []
    assert kubectl.get("msa", "shop")["metadata"]["resourceVersion"] == resource_version  # no retry storm
    # Fixed, it goes ahead.
    kubectl.apply(msa("shop", svc("a", dependsOn=["b"]), svc("b")))
    app = wait_ready(kubectl, "shop")
    assert names(kubectl, "deployments") == {"shop-a", "shop-b"}
    assert condition(app, "Ready")["reason"] == "AllServicesReady"


def test_name_taken_by_a_foreign_object_is_reported_not_overwritten(
    kubectl: Kubectl, op: OperatorProcess
) -> None:
    kubectl("create", "deployment", "shop-web", "--image=registry.example.com/theirs:1")
    kubectl.apply(msa("shop", svc("web")))
    wait_until("the app to be Invalid", lambda: phase(kubectl, "shop") == "Invalid", timeout=30)
    ready = condition(kubectl.get("msa", "shop"), "Ready")
    assert ready["reason"] == "NameConflict"
    assert "spec.services[0].name" in ready["message"] and "Deployment shop-web" in ready["message"]
    theirs = kubectl.get("deployment", "shop-web")
    assert theirs["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example.com/theirs:1"
    assert not theirs["metadata"].get("ownerReferences")
    assert kubectl.get("service", "shop-web") is None


def test_a_name_taken_before_the_operator_started_is_not_overwritten(
    kubectl: Kubectl, op: OperatorProcess
) -> None:
    """The names held when the operator starts are listed before its watches run (childwatch.py, before kopf's watches):
    an app created right after the start still finds the name taken."""
    op.stop()
    kubectl("create", "service", "clusterip", "shop-web", "--tcp=80:8080")
    op.start()
    kubectl.apply(msa("shop", svc("web")))
    wait_until("the app to be Invalid", lambda: phase(kubectl, "shop") == "Invalid", timeout=30)
    assert condition(kubectl.get("msa", "shop"), "Ready")["reason"] == "NameConflict"
    assert not kubectl.get("service", "shop-web")["metadata"].get("ownerReferences")
    assert kubectl.get("deployment", "shop-web") is None, "nothing of the app is written"


def test_safety_pass_picks_up_what_no_watch_reports(kubectl: Kubectl, op: OperatorProcess) -> None:
    op.stop()
    op.extra_env["MAESTRO_SAFETY_INTERVAL"] = "2"
    op.start()
    kubectl("create", "deployment", "shop-web", "--image=registry.example.com/theirs:1")
    kubectl.apply(msa("shop", svc("web")))
    wait_until("the app to be Invalid", lambda: phase(kubectl, "shop") == "Invalid", timeout=30)
    # The foreign Deployment goes; Maestro does not watch it (not its label): only the safety pass sees it.
    kubectl("delete", "deployment", "shop-web")
    wait_until("the app to become Ready", lambda: phase(kubectl, "shop") == "Ready", timeout=30)
    assert kubectl.get("deployment", "shop-web")["metadata"]["ownerReferences"][0]["name"] == "shop"


def test_config_change_rolls_only_its_users(kubectl: Kubectl, op: OperatorProcess) -> None:
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-config"}, "data": {"a": "1"}}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "api-db"}, "stringData": {"pw": "1"}}
    kubectl.apply(config, secret)
    kubectl.apply(
        msa(
            "shop",
            svc("web", configFrom=[{"configMap": "web-config"}]),
            svc("api", configFrom=[{"secret": "api-db"}]),
            svc("docs"),
        )
    )
    wait_ready(kubectl, "shop")

    def template_hash(name: str) -> str | None:
        template = kubectl.get("deployment", name)["spec"]["template"]["metadata"]
        return (template.get("annotations") or {}).get("maestro.dev/config-hash")

    def generations() -> dict[str, int]:
        return {d["metadata"]["name"]: d["metadata"]["generation"] for d in kubectl.get("deployments")}

    web_hash, api_hash = template_hash("shop-web"), template_hash("shop-api")
    assert web_hash and api_hash and template_hash("shop-docs") is None
    before = generations()
    kubectl.apply(config | {"data": {"a": "2"}})
    wait_until(
        "shop-web's pods to roll", lambda: template_hash("shop-web") not in (None, web_hash), timeout=30
    )
    wait_ready(kubectl, "shop")
    after = generations()
    assert after["shop-web"] > before["shop-web"]
    assert (after["shop-api"], after["shop-docs"]) == (before["shop-api"], before["shop-docs"])
    kubectl.apply(secret | {"stringData": {"pw": "2"}})
    wait_until(
        "shop-api's pods to roll", lambda: template_hash("shop-api") not in (None, api_hash), timeout=30
    )
    wait_ready(kubectl, "shop")
    final = generations()
    assert (final["shop-web"], final["shop-docs"]) == (after["shop-web"], after["shop-docs"])


def test_changes_made_while_the_operator_is_down_are_caught_up(kubectl: Kubectl, op: OperatorProcess) -> None:
    kubectl.apply(msa("shop", svc("web")))
    wait_ready(kubectl, "shop")
    op.stop()
    kubectl("delete", "deployment", "shop-web")
    kubectl.apply(msa("shop", svc("web"), svc("api")))
    op.start()
    app = wait_ready(kubectl, "shop")
    assert names(kubectl, "deployments") == {"shop-web", "shop-api"}
    assert app["status"]["observedGeneration"] == app["metadata"]["generation"] == 2


def test_a_restart_passes_only_the_apps_changed_while_it_was_down(
    kubectl: Kubectl, op: OperatorProcess
) -> None:
    """The settled mark (settledmark.py) written on the real API server matches what the restarted operator
    lists: the untouched app gets no pass at all, the one whose child was deleted meanwhile gets its pass."""
    kubectl.apply(msa("shop", svc("web"), svc("api", autoscaling={"minReplicas": 1, "maxReplicas": 2})))
    kubectl.apply(msa("blog", svc("web")))

    def marked(name: str) -> bool:
        return bool(kubectl.get("msa", name)["status"].get("settledMark"))

    for name in ("shop", "blog"):
        wait_ready(kubectl, name)
        wait_until(f"{name}'s settled mark", lambda: marked(name), timeout=30)  # noqa: B023
    shop_before = kubectl.get("msa", "shop")["metadata"]["resourceVersion"]
    op.stop()
    kubectl("delete", "deployment", "blog-web")
    logged = len(op.log())
    op.start()
    wait_until("blog-web put back", lambda: "blog-web" in names(kubectl, "deployments"), timeout=60)
    wait_ready(kubectl, "blog")
    time.sleep(2)  # any pass over shop would have run by now: the start queues them all at once
    log = op.log()[logged:]
    done = [line for line in log.splitlines() if "pass done:" in line]
    assert any("/blog " in line for line in done), done
    assert not any("/shop " in line for line in done), done
    assert "/shop: settled as its mark says" in log
    assert kubectl.get("msa", "shop")["metadata"]["resourceVersion"] == shop_before
    # A spec change after the start is a pass as ever (the app is remembered as settled, not ignored).
    kubectl.apply(msa("shop", svc("web"), svc("api", autoscaling={"minReplicas": 1, "maxReplicas": 3})))
    wait_until(
        "the HPA's new bound", lambda: kubectl.get("hpa", "shop-api")["spec"]["maxReplicas"] == 3, timeout=30
    )


def test_steady_pass_writes_nothing(kubectl: Kubectl, op: OperatorProcess) -> None:
    kubectl.apply(
        msa("shop", svc("web", replicas=2), svc("api", autoscaling={"minReplicas": 2, "maxReplicas": 3}))
    )
    wait_ready(kubectl, "shop")
    time.sleep(3)  # let the controllers settle their own status writes

    def versions() -> dict[str, str]:
        objects = [
            kubectl.get("msa", "shop"),
            *kubectl.get("deployments,services,poddisruptionbudgets", selector=MANAGED),
        ]
        return {f"{o['kind']}/{o['metadata']['name']}": o["metadata"]["resourceVersion"] for o in objects}

    before = versions()
    passes = op.passes()
    # A label added by hand (a field Maestro does not own) is a child event: it triggers a full pass.
    kubectl("label", "hpa", "shop-api", "e2e-touch=1")
    wait_until("a pass after touching the HPA", lambda: op.passes() > passes, timeout=20)
    time.sleep(8)
    assert versions() == before
    # Not even a no-op request: the passes found every child in place and sent nothing.
    lines = [line for line in op.log().splitlines() if "pass done:" in line][passes:]
    assert lines and all(
        "writes=0 " in line and "status_written=False mark_written=False" in line for line in lines
    ), lines
    hpa = kubectl.get("hpa", "shop-api")
    assert hpa["metadata"]["labels"]["e2e-touch"] == "1"  # not Maestro's field: left alone


def test_deleting_the_app_removes_children_without_the_operator(
    kubectl: Kubectl, op: OperatorProcess
) -> None:
    kubectl.apply(msa("shop", svc("web")))
    app = wait_ready(kubectl, "shop")
    assert not app["metadata"].get("finalizers")
    op.stop()
    kubectl("delete", "msa", "shop", "--timeout=30s")
    wait_until(
        "the garbage collector to remove shop's children",
        lambda: kubectl.get(CHILD_KINDS, selector=MANAGED) == [],
        timeout=40,
    )
