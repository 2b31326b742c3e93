"""The operator with real pods: containers of the sample image (hack/images, docs/images.md) on the local
cluster's real node, in a namespace that enforces the `restricted` Pod Security level (the `real_namespace`
fixture, tests/conftest.py).

The rest of the suite runs on kwok's simulated nodes, where a pod is Running and Ready as soon as it is scheduled.
Here readiness probes, DNS, Services, CPU usage, crashes and restarts are real, and each test checks what a user
would: the sample service's own answers through the API server's service proxy (`/call`, `/info`, `/burn`).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RESTRICTED
from tests.e2e import operator_process
from tests.e2e.cluster import TestCluster
from tests.e2e.kubectl import Kubectl
from tests.e2e.operator_process import OperatorProcess
from tests.e2e.waits import condition_status, wait_until
from tests.faults.client import Client, Unreachable

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

# The sample image, under one of the names the cluster imports it as (`hack/images/images.py names`).
IMAGE = "registry.example.com/shop/catalog:1.4.2"
HTTP = [{"name": "http", "port": 80, "targetPort": 8080}]
SLOW = 120.0  # real pods start, probe and stop on a shared machine: more headroom than kwok's


@pytest.fixture
def namespace(real_namespace: str) -> str:
    """Every test of this module (its `kubectl`, its operator) in a real-node namespace."""
    return real_namespace


@pytest.fixture
def real_node(test_cluster: TestCluster) -> str | None:
    """The node the pods must run on: the local cluster's real node (elsewhere, e.g. kind, any node)."""
    return "real-node" if test_cluster.local else None


@pytest.fixture
def op(
    request: pytest.FixtureRequest, test_cluster: object, crd: None, namespace: str, tmp_path: Path
) -> Iterator[OperatorProcess]:
    yield from operator_process.running(request, namespace, tmp_path)


def msa(name: str, *services: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "maestro.dev/v1alpha1",
        "kind": "MicroserviceApp",
        "metadata": {"name": name},
        "spec": {"services": list(services)},
    }


def svc(name: str, *, env: dict[str, str] | None = None, **fields: Any) -> dict[str, Any]:
    """A service of the sample image on port 80 (container port 8080, named http)."""
    service: dict[str, Any] = {"name": name, "image": IMAGE, "ports": HTTP}
    if env:
        service["env"] = [{"name": key, "value": value} for key, value in env.items()]
    return service | fields


def app_status(kubectl: Kubectl, name: str) -> dict[str, Any]:
    app = kubectl.get("msa", name)
    return dict((app or {}).get("status") or {})


def service_status(kubectl: Kubectl, app: str, service: str) -> dict[str, Any]:
    services = app_status(kubectl, app).get("services") or []
    return next((dict(s) for s in services if s["name"] == service), {})


def wait_ready(kubectl: Kubectl, name: str) -> dict[str, Any]:
    """The app Ready at its current generation (the operator observed it, then said Ready)."""

    def ready() -> dict[str, Any] | None:
        app: dict[str, Any] | None = kubectl.get("msa", name)
        if not app or (app.get("status") or {}).get("observedGeneration") != app["metadata"]["generation"]:
            return None
        return app if condition_status(app, "Ready") == "True" else None

    return wait_until(f"msa/{name} to be Ready at its current generation", ready, timeout=SLOW)


def pods(kubectl: Kubectl, app: str, service: str) -> list[dict[str, Any]]:
    selector = f"app.kubernetes.io/instance={app},app.kubernetes.io/component={service}"
    found: list[dict[str, Any]] = kubectl.get("pods", selector=selector)
    return found


def pod_ready(pod: dict[str, Any]) -> bool:
    return condition_status(pod, "Ready") == "True"


def proxy(client: Client, namespace: str, service: str, path: str, **params: str) -> tuple[int, Any]:
    """GET a path of the sample service through the API server's service proxy (port `http`): its status and
    its answer (JSON when it is)."""
    url = f"/api/v1/namespaces/{namespace}/services/http:{service}:http/proxy/{path}"
    status, _, body = client.raw("GET", url, params=list(params.items()), timeout=70)
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode(errors="replace")


def proxy_ok(client: Client, namespace: str, service: str, path: str, **params: str) -> Any:
    """The answer of a GET that succeeds (200), for wait_until: None until then."""
    try:
        status, answer = proxy(client, namespace, service, path, **params)
    except Unreachable:
        return None
    return answer if status == 200 else None


def test_dependency_holds_its_dependent_until_ready_then_serves_it(
    kubectl: Kubectl, client: Client, real_node: str | None, op: OperatorProcess
) -> None:
    """db is unready for its first 8 s (READY_AFTER_SECONDS, probed on /readyz): web is not created until db's
    pod is Ready; then web reaches db's pod through the injected DB_URL (Service DNS, kube-proxy)."""
    db = svc(
        "db",
        env={"READY_AFTER_SECONDS": "8"},
        readinessProbe={"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 1},
    )
    kubectl.apply(msa("shop", db, svc("web", dependsOn=["db"])))

    def db_running_unready() -> dict[str, Any] | None:
        found = pods(kubectl, "shop", "db")
        statuses = [s for p in found for s in (p.get("status") or {}).get("containerStatuses") or []]
        running = bool(statuses) and all("running" in (s.get("state") or {}) for s in statuses)
        return found[0] if running and not any(pod_ready(p) for p in found) else None

    db_pod = wait_until("db's container to run, not ready yet", db_running_unready, timeout=SLOW)
    assert real_node in (None, db_pod["spec"]["nodeName"])
    # The container runs; its readiness probe fails for a few more seconds. The operator holds web meanwhile.
    web = wait_until(
        "the operator to report web Waiting",
        lambda: (s := service_status(kubectl, "shop", "web")).get("phase") == "Waiting" and s,
        timeout=30,
    )
    assert web["waitingFor"] == ["db"]
    assert not pod_ready(kubectl.get("pod", db_pod["metadata"]["name"])), "db got ready too soon to tell"
    assert kubectl.get("deployment", "shop-web") is None
    assert app_status(kubectl, "shop")["phase"] in ("Pending", "Progressing")

    wait_ready(kubectl, "shop")
    db_pod = kubectl.get("pod", db_pod["metadata"]["name"])
    became_ready = next(c for c in db_pod["status"]["conditions"] if c["type"] == "Ready")
    web_deployment = kubectl.get("deployment", "shop-web")
    assert web_deployment["metadata"]["creationTimestamp"] >= became_ready["lastTransitionTime"]
    started = db_pod["status"]["containerStatuses"][0]["state"]["running"]["startedAt"]
    assert became_ready["lastTransitionTime"] > started  # the probe, not the start, made it ready

    # web -> db for real: web's /call asks DB_URL's /info, and db's pod answers with its name.
    report = wait_until(
        "web's /call to reach db",
        lambda: (r := proxy_ok(client, kubectl.namespace or "", "shop-web", "call")) and r.get("ok") and r,
        timeout=60,
    )
    (web_pod,) = pods(kubectl, "shop", "web")
    assert report["name"] == web_pod["metadata"]["name"]
    call = report["calls"]["DB_URL"]
    assert (call["url"], call["ok"], call["status"]) == ("http://shop-db:80", True, 200)
    assert call["name"] == db_pod["metadata"]["name"]


@pytest.mark.parametrize("as_env", [True, False], ids=["configFrom-and-mounted", "mounted-only"])
def test_config_change_restarts_pods_with_the_new_values(
    kubectl: Kubectl, client: Client, op: OperatorProcess, as_env: bool
) -> None:
    """A ConfigMap of configFrom and mounted as files (CONFIG_DIR), or only mounted: a change rolls new pods,
    whose environment and files have the new value."""
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "web-config"},
        "data": {"GREETING": "hello"},
    }
    kubectl.apply(config)
    web = svc(
        "web",
        env={"CONFIG_DIR": "/etc/web"},
        **({"configFrom": [{"configMap": "web-config"}]} if as_env else {}),
        volumes=[{"name": "config", "configMap": {"name": "web-config"}}],
        volumeMounts=[{"name": "config", "mountPath": "/etc/web", "readOnly": True}],
        readinessProbe={"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 1},
    )
    kubectl.apply(msa("shop", web))
    wait_ready(kubectl, "shop")
    namespace = kubectl.namespace or ""
    before = {p["metadata"]["name"] for p in pods(kubectl, "shop", "web")}
    info = wait_until("web's /info", lambda: proxy_ok(client, namespace, "shop-web", "info"), timeout=60)
    assert info["name"] in before
    assert info["env"].get("GREETING") == ("hello" if as_env else None)
    assert info["config"] == {"/etc/web/GREETING": "hello"}

    kubectl.apply(config | {"data": {"GREETING": "bonjour"}})

    def new_pods_only() -> set[str] | None:
        found = pods(kubectl, "shop", "web")
        names = {p["metadata"]["name"] for p in found}
        fresh = not names & before and all(pod_ready(p) for p in found)
        return names if found and fresh else None

    after = wait_until("web's pods to be replaced by ready new ones", new_pods_only, timeout=SLOW)
    wait_ready(kubectl, "shop")
    info = wait_until(
        "a new pod to answer /info",
        lambda: (i := proxy_ok(client, namespace, "shop-web", "info")) and i["name"] in after and i,
        timeout=60,
    )
    if as_env:
        assert info["env"]["GREETING"] == "bonjour"  # the environment: only a new container has it
    assert info["config"] == {"/etc/web/GREETING": "bonjour"}


def test_rendered_pods_pass_restricted_pod_security(
    kubectl: Kubectl, cluster_kubectl: Kubectl, client: Client, real_node: str | None, op: OperatorProcess
) -> None:
    """The namespace enforces `restricted`: Maestro's pods, as rendered by default, are admitted and run (as
    the image's non-root user); a pod that loosens its security context is refused, and the operator says so."""
    labels = cluster_kubectl.get("namespace", kubectl.namespace)["metadata"]["labels"]
    assert RESTRICTED.items() <= labels.items()
    kubectl.apply(msa("shop", svc("web", replicas=2)))
    wait_ready(kubectl, "shop")
    found = pods(kubectl, "shop", "web")
    assert len(found) == 2 and all(p["status"]["phase"] == "Running" and pod_ready(p) for p in found)
    assert real_node is None or {p["spec"]["nodeName"] for p in found} == {real_node}
    spec = found[0]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = spec["containers"][0]["securityContext"]
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"]["drop"] == ["ALL"]
    info = wait_until(
        "web's /info", lambda: proxy_ok(client, kubectl.namespace or "", "shop-web", "info"), timeout=60
    )
    assert (info["uid"], info["gid"]) == (10001, 10001)

    # The enforcement is real: a service that allows privilege escalation gets no pod, and the app says why.
    loose = svc("loose", securityContext={"allowPrivilegeEscalation": True})
    kubectl.apply(msa("loose", loose))
    status = wait_until(
        "the loose app to be Degraded",
        lambda: (s := app_status(kubectl, "loose")).get("phase") == "Degraded" and s,
        timeout=SLOW,
    )
    message = next(c for c in status["conditions"] if c["type"] == "Degraded")["message"]
    assert "violates PodSecurity" in message and "allowPrivilegeEscalation" in message, message
    assert pods(kubectl, "loose", "loose") == []


@pytest.mark.timeout(420)  # its waits: the app, then the HPA up and down, 150 s each at most
def test_hpa_scales_real_pods_up_and_down_and_maestro_leaves_replicas_alone(
    kubectl: Kubectl, client: Client, op: OperatorProcess
) -> None:
    """CPU load (the sample's /burn, through the service proxy) makes the HPA scale web up; without load it
    scales back down (a short scale-down window, via `autoscaling.behavior`). All the while the operator writes
    nothing to the Deployment: only the HPA changes its replicas."""
    web = svc(
        "web",
        # Burning is capped by the limit (0.2 core, on a shared machine): 400 % of the request at full burn.
        resources={"requests": {"cpu": "50m"}, "limits": {"cpu": "200m"}},
        readinessProbe={"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 1},
        autoscaling={
            "minReplicas": 1,
            "maxReplicas": 3,
            "targetCPUUtilizationPercentage": 50,
            "behavior": {
                "scaleUp": {"stabilizationWindowSeconds": 0},
                "scaleDown": {
                    "stabilizationWindowSeconds": 0,
                    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 5}],
                },
            },
        },
    )
    kubectl.apply(msa("shop", web))
    wait_ready(kubectl, "shop")
    namespace = kubectl.namespace or ""
    deployment = client.get("Deployment", namespace, "shop-web")  # with its managedFields
    maestro = [m for m in deployment["metadata"]["managedFields"] if m["manager"] == "maestro"]  # type: ignore[index]
    assert maestro and all("f:replicas" not in m["fieldsV1"]["f:spec"] for m in maestro), maestro
    hpa = kubectl.get("hpa", "shop-web")
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 0
    passes = op.passes()

    # Every version of the Deployment from now on: only its replicas may change (the HPA's scale writes).
    seen: list[dict[str, Any]] = []
    stop_load, stop_recording = threading.Event(), threading.Event()

    def record() -> None:
        while not stop_recording.is_set():
            try:
                current = client.get("Deployment", namespace, "shop-web")
            except Unreachable:
                current = None
            version = current and current["metadata"]["resourceVersion"]
            if current and (not seen or version != seen[-1]["metadata"]["resourceVersion"]):
                seen.append(current)
            stop_recording.wait(0.5)

    def load() -> None:
        while not stop_load.is_set():
            try:
                proxy(client, namespace, "shop-web", "burn", ms="2000")
            except Unreachable:
                stop_load.wait(0.5)

    def explain() -> str:
        """Who set the replicas: the values seen, the HPA's status, the operator's passes since that wrote."""
        history = [d["spec"].get("replicas") for d in seen]
        lines = [line for line in op.log().splitlines() if "pass done:" in line][passes:]
        writing = [line for line in lines if " writes=0 " not in line][-5:]
        hpa_status = kubectl.get("hpa", "shop-web").get("status")
        return (
            f"replicas seen: {history}; the HPA's status: {hpa_status}; operator passes that wrote: {writing}"
        )

    def replicas() -> int:
        return int(kubectl.get("deployment", "shop-web")["spec"]["replicas"])

    recorder = threading.Thread(target=record)
    loaders = [threading.Thread(target=load) for _ in range(3)]
    for thread in [recorder, *loaders]:
        thread.start()
    try:
        peak = wait_until(
            "the HPA to scale web up under load",
            lambda: (r := replicas()) > 1 and r,
            timeout=150,
            describe=explain,
        )
        stop_load.set()
        wait_until(
            "the HPA to scale web back down to 1 without load",
            lambda: replicas() == 1,
            timeout=150,
            describe=explain,
        )
    finally:
        stop_load.set()
        stop_recording.set()
        for thread in [recorder, *loaders]:
            thread.join()
    # The recorder reads every 0.5 s and may have stopped just before the version that scaled down: read it once
    # more (the wait above saw it).
    last = client.get("Deployment", namespace, "shop-web")
    if last and (not seen or last["metadata"]["resourceVersion"] != seen[-1]["metadata"]["resourceVersion"]):
        seen.append(last)
    assert peak > 1
    history = [d["spec"].get("replicas") for d in seen]
    assert max(history) > 1 and history[-1] == 1, history

    def without_replicas(deployment: dict[str, Any]) -> dict[str, Any]:
        spec = dict(deployment["spec"])
        spec.pop("replicas", None)
        return spec

    assert all(without_replicas(d) == without_replicas(seen[0]) for d in seen), (
        "the Deployment's spec changed"
    )
    # Maestro never owns spec.replicas. (Nor does anyone else: a write through the scale subresource records an
    # owner only for a field someone owned before, and the API server's default of 1 has none.)
    for version in seen:
        managed = version["metadata"]["managedFields"]
        owners = [m["manager"] for m in managed if "f:replicas" in m["fieldsV1"].get("f:spec", {})]
        assert "maestro" not in owners, owners
    lines = [line for line in op.log().splitlines() if "pass done:" in line][passes:]
    assert lines, "no pass saw the scaling"
    assert all(" writes=0 " in line for line in lines), [line for line in lines if " writes=0 " not in line]
    wait_ready(kubectl, "shop")


def test_crashing_image_makes_the_app_degraded(kubectl: Kubectl, op: OperatorProcess) -> None:
    """A container that exits at start (FAIL_AT_START) crash-loops on the real node; once the rollout's short
    progress deadline passes, the service is Degraded and the app says why.

    The readiness probe matters: without one, the kubelet reports the container ready for the instant it runs,
    the Deployment counts as Available, its rollout complete, and no progress deadline ever passes (the
    operator then reports the service Progressing, 0/1 ready, for as long as it crash-loops)."""
    api = svc(
        "api",
        env={"FAIL_AT_START": "1"},
        readinessProbe={"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 1},
        rollout={"progressDeadlineSeconds": 10},
    )
    kubectl.apply(msa("shop", api, svc("web", dependsOn=["api"])))

    def crashed() -> dict[str, Any] | None:
        for pod in pods(kubectl, "shop", "api"):
            for container in (pod.get("status") or {}).get("containerStatuses") or []:
                last = (container.get("lastState") or {}).get("terminated") or {}
                ended = (container.get("state") or {}).get("terminated") or last
                if ended.get("exitCode") == 1:
                    return dict(ended)
        return None

    ended = wait_until("api's container to exit 1", crashed, timeout=SLOW)
    assert "FAIL_AT_START" in ended.get("message", ""), ended  # its termination log, read by the kubelet
    status = wait_until(
        "the app to be Degraded",
        lambda: (s := app_status(kubectl, "shop")).get("phase") == "Degraded" and s,
        timeout=SLOW,
    )
    conditions = {c["type"]: c for c in status["conditions"]}
    degraded = conditions["Degraded"]
    assert (degraded["status"], degraded["reason"]) == ("True", "RolloutFailed")
    assert "api: " in degraded["message"] and "progress" in degraded["message"], degraded
    assert "holding web" in degraded["message"], degraded
    assert (conditions["Ready"]["status"], conditions["Stalled"]["status"]) == ("False", "True")
    api = service_status(kubectl, "shop", "api")
    assert api["phase"] == "Degraded" and api["message"], api
    assert api.get("readyReplicas", 0) == 0
    assert kubectl.get("deployment", "shop-web") is None


def test_a_release_that_crashes_on_the_real_node_is_rolled_back(
    kubectl: Kubectl, client: Client, op: OperatorProcess
) -> None:
    """A new release of catalog whose container exits at start (FAIL_AT_START) crash-loops under the real
    kubelet's back-off: Maestro sees the restarts and returns catalog to the last Ready revision long before its
    progress deadline; web keeps reaching the old catalog."""
    probe = {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 1}
    catalog = svc("catalog", readinessProbe=probe)
    web = svc("web", dependsOn=["catalog"], readinessProbe=probe)
    kubectl.apply(msa("shop", catalog, web))
    good = wait_ready(kubectl, "shop")["status"]["lastGoodRevision"]
    broken = svc("catalog", env={"FAIL_AT_START": "1"}, readinessProbe=probe)
    kubectl.apply(msa("shop", broken, web))

    def rolled_back() -> dict[str, Any] | None:
        failure = app_status(kubectl, "shop").get("rolloutFailure") or {}
        return failure if failure.get("returned") is not None else None

    failure = wait_until("the release to be rolled back", rolled_back, timeout=SLOW + 60)
    assert (failure["service"], failure["returned"], failure["revision"]) == ("catalog", ["catalog"], good)
    # "3 restarts in 37 s, Error (exit code 1): FAIL_AT_START is set: ..." (CrashLoopBackOff while it waits)
    assert re.match(r"\d+ restarts in \d+ s, \w+ \(exit code 1\): FAIL_AT_START", failure["cause"]), failure
    deployment = kubectl.get("deployment", "shop-catalog")
    assert "env" not in deployment["spec"]["template"]["spec"]["containers"][0] or all(
        e["name"] != "FAIL_AT_START" for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    )
    assert kubectl.get("msa", "shop")["spec"]["services"][0]["env"] == [
        {"name": "FAIL_AT_START", "value": "1"}
    ]
    # The old catalog serves web all along (the rolling update kept its pod), and after.
    report = wait_until(
        "web's /call to reach catalog",
        lambda: (r := proxy_ok(client, kubectl.namespace or "", "shop-web", "call")) and r.get("ok") and r,
        timeout=60,
    )
    assert report["calls"]["CATALOG_URL"]["ok"] is True
    assert app_status(kubectl, "shop")["phase"] == "Degraded"


def test_a_config_change_that_breaks_the_service_is_rolled_back_with_its_old_configuration(
    kubectl: Kubectl, client: Client, op: OperatorProcess
) -> None:
    """catalog loads a snapshot of its ConfigMap (`configFrom[].snapshot`); the ConfigMap changed to
    FAIL_AT_START=1 makes a new copy and a crash loop; the rollback returns catalog to the old copy, so its pods
    run with the old configuration (their /info shows it) while the ConfigMap itself keeps the new data."""
    namespace = kubectl.namespace or ""
    settings = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "catalog-settings"}}
    kubectl.apply({**settings, "data": {"VERSION": "settings-1"}})
    probe = {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 1}
    catalog = svc(
        "catalog", readinessProbe=probe, configFrom=[{"configMap": "catalog-settings", "snapshot": True}]
    )
    kubectl.apply(msa("shop", catalog))
    wait_ready(kubectl, "shop")
    before = wait_until(
        "catalog's /info", lambda: proxy_ok(client, namespace, "shop-catalog", "info"), timeout=60
    )
    assert before["version"] == "settings-1"
    old_copy = kubectl.get("deployment", "shop-catalog")["spec"]["template"]["spec"]["containers"][0][
        "envFrom"
    ]
    kubectl.apply({**settings, "data": {"VERSION": "settings-2", "FAIL_AT_START": "1"}})

    def rolled_back() -> dict[str, Any] | None:
        failure = app_status(kubectl, "shop").get("rolloutFailure") or {}
        return failure if failure.get("returned") is not None else None

    failure = wait_until("the config change to be rolled back", rolled_back, timeout=SLOW + 60)
    assert failure["returned"] == ["catalog"]
    deployment = kubectl.get("deployment", "shop-catalog")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"] == old_copy
    copy_name = old_copy[0]["configMapRef"]["name"]
    assert kubectl.get("configmap", copy_name)["data"] == {"VERSION": "settings-1"}

    def old_config_serving() -> dict[str, Any] | None:
        info = proxy_ok(client, namespace, "shop-catalog", "info")
        return (
            info
            if info and info.get("version") == "settings-1" and "FAIL_AT_START" not in info["env"]
            else None
        )

    wait_until("catalog to serve with the old configuration", old_config_serving, timeout=SLOW)
    assert kubectl.get("configmap", "catalog-settings")["data"]["VERSION"] == "settings-2"  # never edited
