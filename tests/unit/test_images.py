"""hack/images/images.py: the image archives it writes (manifest, config, the one layer, determinism, the non-root
user), the names it imports (examples/ parsed, normalized as the CRI plugin does) and its build cache. No Go,
no containerd: tests/cluster/test_images.py imports and runs the real images."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]
images = load_script("hack/images/images.py")
BINARY = b"\x7fELF a static binary"


def members(data: bytes) -> dict[str, tuple[tarfile.TarInfo, bytes | None]]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        result = {}
        for info in tar.getmembers():
            member = tar.extractfile(info) if info.isfile() else None
            result[info.name] = (info, member.read() if member else None)
        return result


def content(entries: dict[str, tuple[tarfile.TarInfo, bytes | None]], name: str) -> bytes:
    data = entries[name][1]
    assert data is not None, name
    return data


def unpack(archive: bytes) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    """The manifest entry, the config and the layer of an archive."""
    entries = members(archive)
    (manifest,) = json.loads(content(entries, "manifest.json"))
    (layer_name,) = manifest["Layers"]
    return manifest, json.loads(content(entries, manifest["Config"])), content(entries, layer_name)


def test_archive_names_its_config_and_layer_by_digest() -> None:
    archive = images.archive_bytes(images.SAMPLE, BINARY, "amd64")
    manifest, config, layer = unpack(archive)
    entries = members(archive)
    assert manifest["RepoTags"] == ["maestro.local/sample:1"]
    config_bytes = content(entries, manifest["Config"])
    assert manifest["Config"] == hashlib.sha256(config_bytes).hexdigest() + ".json", "the image ID names it"
    assert config["rootfs"] == {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]}
    assert manifest["Layers"] == [hashlib.sha256(layer).hexdigest() + "/layer.tar"]


def test_sample_config_runs_the_binary_as_user_10001_on_the_example_ports() -> None:
    _, config, _ = unpack(images.archive_bytes(images.SAMPLE, BINARY, "arm64"))
    assert (config["os"], config["architecture"]) == ("linux", "arm64")
    # Numeric: the kubelet can check runAsNonRoot only against a numeric user.
    assert config["config"]["User"] == "10001:10001"
    assert config["config"]["Entrypoint"] == ["/sample"]
    assert config["config"]["Cmd"] == []
    assert config["config"]["Env"] == ["LISTEN_PORTS=3000,5432,8443,9090"]
    assert set(config["config"]["ExposedPorts"]) == {f"{p}/tcp" for p in (8080, 3000, 5432, 8443, 9090)}


def test_pause_config() -> None:
    manifest, config, _ = unpack(images.archive_bytes(images.PAUSE, BINARY, "amd64"))
    assert manifest["RepoTags"] == ["maestro.local/pause:1"]
    assert config["config"]["Entrypoint"] == ["/pause"]
    assert config["config"]["User"] == "10001:10001"
    assert config["config"]["Env"] == [] and config["config"]["ExposedPorts"] == {}


def test_layer_holds_the_binary_a_user_and_the_mount_points() -> None:
    _, _, layer = unpack(images.archive_bytes(images.SAMPLE, BINARY, "amd64"))
    entries = members(layer)
    expected = ["sample", "app", "app/manage", "dev", "etc", "etc/group", "etc/nsswitch.conf", "etc/passwd"]
    assert sorted(entries) == sorted([*expected, "proc", "sys", "tmp"])
    manage = entries["app/manage"][0]
    assert manage.issym() and manage.linkname == "/sample", "the examples' jobs run /app/manage"
    binary, data = entries["sample"]
    assert binary.isfile() and binary.mode == 0o755 and data == BINARY
    for name in ("dev", "proc", "sys", "etc"):
        assert entries[name][0].isdir() and entries[name][0].mode == 0o755, name
    assert entries["tmp"][0].isdir() and entries["tmp"][0].mode == 0o1777, "sticky and world-writable"
    for info, _ in entries.values():
        assert (info.uid, info.gid, info.mtime) == (0, 0, 0), info.name


def test_passwd_and_group_hold_the_non_root_user() -> None:
    _, _, layer = unpack(images.archive_bytes(images.SAMPLE, BINARY, "amd64"))
    entries = members(layer)
    passwd = [line.split(":") for line in content(entries, "etc/passwd").decode().splitlines()]
    group = [line.split(":") for line in content(entries, "etc/group").decode().splitlines()]
    assert all(len(fields) == 7 for fields in passwd) and all(len(fields) == 4 for fields in group)
    by_uid = {fields[2]: fields for fields in passwd}
    assert by_uid["10001"] == ["maestro", "x", "10001", "10001", "maestro", "/tmp", "/sbin/nologin"]
    assert by_uid["0"][0] == "root"
    assert {fields[2]: fields[0] for fields in group}["10001"] == "maestro"


def test_archives_are_deterministic() -> None:
    first = images.archive_bytes(images.SAMPLE, BINARY, "amd64")
    assert images.archive_bytes(images.SAMPLE, BINARY, "amd64") == first
    assert images.archive_bytes(images.SAMPLE, BINARY + b"!", "amd64") != first
    for info in members(first).values():
        assert (info[0].mtime, info[0].uid) == (0, 0)


def test_image_id_is_the_config_digest(tmp_path: Path) -> None:
    archive = images.archive_bytes(images.SAMPLE, BINARY, "amd64")
    (tmp_path / "sample.tar").write_bytes(archive)
    manifest, _, _ = unpack(archive)
    config = content(members(archive), manifest["Config"])
    assert images.image_id(tmp_path / "sample.tar") == "sha256:" + hashlib.sha256(config).hexdigest()


@pytest.mark.parametrize(
    ("name", "normalized"),
    [
        ("nginx", "docker.io/library/nginx:latest"),
        ("nginx:1.27", "docker.io/library/nginx:1.27"),
        ("nginxinc/nginx-unprivileged:1.27-alpine", "docker.io/nginxinc/nginx-unprivileged:1.27-alpine"),
        ("registry.example.com/shop/catalog:1.4.2", "registry.example.com/shop/catalog:1.4.2"),
        ("localhost/app", "localhost/app:latest"),
        ("localhost:5000/app:1", "localhost:5000/app:1"),
        ("maestro.local/pause:1", "maestro.local/pause:1"),
        ("registry.example.com/app@sha256:abc", "registry.example.com/app@sha256:abc"),
    ],
)
def test_names_are_normalized_as_the_cri_plugin_looks_them_up(name: str, normalized: str) -> None:
    assert images.normalize(name) == normalized


def _yaml_images(value: Any) -> list[str]:
    """Every `image` value in a parsed document, and the images that kustomize JSON patches set."""
    if isinstance(value, dict):
        found = [value["image"]] if isinstance(value.get("image"), str) else []
        if str(value.get("path", "")).endswith("/image"):
            found.append(value["value"])
        if isinstance(value.get("patch"), str):
            found += _yaml_images(yaml.safe_load(value["patch"]))
        return found + [name for child in value.values() for name in _yaml_images(child)]
    if isinstance(value, list):
        return [name for child in value for name in _yaml_images(child)]
    return []


def test_example_images_are_every_image_of_the_examples() -> None:
    from_yaml = {
        name
        for path in (ROOT / "examples").rglob("*.yaml")
        for doc in yaml.safe_load_all(path.read_text())
        for name in _yaml_images(doc)
    }
    assert "registry.example.com/shop/web:2.1.0-rc.1" in from_yaml, "the staging overlay's patch is seen"
    assert set(images.example_images()) == from_yaml


def test_example_images_reads_flow_and_block_styles(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "services:\n  - image: one:1  # a comment\n    imagePullPolicy: Never\n"
        "  - {name: x, image: 'two:2'}\n  - name: y\n    image: \"three:3\"\n"
    )
    assert images.example_images(tmp_path) == ["one:1", "two:2", "three:3"]


def test_default_names_are_pause_sample_then_the_examples() -> None:
    names = images.default_names()
    assert names[:2] == ["maestro.local/pause:1", "maestro.local/sample:1"]
    assert len(names) == len(set(names))
    assert "docker.io/nginxinc/nginx-unprivileged:1.27-alpine" in names
    assert "registry.example.com/shop/catalog:1.4.2" in names
    assert all(":" in name.rsplit("/", 1)[-1] for name in names), (
        "every name has a tag: IfNotPresent never pulls"
    )


def _container_ports(doc: Any) -> set[int]:
    if not isinstance(doc, dict) or doc.get("kind") != "MicroserviceApp":
        return set()
    return {
        int(port.get("targetPort", port["port"]))
        for service in doc["spec"]["services"]
        for port in service.get("ports", [])
    }


def test_the_sample_image_listens_on_every_container_port_of_the_examples() -> None:
    ports = {
        port
        for path in (ROOT / "examples").rglob("*.yaml")
        for doc in yaml.safe_load_all(path.read_text())
        for port in _container_ports(doc)
    }
    assert ports, "the examples have ports"
    assert ports <= set(images.SAMPLE.ports), (
        "add the missing ports to EXAMPLE_PORTS in hack/images/images.py"
    )


def test_pause_names_get_the_pause_image() -> None:
    assert images.image_for("registry.k8s.io/pause:3.6") is images.PAUSE
    assert images.image_for("maestro.local/pause:1") is images.PAUSE
    assert images.image_for("registry.example.com/shop/catalog:1.4.2") is images.SAMPLE
    assert images.image_for("registry.example.com/pause-ui:1") is images.SAMPLE


def test_import_imports_each_needed_archive_once_and_tags_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, ...]] = []
    archives = {image: Path(f"/cache/{image.archive}") for image in images.IMAGES}
    monkeypatch.setattr(images, "build", lambda log: archives)
    monkeypatch.setattr(images, "image_id", lambda _: "sha256:0123456789abcdef0123")

    def fake_ctr(socket: Path, *args: str) -> str:
        calls.append((str(socket), *args))
        return ""

    monkeypatch.setattr(images, "ctr", fake_ctr)

    images.import_images(Path("/run/c.sock"), ["nginx:1", "registry.example.com/a:1", "nginx:1"], "native")
    assert calls == [
        ("/run/c.sock", "images", "import", "--snapshotter=native", "/cache/sample.tar"),
        (
            "/run/c.sock",
            "images",
            "tag",
            "--force",
            "maestro.local/sample:1",
            "docker.io/library/nginx:1",
            "registry.example.com/a:1",
        ),
    ], "the pause archive is not needed; names are normalized and deduplicated"

    calls.clear()
    images.import_images(Path("/run/c.sock"), ["maestro.local/pause:1"])
    assert calls == [("/run/c.sock", "images", "import", "/cache/pause.tar")]


def _fake_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """images.py pointed at a copy of its Go sources, with `go` faked."""
    here = tmp_path / "src"
    for relative in ("go.mod", "sample/main.go", "sample/main_test.go", "pause/main.go"):
        (here / relative).parent.mkdir(parents=True, exist_ok=True)
        (here / relative).write_text(f"// {relative}\n")
    monkeypatch.setattr(images, "HERE", here)
    monkeypatch.setattr(images, "CACHE_ROOT", tmp_path / "cache")
    monkeypatch.setattr(images, "go_env", lambda *names: ["go1.26.0", "amd64"][: len(names)])
    return here


def test_cache_key_follows_the_sources_but_not_the_tests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = _fake_module(tmp_path, monkeypatch)
    key = images.cache_key()
    (here / "sample" / "main_test.go").write_text("// another test\n")
    assert images.cache_key() == key
    (here / "sample" / "main.go").write_text("// changed\n")
    assert images.cache_key() != key


def test_build_reuses_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_module(tmp_path, monkeypatch)
    builds: list[list[str]] = []

    def fake_go_build(
        label: str, module: Path, packages: list[str], out: Path, ldflags: str, log: Any
    ) -> None:
        builds.append(packages)
        for package in packages:
            (out / package.removeprefix("./")).write_bytes(BINARY)

    monkeypatch.setattr(images.gobuild, "go_build", fake_go_build)
    first = images.build()
    assert builds == [["./pause", "./sample"]]
    assert {path.name for path in first.values()} == {"pause.tar", "sample.tar"}
    assert first[images.SAMPLE].parent == tmp_path / "cache" / f"images-{images.cache_key()}"
    assert images.build() == first
    assert len(builds) == 1, "nothing is rebuilt when nothing changed"
    assert not list((tmp_path / "cache").glob("*.partial-*")), "no staging directory is left"
