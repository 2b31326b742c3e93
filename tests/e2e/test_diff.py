"""`maestro diff` on a real API server: what a user would see before `kubectl apply -f app.yaml`: the children's
diffs and the rollout plan, with kubectl diff's exit codes, and nothing written.

Run as the user runs it: `python -m maestro diff -f - -n <namespace>`, a subprocess against the test cluster's
kubeconfig. An app that exists was made Ready by the real operator (then stopped, so the cluster holds still
while the diff looks at it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e import operator_process
from tests.e2e.kubectl import Kubectl
from tests.e2e.test_operator import msa, svc, wait_ready

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]


def shop(**images: str) -> dict[str, Any]:
    """web -> api -> db; db reads the ConfigMap db-config. `images` overrides a service's image tag."""
    tag = {"web": "1.0.0", "api": "1.0.0", "db": "1.0.0"} | images
    return msa(
        "shop",
        svc("web", image=f"registry.example.com/web:{tag['web']}", dependsOn=["api"]),
        svc("api", image=f"registry.example.com/api:{tag['api']}", dependsOn=["db"]),
        svc("db", image=f"registry.example.com/db:{tag['db']}", configFrom=[{"configMap": "db-config"}]),
    )


def config_map(value: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "db-config"},
        "data": {"mode": value},
    }


def diff(
    namespace: str, *apps: dict[str, Any], json_output: bool = False
) -> subprocess.CompletedProcess[str]:
    """`maestro diff -f - -n <namespace> [-o json]`, the apps on stdin."""
    env = dict(os.environ)  # KUBECONFIG: the test cluster's (tests/conftest.py)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "operator"), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "maestro",
            "diff",
            "-f",
            "-",
            "-n",
            namespace,
            *(["-o", "json"] * json_output),
        ],
        input=yaml.safe_dump_all(apps),
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def plan_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The rollout plan's lines, stripped."""
    after = result.stdout.split("Rollout plan:\n", 1)[1]
    return [line.strip() for line in after.splitlines()]


@pytest.fixture
def ready_shop(test_cluster: object, crd: None, kubectl: Kubectl, tmp_path: Path) -> Iterator[Kubectl]:
    """shop made Ready by the operator, which is then stopped: the diff sees a settled app."""
    assert kubectl.namespace is not None
    kubectl.apply(config_map("fast"))
    op = operator_process.OperatorProcess(
        Path(os.environ["KUBECONFIG"]), kubectl.namespace, tmp_path / "op.log"
    )
    op.start()
    try:
        kubectl.apply(shop())
        wait_ready(kubectl, "shop", timeout=90)
    except BaseException:
        print(f"===== operator log =====\n{op.log()[-30000:]}")
        raise
    finally:
        op.stop()
    yield kubectl


def test_a_new_app_is_created_in_waves_and_nothing_is_written(crd: None, kubectl: Kubectl) -> None:
    assert kubectl.namespace is not None
    kubectl.apply(config_map("fast"))
    result = diff(kubectl.namespace, shop())
    assert result.returncode == 1, result.stderr
    assert "--- live Deployment/shop-db\n+++ desired Deployment/shop-db\n" in result.stdout
    assert "+        image: registry.example.com/db:1.0.0" in result.stdout
    assert (
        f"MicroserviceApp {kubectl.namespace}/shop (new): 9 to create" in result.stdout
    )  # per service: Deployment, Service, NetworkPolicy
    assert plan_lines(result)[:5] == [
        "wave 1  db   new",
        "wave 2  api  new",
        "wave 3  web  new",
        "api waits for db (rolls in wave 1)",
        "web waits for api (rolls in wave 2)",
    ]
    document = json.loads(diff(kubectl.namespace, shop(), json_output=True).stdout)
    [app] = document["apps"]
    assert {child["action"] for child in app["children"]} == {"create"}
    assert [(s["name"], s["reasons"], s["wave"]) for s in app["plan"]["services"]] == [
        ("db", ["new"], 1),
        ("api", ["new"], 2),
        ("web", ["new"], 3),
    ]
    assert kubectl.get("msa", "shop") is None
    assert kubectl.get("deployments") == []


def test_no_change_exits_0(ready_shop: Kubectl) -> None:
    assert ready_shop.namespace is not None
    result = diff(ready_shop.namespace, shop())
    assert (result.returncode, result.stdout) == (
        0,
        f"MicroserviceApp {ready_shop.namespace}/shop: no changes\n",
    )


def test_an_image_change_rolls_in_dependency_order(ready_shop: Kubectl) -> None:
    assert ready_shop.namespace is not None
    result = diff(ready_shop.namespace, shop(api="2.0.0", web="2.0.0"))
    assert result.returncode == 1, result.stderr
    assert (
        "-        image: registry.example.com/api:1.0.0\n+        image: registry.example.com/api:2.0.0"
        in (result.stdout)
    )
    assert "Deployment/shop-db" not in result.stdout.split("Rollout plan:")[0]  # db is unchanged
    assert plan_lines(result)[:3] == [
        "wave 1  api  image",
        "wave 2  web  image",
        "web waits for api (rolls in wave 1)",
    ]
    # the diff wrote nothing: the app and its Deployments are as they were
    assert ready_shop.get("deployment", "shop-api")["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "registry.example.com/api:1.0.0"
    )


def test_a_config_change_names_the_config(ready_shop: Kubectl) -> None:
    assert ready_shop.namespace is not None
    ready_shop.apply(config_map("safe"))
    result = diff(ready_shop.namespace, shop())
    assert result.returncode == 1, result.stderr
    assert "maestro.dev/config-hash" in result.stdout
    assert plan_lines(result)[0] == "wave 1  db  config (ConfigMap db-config)"
    document = json.loads(diff(ready_shop.namespace, shop(), json_output=True).stdout)
    changed = [
        (c["kind"], c["name"], c["action"])
        for c in document["apps"][0]["children"]
        if c["action"] != "unchanged"
    ]
    assert changed == [("Deployment", "shop-db", "update")]


def test_a_removed_service_is_pruned(ready_shop: Kubectl) -> None:
    assert ready_shop.namespace is not None
    without_web = shop()
    without_web["spec"]["services"] = without_web["spec"]["services"][1:]
    result = diff(ready_shop.namespace, without_web)
    assert result.returncode == 1, result.stderr
    assert "--- live Deployment/shop-web\n+++ desired Deployment/shop-web\n" in result.stdout
    assert "-  name: shop-web" in result.stdout
    lines = plan_lines(result)
    assert "prune: Deployment/shop-web, Service/shop-web, NetworkPolicy/shop-web" in lines
    # web depended on api: api's policy no longer lets it in
    assert "wave 1  api  other (no new pods)" in lines
    assert ready_shop.get("deployment", "shop-web") is not None


def test_an_invalid_app_gives_the_api_servers_field_error(crd: None, kubectl: Kubectl) -> None:
    assert kubectl.namespace is not None
    bad = msa("shop", svc("web", port=70000))
    result = diff(kubectl.namespace, bad)
    assert result.returncode == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert "spec.services[0].ports[0].port" in line and "65535" in line, line


def test_an_app_only_maestro_rejects_gives_its_field_errors(crd: None, kubectl: Kubectl) -> None:
    assert kubectl.namespace is not None
    cycle = msa("shop", svc("a", dependsOn=["b"]), svc("b", dependsOn=["a"]))
    result = diff(kubectl.namespace, cycle)
    assert result.returncode == 2
    assert result.stderr.startswith("maestro diff: spec.services[0].dependsOn: dependency cycle"), (
        result.stderr
    )
