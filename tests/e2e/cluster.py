"""Which cluster the e2e suite talks to, and how to reach it.

The suite never uses the ambient kube context. It uses the kubeconfig named in MAESTRO_TEST_KUBECONFIG (for
example a kind cluster made from kind-config.yaml); without it, it brings up the project's own local control
plane (hack/cluster/cluster.py, cluster name `maestro-test`, or MAESTRO_TEST_CLUSTER_NAME so that two checkouts
can test side by side) for the session and stops it afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_SCRIPT = ROOT / "hack" / "cluster" / "cluster.py"
LOCAL_CLUSTER_NAME = os.environ.get("MAESTRO_TEST_CLUSTER_NAME", "maestro-test")


@dataclass(frozen=True)
class TestCluster:
    __test__ = False  # a fixture's value, not a test class

    kubeconfig: Path
    kubectl: str  # path of the kubectl binary to use
    local: bool  # True when it is the project's own control plane (kwok nodes)
    started_here: bool  # True when this session started it and must stop it


def cluster_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CLUSTER_SCRIPT), f"--name={LOCAL_CLUSTER_NAME}", *args],
        text=True,
        capture_output=True,
    )


def local_bin_dir() -> Path:
    return Path(cluster_script("bin-dir").stdout.strip())


def acquire() -> TestCluster:
    explicit = os.environ.get("MAESTRO_TEST_KUBECONFIG")
    if explicit:
        path = Path(explicit).expanduser().resolve()
        if not path.is_file():
            raise RuntimeError(f"MAESTRO_TEST_KUBECONFIG={explicit} is not a file")
        kubectl = shutil.which("kubectl")
        if kubectl is None:
            raise RuntimeError("MAESTRO_TEST_KUBECONFIG is set but kubectl is not on PATH")
        return TestCluster(kubeconfig=path, kubectl=kubectl, local=False, started_here=False)

    already_running = cluster_script("status").returncode == 0
    if not already_running:
        # Streams its progress to the terminal: the first build takes many minutes.
        subprocess.run(
            [sys.executable, str(CLUSTER_SCRIPT), f"--name={LOCAL_CLUSTER_NAME}", "up"], check=True
        )
    kubeconfig = Path(cluster_script("env").stdout.split("\n")[0].removeprefix("export KUBECONFIG="))
    return TestCluster(
        kubeconfig=kubeconfig,
        kubectl=str(local_bin_dir() / "kubectl"),
        local=True,
        started_here=not already_running,
    )


def release(cluster: TestCluster) -> None:
    if cluster.started_here and not os.environ.get("MAESTRO_KEEP_CLUSTER"):
        subprocess.run(
            [sys.executable, str(CLUSTER_SCRIPT), f"--name={LOCAL_CLUSTER_NAME}", "down"], check=False
        )
