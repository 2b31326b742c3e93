#!/usr/bin/env python3
"""Build the images that pods on the local cluster's real node run, and import them into its containerd.

No container registry is reachable here and there is no container engine, so the images are written as
`docker save` archives by this script (one layer: a static Go binary, /etc/passwd and /etc/group with the
non-root user 10001, /tmp, empty /proc, /sys and /dev) and imported with `ctr`. Two images:

    maestro.local/pause:1    the pod sandbox (hack/images/pause): sleeps until SIGTERM
    maestro.local/sample:1   the sample service (hack/images/sample, docs/images.md), also tagged as every
                             image name of examples/, so the examples run unchanged

    images.py build                               build (or reuse) the cached archives; prints their paths
    images.py import --address SOCK [NAME...]     import into containerd's k8s.io namespace; tag every NAME
                                                  (default: the names below). A NAME whose last path element
                                                  is `pause` gets the pause image, any other the sample image
    images.py names                               print the default names

The binaries and archives are cached in `~/.cache/maestro/images-<key>/` (`MAESTRO_CACHE` moves the cache),
keyed by a digest of the Go sources, this script and the Go toolchain, so nothing is rebuilt when unchanged.
The archives are deterministic (fixed times, owners and order): the same inputs give the same image IDs.
Only the standard library is used, so it runs before the project's virtualenv exists.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # hack/: the shared gobuild module
import gobuild  # noqa: E402

ROOT = HERE.parent.parent
EXAMPLES = ROOT / "examples"
CACHE_ROOT = Path(os.environ.get("MAESTRO_CACHE", Path.home() / ".cache" / "maestro"))
NAMESPACE = "k8s.io"  # the containerd namespace the kubelet's CRI plugin reads
USER = 10001
CREATED = "1970-01-01T00:00:00Z"  # with mtime 0 in the layer: the image ID depends on the inputs only


@dataclass(frozen=True)
class Image:
    ref: str  # the name the archive carries
    binary: str  # the Go package under hack/images, and the binary's path in the image (/<binary>)
    env: tuple[str, ...] = ()
    ports: tuple[int, ...] = ()
    task_commands: tuple[str, ...] = ()  # more paths of the binary, run as one-shot tasks (symbolic links)

    @property
    def archive(self) -> str:
        return f"{self.binary}.tar"


# The container ports the examples use besides the default 8080 (tests/unit/test_images.py keeps this in step
# with examples/): every example's probes and targetPorts then find the sample service listening.
EXAMPLE_PORTS = (3000, 5432, 8443, 9090)
SAMPLE = Image(
    "maestro.local/sample:1",
    "sample",
    env=(f"LISTEN_PORTS={','.join(map(str, EXAMPLE_PORTS))}",),
    ports=(8080, *EXAMPLE_PORTS),
    # The examples' jobs run `/app/manage migrate ...`: called by that name the binary is a task that exits 0.
    task_commands=("app/manage",),
)
PAUSE = Image("maestro.local/pause:1", "pause")
IMAGES = (PAUSE, SAMPLE)

PASSWD = (
    "root:x:0:0:root:/root:/sbin/nologin\n"
    f"maestro:x:{USER}:{USER}:maestro:/tmp:/sbin/nologin\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
)
GROUP = f"root:x:0:\nmaestro:x:{USER}:\nnobody:x:65534:\n"
# Go's resolver reads this to try /etc/hosts before DNS, as glibc systems do.
NSSWITCH = "hosts: files dns\n"


Log = Callable[[str], None]


def log_stderr(message: str) -> None:
    print(f"[images {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------------------
# archives


def _entry(
    name: str, mode: int, data: bytes | None = None, link: str | None = None
) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.mode, info.mtime, info.uid, info.gid, info.uname, info.gname = mode, 0, 0, 0, "root", "root"
    if link is not None:
        info.type, info.linkname = tarfile.SYMTYPE, link
    elif data is None:
        info.type = tarfile.DIRTYPE
    else:
        info.size = len(data)
    return info, data


def layer_tar(binary_name: str, binary: bytes, task_commands: Iterable[str] = ()) -> bytes:
    """The image's only layer, as an uncompressed tar with its entries in a fixed order."""
    folders = sorted({str(Path(command).parent) for command in task_commands} - {"."})
    entries = [
        *(_entry(folder, 0o755) for folder in folders),
        *(_entry(command, 0o777, link=f"/{binary_name}") for command in task_commands),
        _entry(binary_name, 0o755, binary),
        _entry("dev", 0o755),
        _entry("etc", 0o755),
        _entry("etc/group", 0o644, GROUP.encode()),
        _entry("etc/nsswitch.conf", 0o644, NSSWITCH.encode()),
        _entry("etc/passwd", 0o644, PASSWD.encode()),
        _entry("proc", 0o755),
        _entry("sys", 0o755),
        _entry("tmp", 0o1777),
    ]
    return _tar(sorted(entries, key=lambda entry: entry[0].name))


def _tar(entries: Iterable[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def image_config(image: Image, diff_id: str, arch: str) -> bytes:
    """The image configuration; its sha256 is the image ID."""
    config = {
        "architecture": arch,
        "os": "linux",
        "created": CREATED,
        "config": {
            "User": f"{USER}:{USER}",
            "Entrypoint": [f"/{image.binary}"],
            "Cmd": [],
            "Env": list(image.env),
            "ExposedPorts": {f"{port}/tcp": {} for port in image.ports},
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": CREATED, "created_by": "hack/images/images.py"}],
    }
    return _json(config)


def _json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def archive_bytes(image: Image, binary: bytes, arch: str) -> bytes:
    """A `docker save` archive: manifest.json naming the config and the layer, which sit beside it."""
    layer = layer_tar(image.binary, binary, image.task_commands)
    layer_hex = _sha256(layer)
    config = image_config(image, f"sha256:{layer_hex}", arch)
    config_name, layer_name = f"{_sha256(config)}.json", f"{layer_hex}/layer.tar"
    manifest = [{"Config": config_name, "RepoTags": [image.ref], "Layers": [layer_name]}]
    return _tar(
        [
            _entry(config_name, 0o644, config),
            _entry(f"{layer_hex}", 0o755),
            _entry(layer_name, 0o644, layer),
            _entry("manifest.json", 0o644, _json(manifest)),
        ]
    )


def image_id(archive: Path) -> str:
    """The image ID (`sha256:` of its config) of an archive written by archive_bytes."""
    with tarfile.open(archive) as tar:
        member = tar.extractfile("manifest.json")
        assert member is not None
        config_name: str = json.load(member)[0]["Config"]
        return "sha256:" + config_name.removesuffix(".json")


# ---------------------------------------------------------------------------------------------------------------
# build


def go_env(*names: str) -> list[str]:
    if shutil.which("go") is None:
        raise SystemExit("Go is needed to build the images (https://go.dev/dl); it is not on PATH.")
    result = subprocess.run(["go", "env", *names], capture_output=True, text=True, check=True, cwd=HERE)
    return result.stdout.split()


def cache_key() -> str:
    """A digest of everything an archive depends on: sources (not tests), this script, Go and the target."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    sources = [HERE / "go.mod", *sorted(p for p in HERE.rglob("*.go") if not p.name.endswith("_test.go"))]
    for path in sources:
        digest.update(b"\0" + str(path.relative_to(HERE)).encode() + b"\0" + path.read_bytes())
    digest.update(" ".join(go_env("GOVERSION", "GOARCH")).encode())
    return digest.hexdigest()[:12]


def cache_dir() -> Path:
    return CACHE_ROOT / f"images-{cache_key()}"


def build(log: Log = log_stderr) -> dict[Image, Path]:
    """Each image's archive, built once per cache key; progress goes to `log` (cluster.py can pass its own)."""
    target = cache_dir()
    archives = {image: target / image.archive for image in IMAGES}
    if all(path.exists() for path in archives.values()):
        log(f"images are cached in {target}")
        return archives
    started = time.monotonic()
    # Per process, so that two builds at once do not share a half-written directory.
    staging = target.with_name(f"{target.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "bin").mkdir(parents=True)
    packages = [f"./{image.binary}" for image in IMAGES]
    gobuild.go_build("sample and pause", HERE, packages, staging / "bin", "-s -w", log)
    (arch,) = go_env("GOARCH")
    for image in IMAGES:
        binary = (staging / "bin" / image.binary).read_bytes()
        (staging / image.archive).write_bytes(archive_bytes(image, binary, arch))
    _publish(staging, target)
    log(f"built {len(IMAGES)} images in {int(time.monotonic() - started)}s into {target}")
    return archives


def _publish(staging: Path, target: Path) -> None:
    try:
        staging.rename(target)  # atomic: the cache directory is either complete or absent
    except OSError:  # another build finished first: its archives are the same
        shutil.rmtree(staging, ignore_errors=True)
        if not target.exists():
            raise


# ---------------------------------------------------------------------------------------------------------------
# names


def normalize(name: str) -> str:
    """The reference as containerd's CRI plugin stores it: `nginx` -> `docker.io/library/nginx:latest`.

    `ctr images tag` takes names verbatim, so the kubelet would not find an image tagged with a short name.
    """
    first, _, rest = name.partition("/")
    if not rest or ("." not in first and ":" not in first and first != "localhost"):
        name = f"docker.io/{name}" if rest else f"docker.io/library/{name}"
    last = name.rsplit("/", 1)[-1]
    if ":" not in last and "@" not in last:
        name += ":latest"
    return name


# `image: X` anywhere (block or flow style), and kustomize JSON patches that replace an image.
_IMAGE_KEY = re.compile(r"""(?:^|[\s{,-])image:\s*["']?([^\s"'#,}]+)""", re.MULTILINE)
_IMAGE_PATCH = re.compile(r"""/image,\s*value:\s*["']?([^\s"'#,}]+)""")


def example_images(examples: Path = EXAMPLES) -> list[str]:
    """Every image name in examples/**/*.yaml, in file order; read with regular expressions (no PyYAML here)."""
    names: list[str] = []
    for path in sorted(examples.rglob("*.yaml")):
        text = path.read_text()
        names += _IMAGE_KEY.findall(text) + _IMAGE_PATCH.findall(text)
    return names


def default_names() -> list[str]:
    return _unique(normalize(name) for name in [PAUSE.ref, SAMPLE.ref, *example_images()])


def _unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))


def image_for(name: str) -> Image:
    """Any `.../pause:TAG` (e.g. containerd's default sandbox image) is the pause image; any other the sample."""
    repository = normalize(name).rsplit(":", 1)[0]
    return PAUSE if repository.rsplit("/", 1)[-1] == "pause" else SAMPLE


# ---------------------------------------------------------------------------------------------------------------
# import


def ctr(socket: Path, *args: str) -> str:
    if shutil.which("ctr") is None:
        raise SystemExit("ctr (containerd's client) is not on PATH; install containerd")
    command = ["ctr", "--address", str(socket), "--namespace", NAMESPACE, *args]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr.strip()}")
    return result.stdout


def import_images(
    socket: Path, names: list[str], snapshotter: str | None = None, log: Log = log_stderr
) -> None:
    """Import the archives that `names` need into the containerd at `socket`, then tag each name.

    Import unpacks each image for the snapshotter (containerd's default unless given), which the CRI plugin
    must use too. Tags are forced, so importing again after a rebuild moves every name to the new image.
    """
    archives = build(log)
    started = time.monotonic()
    wanted = _unique(normalize(name) for name in names)
    for image in IMAGES:
        tags = [name for name in wanted if image_for(name) == image and name != image.ref]
        if image.ref not in wanted and not tags:
            continue
        flags = [f"--snapshotter={snapshotter}"] if snapshotter else []
        ctr(socket, "images", "import", *flags, str(archives[image]))
        if tags:
            ctr(socket, "images", "tag", "--force", image.ref, *tags)
        log(f"imported {image.ref} ({image_id(archives[image])[:19]}) and tagged {len(tags)} more names")
    log(f"imported {len(wanted)} image names into {socket} in {time.monotonic() - started:.1f}s")


# ---------------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build or reuse the cached archives; print their paths")
    importer = sub.add_parser("import", help="import into containerd and tag every name")
    importer.add_argument("--address", required=True, type=Path, help="containerd's socket")
    importer.add_argument("--snapshotter", help="unpack for this snapshotter (default: containerd's)")
    importer.add_argument("names", nargs="*", help="image names (default: `images.py names`)")
    sub.add_parser("names", help="print the default image names")
    args = parser.parse_args(argv)
    if args.command == "build":
        for path in build().values():
            print(path)
    elif args.command == "import":
        import_images(args.address, args.names or default_names(), args.snapshotter)
    elif args.command == "names":
        print("\n".join(default_names()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
