"""The real node's configuration (hack/cluster/node.py): pure functions of a slot and a state directory."""

from __future__ import annotations

import json
from pathlib import Path

from tests.scripts import load_script

node = load_script("hack/cluster/node.py")


def test_addresses_and_names_follow_the_slot() -> None:
    net = node.NodeNetwork(7, "demo")
    assert (net.host_ip, net.node_ip, net.pod_cidr) == ("10.201.7.1", "10.201.7.2", "10.200.7.0/24")
    assert (net.host_link, net.node_link) == ("mst7h", "mst7n")
    assert all(len(name) <= 15 for name in (node.NodeNetwork(63, "x").host_link, net.node_link))
    assert net.netns == "maestro-demo" and net.cgroup_root == "/maestro-demo"
    assert net.nsenter() == ["nsenter", "--net=/run/netns/maestro-demo"]


def test_pod_range_does_not_overlap_kwok_or_services() -> None:
    import ipaddress

    pods = ipaddress.ip_network(node.NodeNetwork(63, "x").pod_cidr)
    for other in (node.KWOK_POD_RANGE, "10.96.0.0/16", "10.201.0.0/16"):
        assert not pods.overlaps(ipaddress.ip_network(other))


def test_free_slot_skips_slots_other_clusters_claim(tmp_path: Path) -> None:
    for name, slot in (("a", 0), ("b", 1)):
        (tmp_path / name / "node").mkdir(parents=True)
        (tmp_path / name / "node" / "network.json").write_text(json.dumps({"slot": slot}))
    no_links = lambda slot: False  # noqa: E731
    assert node.free_slot(tmp_path, "c", no_links) == 2
    assert node.free_slot(tmp_path, "a", no_links) == 0, "a cluster's own claim does not block it"
    assert node.free_slot(tmp_path, "c", lambda slot: slot == 2) == 3, (
        "a link left by a crashed cluster blocks"
    )


def test_kubelet_is_set_for_this_machine(tmp_path: Path) -> None:
    net = node.NodeNetwork(3, "t")
    paths = node.NodePaths(tmp_path)
    config = node.kubelet_config(net, paths, tmp_path / "pki")
    assert config["cgroupDriver"] == "cgroupfs" and config["failCgroupV1"] is False
    assert config["cgroupRoot"] == "/maestro-t", "two kubelets must not share (and prune) one cgroup root"
    assert config["clusterDNS"] == [net.node_ip] and config["address"] == net.node_ip
    assert config["authentication"]["anonymous"] == {"enabled": False}
    assert config["containerRuntimeEndpoint"] == f"unix://{paths.containerd_socket}"
    assert str(config["resolvConf"]).startswith(str(tmp_path)), "never the host's resolver"


def test_containerd_keeps_everything_under_the_state_directory(tmp_path: Path) -> None:
    paths = node.NodePaths(tmp_path)
    text = node.containerd_config(paths, "maestro.local/pause:1")
    assert f'root = "{paths.containerd_root}"' in text and f'state = "{paths.containerd_state}"' in text
    assert "netns_mounts_under_state_dir = true" in text
    assert "restrict_oom_score_adj = true" in text and 'sandbox_image = "maestro.local/pause:1"' in text


def test_cni_bridge_uses_the_slot_range_and_keeps_its_leases_in_the_state(tmp_path: Path) -> None:
    net = node.NodeNetwork(5, "t")
    config = node.cni_config(net, node.NodePaths(tmp_path))
    bridge = config["plugins"][0]
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.200.5.0/24"}]]
    assert bridge["ipam"]["dataDir"].startswith(str(tmp_path))
    assert bridge["ipMasq"] is False, "pods keep their own address: nothing is NAT-ed out"


def test_corefile_answers_cluster_names_only(tmp_path: Path) -> None:
    net = node.NodeNetwork(2, "t")
    text = node.corefile(net, tmp_path / "kubeconfig", "t")
    assert "forward" not in text, "pods resolve nothing outside the cluster"
    assert f"bind {net.node_ip}" in text and f"kubeconfig {tmp_path / 'kubeconfig'} t" in text
