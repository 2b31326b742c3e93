"""`maestro status` on a real API server with the operator running: the tree of a Ready app, `--watch` followed
through real rollouts (exit 0 when Ready, 1 when Degraded or Invalid), an app that does not exist (exit 2), and
the same command run by the real kubectl as its plugin `kubectl maestro`.

The command runs as a user runs it: a subprocess, its output piped (so plain text, a block per change).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from maestro.render import kinds
from tests.e2e import operator_process
from tests.e2e.kubectl import Kubectl
from tests.e2e.operator_process import OperatorProcess
from tests.e2e.waits import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]

ROOT = Path(__file__).resolve().parents[2]
MANAGED = "app.kubernetes.io/managed-by=maestro"


@pytest.fixture
def op(
    request: pytest.FixtureRequest, test_cluster: object, crd: None, namespace: str, tmp_path: Path
) -> Iterator[OperatorProcess]:
    yield from operator_process.running(request, namespace, tmp_path)


def msa(*services: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "maestro.dev/v1alpha1",
        "kind": "MicroserviceApp",
        "metadata": {"name": "shop"},
        "spec": {"services": list(services)},
    }


def svc(name: str, version: str = "1.0.0", **fields: Any) -> dict[str, Any]:
    service = {"name": name, "image": f"registry.example.com/{name}:{version}"}
    return service | {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]} | fields


def shop(version: str = "1.0.0") -> dict[str, Any]:
    """catalog (autoscaled: every child kind) and web, which depends on it."""
    return msa(
        svc("catalog", autoscaling={"minReplicas": 2, "maxReplicas": 4}),
        svc("web", version, replicas=2, dependsOn=["catalog"]),
    )


def maestro(*args: str, timeout: float = 100) -> subprocess.CompletedProcess[str]:
    """`maestro ARGS` as a subprocess with piped output, against the test cluster (KUBECONFIG)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "operator"))
    env.pop("NO_COLOR", None)
    result = subprocess.run(
        [sys.executable, "-m", "maestro", *args], capture_output=True, text=True, timeout=timeout, env=env
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert "\x1b[" not in result.stdout  # piped: no colour, no screen clearing
    return result


def blocks(output: str) -> list[str]:
    """The views `--watch` printed (piped: one block per change, a blank line after each)."""
    return [block for block in output.split("\n\n") if block.strip()]


def wait_ready(kubectl: Kubectl) -> None:
    def observed() -> bool:
        app = kubectl.get("msa", "shop")
        return (
            bool(app) and (app.get("status") or {}).get("observedGeneration") == app["metadata"]["generation"]
        )

    wait_until("the operator to observe msa/shop", observed, timeout=60)
    kubectl("wait", "--for=condition=Ready", "--timeout=60s", "msa/shop")


def test_status_of_a_ready_app_shows_every_child(kubectl: Kubectl, op: OperatorProcess) -> None:
    kubectl.apply(shop())
    wait_ready(kubectl)
    result = maestro("status", "shop", "-n", str(kubectl.namespace))
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.startswith("shop  Ready  2/2 services ready  generation 1\n"), text
    assert f"├─ catalog  Ready  http://shop-catalog.{kubectl.namespace}.svc:80" in text
    assert "image registry.example.com/web:1.0.0" in text
    children = {
        (kind, child["metadata"]["name"])
        for kind in kinds.KIND_NAMES
        for child in kubectl.get(kind, selector=MANAGED)
    }
    assert len(children) == 9  # catalog: the five kinds of a service without a route; web: no autoscaler
    for kind, name in children:
        assert f"─ {kind}/{name}  " in text, f"{kind}/{name} missing from:\n{text}"
    assert all(len(line) <= 80 for line in text.splitlines()), text

    as_json = maestro("status", "shop", "-n", str(kubectl.namespace), "-o", "json")
    tree = json.loads(as_json.stdout)
    assert (tree["phase"], tree["readyServices"], tree["current"]) == ("Ready", "2/2", True)
    assert [s["name"] for s in tree["services"]] == ["catalog", "web"]
    assert {(c["kind"], c["name"]) for s in tree["services"] for c in s["children"]} == children
    as_yaml = yaml.safe_load(maestro("status", "shop", "-n", str(kubectl.namespace), "-o", "yaml").stdout)
    assert [s["name"] for s in as_yaml["services"]] == ["catalog", "web"]


def test_watch_follows_a_rollout_until_ready(kubectl: Kubectl, op: OperatorProcess, tmp_path: Path) -> None:
    namespace = str(kubectl.namespace)
    kubectl.apply(shop())
    result = maestro("status", "shop", "-n", namespace, "--watch", "--timeout", "80")
    assert result.returncode == 0, result.stdout + result.stderr
    assert blocks(result.stdout)[-1].startswith("shop  Ready  2/2 services ready  generation 1\n")

    # Both change; catalog's new pods cannot schedule, so its rollout stalls and web waits for it.
    stuck = svc("catalog", "2.0.0", scheduling={"nodeSelector": {"maestro.dev/e2e": "nowhere"}})
    kubectl.apply(msa(stuck, svc("web", "2.0.0", replicas=2, dependsOn=["catalog"])))
    output = tmp_path / "watch.out"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "operator"))
    argv = [sys.executable, "-m", "maestro", "status", "shop", "-n", namespace, "--watch", "--timeout", "80"]
    with output.open("w") as stdout:
        watch = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE, text=True, env=env)
    try:
        wait_until(
            "the watch to show web waiting for catalog",
            lambda: "└─ web  Waiting for catalog" in output.read_text(),
            timeout=40,
        )
        assert watch.poll() is None  # still watching: the app is not Ready
        kubectl.apply(msa(svc("catalog", "2.0.0"), svc("web", "2.0.0", replicas=2, dependsOn=["catalog"])))
        _, stderr = watch.communicate(timeout=80)
    finally:
        watch.kill()
    assert watch.returncode == 0, output.read_text() + stderr
    views = blocks(output.read_text())
    waiting = next(view for view in views if "└─ web  Waiting for catalog" in view)
    assert "├─ catalog  Progressing" in waiting and waiting.endswith("1 rolling, 1 waiting")
    assert all(a != b for a, b in itertools.pairwise(views))  # piped: a block only on a change
    last = views[-1]
    assert last.startswith("shop  Ready  2/2 services ready  generation 3\n"), last
    assert (
        "image registry.example.com/catalog:2.0.0" in last and "image registry.example.com/web:2.0.0" in last
    )
    assert last.endswith("2/2 services ready")  # the progress line


def test_watch_of_a_failed_rollout_exits_1_and_says_why(kubectl: Kubectl, op: OperatorProcess) -> None:
    namespace = str(kubectl.namespace)
    # catalog cannot schedule (no node has that label) and gives up quickly; web waits for it.
    stuck = svc(
        "catalog",
        scheduling={"nodeSelector": {"maestro.dev/e2e": "nowhere"}},
        rollout={"progressDeadlineSeconds": 5},
    )
    kubectl.apply(msa(stuck, svc("web", dependsOn=["catalog"])))
    result = maestro("status", "shop", "-n", namespace, "--watch", "--timeout", "80")
    assert result.returncode == 1, result.stdout + result.stderr
    last = blocks(result.stdout)[-1]
    assert last.startswith("shop  Degraded"), result.stdout
    assert "├─ catalog  Degraded" in last
    assert "└─ web  Waiting for catalog" in last
    assert "progress" in last  # the Deployment's ProgressDeadlineExceeded message, under it
    assert last.endswith("0/2 services ready, 1 waiting, 1 failed")

    # The Warning Event goes out with the status write; once it is there, status shows it.
    def warned() -> bool:
        return "RolloutFailed" in maestro("status", "shop", "-n", namespace).stdout

    wait_until("status to show the RolloutFailed event", warned, timeout=20)
    assert "Warning events:\n  RolloutFailed" in maestro("status", "shop", "-n", namespace).stdout


def test_watch_of_an_invalid_app_exits_1_at_once(kubectl: Kubectl, op: OperatorProcess) -> None:
    kubectl.apply(msa(svc("a", dependsOn=["b"]), svc("b", dependsOn=["a"])))
    result = maestro("status", "shop", "-n", str(kubectl.namespace), "--watch", "--timeout", "60")
    assert result.returncode == 1, result.stdout + result.stderr
    last = blocks(result.stdout)[-1]
    assert last.startswith("shop  Invalid  generation 1\n  spec.services[0].dependsOn"), last
    assert "cycle" in last and last.endswith("the spec is invalid")


def test_status_of_a_missing_app_exits_2(kubectl: Kubectl, crd: None) -> None:
    for extra in ([], ["--watch"]):
        result = maestro("status", "nothing", "-n", str(kubectl.namespace), *extra)
        assert result.returncode == 2
        assert result.stdout == ""
        assert result.stderr == (
            f"maestro status: MicroserviceApp 'nothing' not found in namespace '{kubectl.namespace}'\n"
        )


def plugin_dir(tmp_path: Path) -> Path:
    """A directory holding a `kubectl-maestro` executable like the one `pip install` (make setup) writes for
    the project's [project.scripts] entry: this Python, importing this checkout's maestro."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "kubectl-maestro"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT / 'operator')!r})\n"
        "from maestro.cli.main import main\n"
        "sys.exit(main())\n"
    )
    script.chmod(0o755)
    return bin_dir


def test_kubectl_plugin(kubectl: Kubectl, op: OperatorProcess, tmp_path: Path) -> None:
    kubectl.apply(shop())
    wait_ready(kubectl)
    env = dict(os.environ, PATH=f"{plugin_dir(tmp_path)}{os.pathsep}{os.environ['PATH']}")
    env.pop("KUBECONFIG", None)  # the flags alone name the cluster: kubectl passes them through
    context = kubectl("config", "current-context").strip()

    def plugin(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [kubectl.binary, "maestro", *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)

    listed = subprocess.run([kubectl.binary, "plugin", "list"], capture_output=True, text=True, env=env)
    assert "kubectl-maestro" in listed.stdout, listed.stdout + listed.stderr
    flags = ["-n", str(kubectl.namespace), "--context", context, "--kubeconfig", str(kubectl.kubeconfig)]
    result = plugin("status", "shop", *flags)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("shop  Ready  2/2 services ready"), result.stdout
    assert "Deployment/shop-web" in result.stdout
    usage = plugin("status")  # NAME missing: argparse's usage names the program as the user typed it
    assert usage.returncode == 2
    assert usage.stderr.startswith("usage: kubectl maestro status "), usage.stderr
