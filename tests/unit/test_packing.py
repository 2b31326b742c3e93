"""packing.py: packed bytes unpack to what was packed, equal input packs to equal bytes (the child index's
change test compares packed bytes), and objects of a kind pack small against its first object."""

from __future__ import annotations

import json

from maestro.runtime import packing


def rendered(name: str, image: str = "registry.example.com/shop/web:1.0.0") -> bytes:
    """JSON shaped like a kept Deployment: what differs between apps is a few names and an image."""
    labels = {f"app.kubernetes.io/{key}": name for key in ("instance", "part-of", "name", "component")}
    container = {"name": "web", "image": image, "ports": [{"containerPort": 8080, "protocol": "TCP"}]}
    body = {
        "kind": "Deployment",
        "metadata": {"labels": labels, "annotations": {"maestro.dev/applied-hash": name[::-1]}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {"spec": {"containers": [container]}},
        },
    }
    return json.dumps(body, separators=(",", ":")).encode()


def test_unpack_returns_what_was_packed() -> None:
    packer = packing.Packer()
    for name in ("shop", "cart", "shop"):
        assert packer.unpack("Deployment", packer.pack("Deployment", rendered(name))) == rendered(name)


def test_equal_input_packs_to_equal_bytes_and_different_input_to_different_bytes() -> None:
    packer = packing.Packer()
    packer.pack("Deployment", rendered("first"))
    assert packer.pack("Deployment", rendered("shop")) == packer.pack("Deployment", rendered("shop"))
    assert packer.pack("Deployment", rendered("shop")) != packer.pack(
        "Deployment", rendered("shop", image="registry.example.com/shop/web:1.0.1")
    )


def test_objects_of_a_kind_pack_small_against_its_first() -> None:
    packer = packing.Packer()
    packer.pack("Deployment", rendered("first-app"))
    later = rendered("second-app")
    assert len(packer.pack("Deployment", later)) * 5 < len(later)


def test_each_kind_has_its_own_dictionary() -> None:
    packer = packing.Packer()
    packer.pack("Deployment", rendered("shop"))
    service = b'{"kind":"Service","spec":{"ports":[{"port":80}]}}'
    assert packer.unpack("Service", packer.pack("Service", service)) == service
    assert packer.unpack("Deployment", packer.pack("Deployment", rendered("cart"))) == rendered("cart")


def test_objects_larger_than_the_window_round_trip() -> None:
    # A dictionary or an object larger than the 8 KiB window (an app with many services, say) still unpacks to
    # what was packed; only the dictionary's last 8 KiB help the packing.
    packer = packing.Packer()
    large = b"[" + b",".join(rendered(f"app-{i}") for i in range(80)) + b"]"
    assert len(large) > 4 * 8192
    packer.pack("MicroserviceApp", large)
    other = large.replace(b"app-1", b"app-x")
    assert packer.unpack("MicroserviceApp", packer.pack("MicroserviceApp", other)) == other
    assert len(packer.pack("MicroserviceApp", other)) < len(other) // 2
