"""The images of hack/images/images.py in a real containerd: imported under every default name, and run with
`ctr run` (runc) as a node would run them. A private containerd (its own root, state and socket under a temporary
directory, no CRI plugin) is started for the module and stopped after it. containerd is installed from Debian's
packages when missing; it needs root.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "hack" / "images" / "images.py"

sys.path.insert(0, str(ROOT / "hack"))
import debian  # noqa: E402  (hack/debian.py: the host's Debian packages, as the cluster's real node gets them)

# Installed here, not checked at collection: on a fresh machine nothing has installed containerd yet when pytest
# collects (the first real node installs it later), and a skip there read as a pass in CI.
CONTAINERD_TOOLS = {"containerd": "containerd", "ctr": "containerd", "runc": "runc"}


def write_config(directory: Path) -> Path:
    config = directory / "config.toml"
    config.write_text(
        "version = 2\n"
        f'root = "{directory / "root"}"\n'
        f'state = "{directory / "state"}"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{directory / "containerd.sock"}"\n'
        f'[ttrpc]\n  address = "{directory / "containerd.sock.ttrpc"}"\n'
        f'[plugins."io.containerd.internal.v1.opt"]\n  path = "{directory / "opt"}"\n'
    )
    return config


def wait_until(what: str, check: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture(scope="module")
def containerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The socket of a private containerd (installed with apt-get when missing), stopped (and its tasks killed)
    after the module."""
    if os.geteuid() != 0:
        pytest.fail("these tests run containerd, which needs root")
    try:
        debian.need(CONTAINERD_TOOLS, print, "tests/cluster/test_images.py")
    except SystemExit as missing:
        pytest.fail(str(missing))
    directory = tmp_path_factory.mktemp("containerd")
    sock = directory / "containerd.sock"
    log = (directory / "containerd.log").open("wb")
    process = subprocess.Popen(
        ["containerd", "--config", str(write_config(directory))], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_until("containerd to serve", lambda: ctr(sock, "version", check=False).returncode == 0)
        yield sock
    finally:
        for task in ctr(sock, "tasks", "ls", "-q", check=False).stdout.split():
            ctr(sock, "tasks", "kill", "--signal", "SIGKILL", task, check=False)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def ctr(sock: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["ctr", "--address", str(sock), "--namespace", "k8s.io", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check:
        assert result.returncode == 0, f"ctr {' '.join(args)}: {result.stderr}"
    return result


@pytest.fixture(scope="module")
def imported(containerd: Path) -> Path:
    """Every default name imported with the script's CLI, as hack/cluster/cluster.py would."""
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "import", "--address", str(containerd)],
        capture_output=True,
        text=True,
        timeout=900,  # builds the binaries when they are not cached yet
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return containerd


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http(method: str, url: str) -> tuple[int, str]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def reachable(url: str) -> bool:
    try:
        http("GET", url)
    except OSError:
        return False
    return True


def run(sock: Path, image: str, *flags: str) -> tuple[str, subprocess.Popen[str]]:
    """`ctr run --rm --net-host` in the background; the container's id and the ctr process."""
    container = f"maestro-test-{secrets.token_hex(3)}"
    command = ["ctr", "--address", str(sock), "--namespace", "k8s.io", "run", "--rm", "--net-host"]
    process = subprocess.Popen(
        [*command, *flags, image, container], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    return container, process


def finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    output, _ = process.communicate(timeout=30)
    return process.returncode, output


def test_every_default_name_is_imported(imported: Path) -> None:
    names = subprocess.run(
        [sys.executable, str(SCRIPT), "names"], capture_output=True, text=True, check=True
    ).stdout.split()
    listed = set(ctr(imported, "images", "ls", "--quiet").stdout.split())
    assert set(names) <= listed
    checked = ctr(imported, "images", "check").stdout
    for line in checked.splitlines()[1:]:
        assert line.split()[-1] == "true", f"not unpacked: {line}"


def test_sample_image_serves_as_user_10001_and_stops_on_sigterm(imported: Path, tmp_path: Path) -> None:
    (tmp_path / "greeting").write_text("hello\n")
    tmp_path.chmod(0o755)  # pytest makes it 0700; the container runs as user 10001
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    container, process = run(
        imported,
        "registry.example.com/shop/catalog:1.4.2",
        f"--env=PORT={port}",
        "--env=LISTEN_PORTS=",  # the image's example ports would be the host's here (--net-host)
        "--env=SERVICE_NAME=catalog",
        "--env=VERSION=1.4.2",
        "--env=CONFIG_DIR=/config",
        f"--mount=type=bind,src={tmp_path},dst=/config,options=rbind:ro",
    )
    try:
        wait_until("the sample service to answer", lambda: reachable(f"{base}/healthz"))
        assert http("GET", f"{base}/healthz") == (200, "ok\n")
        status, body = http("GET", f"{base}/info")
        info = json.loads(body)
        assert status == 200
        assert (info["name"], info["version"], info["uid"], info["gid"]) == ("catalog", "1.4.2", 10001, 10001)
        assert info["config"] == {"/config/greeting": "hello\n"}
        assert info["ports"] == [port]
        assert http("POST", f"{base}/unready")[0] == 503
        assert http("GET", f"{base}/healthz")[0] == 503
    finally:
        ctr(imported, "tasks", "kill", "--signal", "SIGTERM", container, check=False)
        code, output = finish(process)
    assert code == 0, output
    assert "GET /info 200" in output and "stopped on a signal" in output


def test_sample_image_crashes_with_status_1(imported: Path) -> None:
    _, process = run(
        imported, "maestro.local/sample:1", f"--env=PORT={free_port()}", "--env=LISTEN_PORTS=",
        "--env=CRASH_AFTER_SECONDS=0.5",
    )  # fmt: skip
    code, output = finish(process)
    assert code == 1, output
    assert "CRASH_AFTER_SECONDS" in output


def test_pause_image_runs_until_sigterm(imported: Path) -> None:
    container, process = run(imported, "maestro.local/pause:1")
    try:
        wait_until(
            "the pause task to run",
            lambda: "RUNNING" in ctr(imported, "tasks", "ls", check=False).stdout.split(container)[-1][:40],
        )
        assert process.poll() is None, "pause keeps running"
    finally:
        ctr(imported, "tasks", "kill", "--signal", "SIGTERM", container, check=False)
        code, output = finish(process)
    assert code == 0, output
