"""The local control plane's own lifecycle: `up` twice is harmless, `down` leaves no process and no state.

It starts a second, small cluster beside the suite's, so it needs the Go-built binaries (not kind).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "hack" / "cluster" / "cluster.py"
NAME = "maestro-lifecycle"


def script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), f"--name={NAME}", *args], capture_output=True, text=True, timeout=600
    )


def pids(state: Path) -> dict[str, int]:
    return {p.name: int(p.read_text()) for p in (state / "pids").iterdir()}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


CONTROL_PLANE = {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}
REAL_NODE = {"containerd", "kubelet", "kube-proxy", "coredns", "metrics-server", "kube-router"}
# What kube-router programs: chains and rules in the filter table, and ipsets (one per policy's peers).
POLICY_CHAINS = ("KUBE-ROUTER-", "KUBE-NWPLCY-", "KUBE-POD-FW-")
KUBELET_SYSCTLS = ("kernel/panic", "kernel/panic_on_oops", "vm/overcommit_memory")


def host_settings() -> dict[str, object]:
    """What this cluster's real node may change on the host, and `down` must put back. Its link and routes are
    checked by slot (`this_node_is_gone`); other clusters running on the machine do not count."""
    return {
        "netns": Path(f"/run/netns/maestro-{NAME}").exists(),
        "cgroups": sorted(str(p) for p in Path("/sys/fs/cgroup").glob(f"*/maestro-{NAME}")),
        "mounts": [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if NAME in line],
        "ip_forward": Path("/proc/sys/net/ipv4/ip_forward").read_text(),
        "policy_rules": policy_rules([]),
        "ipsets": ipsets([]),
    }


def policy_rules(inside: list[str]) -> list[str]:
    """kube-router's lines of the filter table, on the host or (with `inside`, an nsenter) in the node."""
    saved = subprocess.run([*inside, "iptables-save", "-t", "filter"], capture_output=True, text=True)
    return [line for line in saved.stdout.splitlines() if any(chain in line for chain in POLICY_CHAINS)]


def ipsets(inside: list[str]) -> list[str]:
    listed = subprocess.run([*inside, "ipset", "list", "-n"], capture_output=True, text=True)
    return sorted(listed.stdout.split())


def kubelet_sysctls() -> dict[str, str]:
    return {key: (Path("/proc/sys") / key).read_text() for key in KUBELET_SYSCTLS}


def real_nodes_running() -> bool:
    return any(p.name.startswith("mst") for p in Path("/sys/class/net").iterdir())


def this_node_is_gone(slot: int) -> bool:
    routes = subprocess.run(["ip", "route"], capture_output=True, text=True, check=True).stdout
    return not Path(f"/sys/class/net/mst{slot}h").exists() and f"dev mst{slot}h" not in routes


def assert_pods_reach_nothing_off_the_machine(state: Path) -> None:
    """Pods route through the node's namespace, which has no default route: any address off this machine, and
    kwok's fake pod IPs, are unreachable; the host's own address for the node is reachable."""
    inside = ["nsenter", f"--net=/run/netns/maestro-{NAME}", "ip", "route", "get"]
    for address in ("8.8.8.8", "192.0.2.1", "10.244.0.5"):
        result = subprocess.run([*inside, address], capture_output=True, text=True)
        assert result.returncode != 0, f"{address} is routable from the node: {result.stdout}"
    network = json.loads((state / "node" / "network.json").read_text())
    assert subprocess.run([*inside, f"10.201.{network['slot']}.1"], capture_output=True).returncode == 0


def test_up_is_idempotent_and_down_stops_everything() -> None:
    """With no simulated node (`--nodes 0`), and as root with the real node, whose host changes `down` undoes."""
    before = host_settings()
    sysctls_before = None if real_nodes_running() else kubelet_sysctls()
    first = script("up", "--nodes=0")
    assert first.returncode == 0, first.stdout + first.stderr
    kubeconfig = Path(script("env").stdout.split("\n")[0].removeprefix("export KUBECONFIG="))
    state = kubeconfig.parent
    real = os.geteuid() == 0
    try:
        started = pids(state)
        assert set(started) == CONTROL_PLANE | (REAL_NODE if real else set())
        assert all(alive(pid) for pid in started.values())
        if real:
            assert host_settings() != before, "the real node runs in a network namespace of its own"
            slot = int(json.loads((state / "node" / "network.json").read_text())["slot"])
            assert not this_node_is_gone(slot)
            assert_pods_reach_nothing_off_the_machine(state)
            # kube-router programs the node's namespace, never the host's tables.
            inside = ["nsenter", f"--net=/run/netns/maestro-{NAME}"]
            assert any("-j KUBE-ROUTER-FORWARD" in line for line in policy_rules(inside))
            assert (policy_rules([]), ipsets([])) == (before["policy_rules"], before["ipsets"])

        second = script("up", "--nodes=0")
        assert second.returncode == 0, second.stdout + second.stderr
        assert "already running" in second.stdout
        assert pids(state) == started, "a second `up` starts nothing new"
        assert script("status").returncode == 0

        kubectl = Path(script("bin-dir").stdout.strip()) / "kubectl"
        nodes = json.loads(
            subprocess.run(
                [str(kubectl), f"--kubeconfig={kubeconfig}", "get", "nodes", "-o", "json"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        assert [n["metadata"]["name"] for n in nodes["items"]] == (["real-node"] if real else [])
    finally:
        stopped = script("down")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert not [name for name, pid in started.items() if alive(pid)], "every process is gone after down"
    assert not state.exists(), "down removes the cluster's state"
    assert script("status").returncode == 1
    assert host_settings() == before, "down restores every host setting the node changed"
    if real:
        assert this_node_is_gone(slot), "down removes the node's link and route"
    if sysctls_before is not None and not real_nodes_running():
        # Restored when the last real node on the machine goes (others may have started meanwhile).
        assert kubelet_sysctls() == sysctls_before


def test_one_component_stops_and_starts_with_its_state() -> None:
    """`stop apiserver` / `start apiserver` (and `restart`): the same port, certificates and etcd data."""
    assert script("up", "--nodes=1").returncode == 0
    kubeconfig = Path(script("env").stdout.split("\n")[0].removeprefix("export KUBECONFIG="))
    state = kubeconfig.parent
    kubectl = Path(script("bin-dir").stdout.strip()) / "kubectl"

    def get_node() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                str(kubectl),
                f"--kubeconfig={kubeconfig}",
                "--request-timeout=5s",
                "get",
                "node",
                "kwok-node-0",
            ],
            capture_output=True,
            text=True,
        )

    try:
        before = pids(state)
        stopped = script("stop", "apiserver")
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert not alive(before["kube-apiserver"])
        assert script("status").returncode == 1
        assert get_node().returncode != 0, "the API server answers while stopped"
        others = {k: v for k, v in before.items() if k != "kube-apiserver"}
        assert all(alive(pid) for pid in others.values()), "stopping one component stops only that one"

        started = script("start", "apiserver")
        assert started.returncode == 0, started.stdout + started.stderr
        assert get_node().returncode == 0, "the same kubeconfig reaches it, and etcd kept the node"
        after = pids(state)
        assert after["kube-apiserver"] != before["kube-apiserver"]

        restarted = script("restart", "kube-apiserver")
        assert restarted.returncode == 0, restarted.stdout + restarted.stderr
        assert pids(state)["kube-apiserver"] != after["kube-apiserver"]
        assert get_node().returncode == 0
        assert script("status").returncode == 0
        assert script("stop", "no-such-thing").returncode != 0
    finally:
        assert script("down").returncode == 0
