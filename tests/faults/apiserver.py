"""Stopping and starting the test cluster's kube-apiserver, keeping its port, certificates and etcd data.

- the local control plane: `hack/cluster/cluster.py stop|start kube-apiserver`, then a restart of kwok (see
  `start`);
- a kind cluster (MAESTRO_TEST_KUBECONFIG with a `kind-<name>` context): the static pod's manifest is moved
  out of /etc/kubernetes/manifests in the `<name>-control-plane` container and back (the kubelet stops and
  starts the pod);
- any other cluster: the case is skipped, saying why. CI runs the local control plane, where nothing skips.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from tests.e2e import cluster as test_cluster_module
from tests.faults.client import Client

MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"
PARKED = "/etc/kubernetes/kube-apiserver.yaml.parked"


class ApiServer:
    def __init__(self, cluster: test_cluster_module.TestCluster, client: Client) -> None:
        self.client = client
        self.kind_container: str | None = None
        self.skip_reason: str | None = None
        if cluster.local:
            return
        context = yaml.safe_load(Path(cluster.kubeconfig).read_text()).get("current-context") or ""
        if context.startswith("kind-") and shutil.which("docker"):
            self.kind_container = f"{context.removeprefix('kind-')}-control-plane"
        else:
            self.skip_reason = (
                f"cannot stop this cluster's API server (context {context!r} is neither the local control "
                "plane nor kind with docker)"
            )

    def stop(self) -> None:
        if self.kind_container:
            self._docker("mv", MANIFEST, PARKED)
        else:
            self._script("stop", "kube-apiserver")
        self._wait(lambda: not self.client.ready(), "the API server to stop")

    def start(self) -> None:
        if self.kind_container:
            self._docker("mv", PARKED, MANIFEST)
        else:
            self._script("start", "kube-apiserver")
            # kwok, the simulated kubelet, drops a pod's stage on an error it does not retry and backs off the
            # ones it does up to 32 min, and never re-syncs: a pod caught mid-start by the outage may never be
            # Ready. A real kubelet re-reports its pods' status on its sync loop; a kwok restart re-lists them.
            self._script("restart", "kwok")
        self._wait(lambda: self.client.ready(), "the API server to be ready")

    def _docker(self, *argv: str) -> None:
        assert self.kind_container is not None
        subprocess.run(["docker", "exec", self.kind_container, *argv], check=True, capture_output=True)

    @staticmethod
    def _script(*args: str) -> None:
        result = test_cluster_module.cluster_script(*args)
        assert result.returncode == 0, result.stdout + result.stderr

    @staticmethod
    def _wait(check: Callable[[], bool], what: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
            time.sleep(0.5)
