"""The `operator` fixture: the real operator (`python -m maestro run`) as a subprocess, watching only the
test's namespace, against the test cluster's kubeconfig. Its log goes to a file, printed when the test fails.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.e2e.waits import wait_until

ROOT = Path(__file__).resolve().parents[2]
STARTED_MARKER = "configure' succeeded"


def free_port() -> int:
    """A TCP port nobody listens on now: each operator serves its metrics on its own (tests run side by side)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class OperatorProcess:
    """One `maestro run --namespace NS --verbose` process; restartable within a test. Its metrics and probes
    are served on 127.0.0.1:`metrics_port`."""

    def __init__(
        self, kubeconfig: Path, namespace: str, log_path: Path, extra_args: Sequence[str] = ()
    ) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.extra_env: dict[str, str] = {}  # e.g. MAESTRO_SAFETY_INTERVAL, applied at the next start()
        self.extra_args = list(extra_args)  # e.g. --peering, from the next start()
        self.metrics_port = free_port()

    def start(self) -> None:
        env = dict(os.environ, KUBECONFIG=str(self.kubeconfig), PYTHONUNBUFFERED="1", **self.extra_env)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "operator"), env.get("PYTHONPATH")]))
        offset = self.log().count(STARTED_MARKER)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                *["-m", "maestro", "run", "--namespace", self.namespace, "--verbose"],
                *["--metrics-port", str(self.metrics_port), "--metrics-bind-address", "127.0.0.1"],
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
        )
        log.close()

        def started() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"the operator exited with {self.process.returncode}:\n{self.log()}")
            return self.log().count(STARTED_MARKER) > offset

        wait_until("the operator to start (its startup handler succeeded)", started, timeout=30)
        time.sleep(1.0)  # the watch streams open right after the startup handlers

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)  # kopf stops gracefully on SIGINT
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def send(self, signum: signal.Signals) -> None:
        """Send a signal and wait for the process to end (SIGKILL: at once; SIGTERM: kopf stops gracefully)."""
        assert self.process is not None
        self.process.send_signal(signum)
        self.process.wait(timeout=30)

    def freeze(self) -> None:
        """SIGSTOP: the process stays, its connections open, and does nothing until `thaw`."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def get(self, path: str) -> tuple[int, str]:
        """GET one of the operator's HTTP paths (/metrics, /healthz, /readyz): (status, body)."""
        url = f"http://127.0.0.1:{self.metrics_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def metric(self, name: str, **labels: str) -> float:
        """One sample of /metrics (0 when absent; with no labels given, the sum over all label values)."""
        from prometheus_client.parser import text_string_to_metric_families

        status, text = self.get("/metrics")
        assert status == 200, text
        total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and labels.items() <= sample.labels.items():
                    total += sample.value
        return total

    def kill(self) -> None:
        """SIGKILL: no cleanup, no graceful stop, as a crash or an OOM kill would end it."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.kill()
        self.process.wait(timeout=10)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def passes(self) -> int:
        """How many reconcile passes have finished (reconcile.py logs one debug line per pass)."""
        return self.log().count("pass done:")


def running(
    request: pytest.FixtureRequest, namespace: str, tmp_path: Path, kubeconfig: Path | None = None
) -> Iterator[OperatorProcess]:
    """Start the operator for the test's namespace (with the test cluster's admin kubeconfig unless another is
    given); stop it after, printing its log when the test failed."""
    kubeconfig = kubeconfig or Path(os.environ["KUBECONFIG"])
    proc = OperatorProcess(kubeconfig, namespace, tmp_path / "operator.log")
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            print(f"===== operator log ({proc.log_path}) =====")
            print(proc.log()[-60000:])


@pytest.fixture
def operator(
    request: pytest.FixtureRequest, test_cluster: object, crd: None, namespace: str, tmp_path: Path
) -> Iterator[OperatorProcess]:
    yield from running(request, namespace, tmp_path)
