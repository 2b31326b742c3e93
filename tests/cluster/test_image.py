"""The operator image: built from the Dockerfile by hack/image/image.py (`make image`; cached, so this is quick
after the first build), named for the chart, and run as the chart's pod runs it: imported into a containerd (a
private one, as a node's would take it), as user 10001, read-only root filesystem, no capabilities. Last, the
operator runs from the image against the test cluster with the chart's arguments and ServiceAccount token, and
makes an app Ready.

The chart's pods themselves (in-cluster config, probes through the kubelet, two replicas with peering) run on the
local cluster's real node in test_chart_in_cluster.py.

Needs root, debootstrap and buildah (the script installs them with apt-get when missing), containerd and runc.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.e2e.kubectl import Kubectl
from tests.e2e.operator_process import free_port
from tests.e2e.test_ha import peering_crds
from tests.e2e.test_install import EXAMPLE, Installed, helm, installed, service_account_kubeconfig
from tests.e2e.waits import wait_until
from tests.scripts import load_script

__all__ = ["helm", "installed", "peering_crds"]  # fixtures used here

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "hack" / "image" / "image.py"


@pytest.fixture(scope="module")
def script() -> ModuleType:
    return load_script("hack/image/image.py")


@pytest.fixture(scope="module")
def image(script: ModuleType) -> Any:
    if os.geteuid() != 0:
        pytest.fail("building the image needs root (debootstrap, rootful buildah): run the tests as root")
    return script.build()


@pytest.fixture(scope="module")
def containerd(script: ModuleType, image: Any) -> Iterator[Any]:
    with script.private_containerd() as daemon:
        daemon.ctr("images", "import", str(image.archive))
        yield daemon


def chart_deployment() -> dict[str, Any]:
    """The chart's Deployment with its default values (deploy/manifests/, kept equal to the chart by a unit test)."""
    docs = yaml.safe_load_all((ROOT / "deploy" / "manifests" / "maestro.yaml").read_text())
    (deployment,) = (d for d in docs if d and d["kind"] == "Deployment")
    return deployment  # type: ignore[no-any-return]


def test_the_image_is_named_for_the_chart_and_tagged_by_its_sources(script: ModuleType, image: Any) -> None:
    values = yaml.safe_load((ROOT / "deploy" / "helm" / "maestro" / "values.yaml").read_text())
    assert image.repository == values["image"]["repository"]
    version = script.package_version()
    assert image.tag.startswith(f"{version}-") and len(image.tag) == len(version) + 13
    assert image.archive.is_file() and image.archive.stat().st_size > 50_000_000

    # The cache: the same sources give the same image at once, and `path` names it without building.
    started = time.monotonic()
    assert script.build() == image
    assert time.monotonic() - started < 10
    path = subprocess.run([sys.executable, str(SCRIPT), "path", "--json"], capture_output=True, text=True)
    assert path.returncode == 0, path.stderr
    assert yaml.safe_load(path.stdout) == {
        "name": image.name,
        "repository": image.repository,
        "tag": image.tag,
        "archive": str(image.archive),
    }


def test_the_tag_follows_what_goes_into_the_build(
    script: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (*script.BUILD_INPUTS, "deploy/helm/maestro/values.yaml"):
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, target)
        else:
            shutil.copy(ROOT / name, target)
    monkeypatch.setattr(script, "ROOT", tmp_path)
    monkeypatch.setattr(script, "VALUES", tmp_path / "deploy/helm/maestro/values.yaml")
    first = script.planned().tag

    cache = tmp_path / "operator" / "maestro" / "__pycache__"
    cache.mkdir(exist_ok=True)
    (cache / "stray.cpython-311.pyc").write_bytes(b"not a source")
    assert script.planned().tag == first, "caches (kept out of the build context) do not change the tag"

    source = tmp_path / "operator" / "maestro" / "__init__.py"
    source.write_text(source.read_text() + "\n# changed\n")
    assert script.planned().tag != first
    source.write_text(source.read_text().removesuffix("\n# changed\n"))
    assert script.planned().tag == first

    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("EXPOSE 8080", "EXPOSE 8081"))
    second = script.planned().tag
    assert second != first

    # The archive carries the image's name: another repository in the chart is another archive.
    values = tmp_path / "deploy/helm/maestro/values.yaml"
    values.write_text(values.read_text().replace("ghcr.io/maestro-dev/maestro", "registry.example.com/m"))
    moved = script.planned()
    assert moved.name.startswith("registry.example.com/m:") and moved.tag != second


def test_the_image_config_is_what_the_chart_expects(containerd: Any, image: Any) -> None:
    config = containerd.image_config(image)
    pod = chart_deployment()["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert config["User"] == f"{pod['securityContext']['runAsUser']}:{pod['securityContext']['runAsGroup']}"
    assert config["User"] == "10001:10001"
    # The chart passes only args: they follow the image's entrypoint, and replace its CMD.
    assert "command" not in container
    assert config["Entrypoint"] == ["maestro"]
    assert config["Cmd"][0] == container["args"][0] == "run"
    (port,) = container["ports"]
    assert f"{port['containerPort']}/tcp" in config["ExposedPorts"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["PATH"].startswith("/opt/maestro/bin:")
    assert env["PYTHONDONTWRITEBYTECODE"] == "1", "the root filesystem is read-only: no bytecode written"


def test_the_operator_runs_from_the_image_as_the_chart_runs_it(
    script: ModuleType, containerd: Any, image: Any
) -> None:
    def run(*args: str, command: list[str] | None = None) -> subprocess.CompletedProcess[str]:
        return containerd.run_image(image, list(args), command=command)  # type: ignore[no-any-return]

    identity = run(command=["python3", "-c", "import os; print(os.getuid(), os.getgid())"])
    assert identity.stdout.split() == ["10001", "10001"], identity.stderr

    version = run("--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"maestro {script.package_version()}"

    help_ = run("run", "--help")
    assert help_.returncode == 0, help_.stderr
    assert "--peering" in help_.stdout and "--metrics-port" in help_.stdout

    # Every argument the chart's Deployment passes is one `maestro run` takes (argparse checks them in order,
    # values included, before it reaches --help).
    chart = run(*chart_deployment()["spec"]["template"]["spec"]["containers"][0]["args"], "--help")
    assert chart.returncode == 0, chart.stderr

    # The controls: a failure in the container is one here, and the root filesystem is read-only.
    wrong = run("run", "--no-such-flag")
    assert wrong.returncode == 2 and "unrecognized arguments" in wrong.stderr
    write = run(command=["python3", "-c", "open('/opt/maestro/x', 'w')"])
    assert write.returncode != 0 and "Read-only file system" in write.stderr

    # Small and honest: no pip in the operator's venv, no compiler in the image.
    pip = run(command=["/opt/maestro/bin/python", "-c", "import pip"])
    assert pip.returncode != 0 and "No module named 'pip'" in pip.stderr
    tools = run(
        command=[
            "python3",
            "-c",
            "import shutil; print([t for t in ('gcc', 'cc', 'make') if shutil.which(t)])",
        ]
    )
    assert tools.stdout.strip() == "[]", tools.stdout + tools.stderr
    # No caches: pip's (PIP_NO_CACHE_DIR in the build stage, and only the venv reaches the final one), apt's
    # downloaded packages and lists (removed from the base), nor the build context.
    caches = run(
        command=[
            "python3",
            "-c",
            "import glob, os; print(sorted(glob.glob('/root/.cache/*') + glob.glob('/var/cache/apt/archives/*.deb')"
            " + [p for p in glob.glob('/var/lib/apt/lists/*') if os.path.isfile(p)] + glob.glob('/src')"
            " + glob.glob('/tmp/*')))",
        ]
    )
    assert caches.returncode == 0 and caches.stdout.strip() == "[]", caches.stdout + caches.stderr


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError as error:
        return 0, str(error)


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_the_operator_from_the_image_makes_an_app_ready_with_the_charts_token(
    containerd: Any,
    image: Any,
    cluster_kubectl: Kubectl,
    installed: Installed,
    peering_crds: None,
    tmp_path: Path,
) -> None:
    # The chart's ServiceAccount token in a kubeconfig that user 10001 can read, mounted read-only.
    config_dir = tmp_path / "config"
    config_dir.mkdir(mode=0o755)
    config_dir.chmod(0o755)
    kubeconfig = service_account_kubeconfig(cluster_kubectl, installed, config_dir / "kubeconfig")
    kubeconfig.chmod(0o644)
    # The chart's arguments for this (namespaced) install, peering included; the metrics port is a free one,
    # since the container shares the host's network to reach the API server on 127.0.0.1.
    (deployment,) = (d for d in installed.docs if d["kind"] == "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    port = free_port()
    args = [f"--metrics-port={port}" if a.startswith("--metrics-port=") else a for a in container["args"]]
    assert f"--namespace={installed.namespace}" in args and "--peering=maestro" in args

    # The chart's volumes: its emptyDirs become tmpfs mounts (the rest of the root filesystem is read-only).
    pod = deployment["spec"]["template"]["spec"]
    empty_dirs = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
    options = [
        "--net-host",
        "--mount", f"type=bind,src={config_dir},dst=/var/run/maestro,options=rbind:ro",
        "--env", "KUBECONFIG=/var/run/maestro/kubeconfig",
    ]  # fmt: skip
    for mount in container.get("volumeMounts", []):
        assert mount["name"] in empty_dirs, f"a volume other than an emptyDir: {mount}"
        options += ["--mount", f"type=tmpfs,src=tmpfs,dst={mount['mountPath']},options=nosuid:nodev:size=16m"]

    name = f"maestro-e2e-{os.getpid()}"
    argv = containerd.run_argv(image, args, name=name, options=options)
    log_path = tmp_path / "operator.log"
    with log_path.open("w") as log_file:
        process = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        wait_until(
            "/readyz of the operator in the container",
            lambda: get(port, "/readyz")[0] == 200 or process.poll() is not None,
            describe=lambda: log_path.read_text()[-3000:],
        )
        assert process.poll() is None, log_path.read_text()[-5000:]
        kubectl = cluster_kubectl.in_namespace(installed.namespace)
        kubectl("apply", "-f", str(EXAMPLE))
        app = yaml.safe_load(EXAMPLE.read_text())["metadata"]["name"]
        kubectl("wait", "--for=condition=Ready", f"msa/{app}", "--timeout=120s")
        assert kubectl.get("deployment", f"{app}-web")
        status, metrics = get(port, "/metrics")
        assert status == 200 and "maestro_leader 1.0" in metrics, metrics[-2000:]
        log = log_path.read_text()
        assert "Forbidden" not in log and "Read-only file system" not in log, log[-5000:]

        # A graceful stop, as the kubelet's SIGTERM: kopf stops and removes its peering record.
        containerd.ctr("task", "kill", "--signal", "SIGTERM", name)
        assert process.wait(timeout=60) == 0, log_path.read_text()[-5000:]
    except BaseException:
        print(f"===== operator log ({log_path}) =====")
        print(log_path.read_text()[-60000:])
        raise
    finally:
        if process.poll() is None:
            containerd.ctr("task", "kill", "--signal", "SIGKILL", name, check=False)
            process.wait(timeout=30)
        containerd.ctr("container", "delete", name, check=False)
