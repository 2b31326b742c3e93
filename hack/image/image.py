#!/usr/bin/env python3
"""Build the operator image from the repository's Dockerfile on this machine: no registry, no container daemon.

The Dockerfile's base (`PYTHON_IMAGE`, python:3.11-slim-bookworm for users with Docker) cannot be pulled here, so:

1. a base image is made from Debian's packages: `debootstrap --variant=minbase bookworm` with python3 (3.11),
   python3-venv, python3-pip, python-is-python3 (the Dockerfile runs `python -m venv`) and ca-certificates, its
   apt caches, package lists, docs and locales removed, turned into an image with buildah (`buildah from
   scratch`, the tree copied in, `buildah commit`). Cached in buildah's storage under a name keyed by the suite,
   the package list and this recipe (BASE_RECIPE), so it is made once (about 70 s);
2. the project's own Dockerfile is built on it, unchanged: `buildah bud --build-arg PYTHON_IMAGE=<that base>
   --isolation chroot --network host --pull=never`. pip inside the build reaches the package index as pip on this
   machine does: the CA bundle pip is configured with (`pip config list`: cert) is mounted over the image's
   system bundle for the build's RUN steps only, and an index URL pip is configured with is passed as the
   Dockerfile's optional PACKAGE_INDEX_URL build argument;
3. the image is named after the chart (`image.repository` in deploy/helm/maestro/values.yaml) with the tag
   `<package version>-<digest>`, the digest covering everything that goes into the build (the Dockerfile,
   .dockerignore, pyproject.toml, README.md, operator/ and the base), and exported as a docker-archive into
   `~/.cache/maestro/image/` (`MAESTRO_CACHE` moves the cache). An archive already there is the cache hit: a
   second build with the same sources does nothing. containerd takes the archive as it is:
   `ctr --address SOCK -n k8s.io images import ARCHIVE` (or `image.py import --address SOCK`).

    image.py build [--json]     build (or reuse) the image; prints MAESTRO_IMAGE=..., _REPOSITORY, _TAG, _ARCHIVE
    image.py path [--json]      the same names without building (exit 1 when the archive is not built yet)
    image.py import --address SOCK [--namespace k8s.io] [--chart-default]
                                build (or reuse), then import the archive into that containerd (and with
                                --chart-default also name it as the chart's defaults do: repository:appVersion)
    image.py check              build (or reuse), then run it in a private containerd as the chart does: user
                                10001, read-only root filesystem: `maestro --version`, `maestro run --help`, and
                                the chart's default arguments against `--help`
    image.py prune              remove the buildah storage and the archives (the next build starts cold)

From Python (the cluster set-up): `image.build()` returns an `Image` (name, repository, tag, archive);
`image.import_into(address)` does the import.

Needs root (debootstrap and rootful buildah) and Debian's debootstrap and buildah (installed with apt-get when
missing); `check` and `import` need containerd's ctr (and `check` containerd and runc). Only the standard
library is used: it runs before the virtualenv exists.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import functools
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # hack/: the shared debian module
import debian

ROOT = Path(__file__).resolve().parents[2]
CACHE_ROOT = Path(os.environ.get("MAESTRO_CACHE", Path.home() / ".cache" / "maestro"))
IMAGE_CACHE = CACHE_ROOT / "image"
VALUES = ROOT / "deploy" / "helm" / "maestro" / "values.yaml"

# The base image: Debian's suite and packages, and this recipe's version (bump it when make_base() changes what
# goes into the image, so that the cached base is remade).
SUITE = "bookworm"
PACKAGES = ("python3", "python3-venv", "python3-pip", "python-is-python3", "ca-certificates")
BASE_RECIPE = 1
BASE_REPOSITORY = "localhost/maestro-python-base"
DEFAULT_MIRROR = "http://deb.debian.org/debian"

# What the Dockerfile's COPY lines take from the build context, for the tag's digest. .dockerignore keeps the
# rest (and caches under operator/) out of the context: DIGEST_SKIP mirrors it.
BUILD_INPUTS = ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md", "operator")
DIGEST_SKIP = re.compile(r"(^|/)(__pycache__|[^/]*\.egg-info)(/|$)|\.py[co]$")

# Kept as they are whenever the image is rebuilt: older archives and images of the repository beyond these go.
KEEP_ARCHIVES = 2


def log(message: str) -> None:
    print(f"[image {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclasses.dataclass(frozen=True)
class Image:
    repository: str
    tag: str
    archive: Path

    @property
    def name(self) -> str:
        return f"{self.repository}:{self.tag}"

    def env(self) -> str:
        return (
            f"MAESTRO_IMAGE={self.name}\nMAESTRO_IMAGE_REPOSITORY={self.repository}\n"
            f"MAESTRO_IMAGE_TAG={self.tag}\nMAESTRO_IMAGE_ARCHIVE={self.archive}\n"
        )

    def as_json(self) -> str:
        return json.dumps(
            {"name": self.name, "repository": self.repository, "tag": self.tag, "archive": str(self.archive)}
        )


# ---------------------------------------------------------------------------------------------------------------
# running the long steps, with progress


@contextlib.contextmanager
def step(what: str) -> Iterator[None]:
    log(f"{what} ...")
    started = time.monotonic()
    yield
    log(f"{what}: done in {time.monotonic() - started:.1f}s")


def run(argv: Sequence[str], *, check: bool = True, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """A short command, its output captured; raises SystemExit with that output when it fails and check."""
    result: subprocess.CompletedProcess[str] = subprocess.run(
        list(argv), capture_output=True, text=True, check=False, **kwargs
    )
    if check and result.returncode != 0:
        raise SystemExit(
            f"failed ({result.returncode}): {' '.join(argv)}\n{(result.stderr or result.stdout).strip()[-3000:]}"
        )
    return result


def run_long(argv: Sequence[str], what: str, echo: Callable[[str], bool] = lambda line: False) -> None:
    """A long command: its whole output goes to IMAGE_CACHE/logs/<what>.log; lines `echo` accepts are shown, and
    every 15 s a line says it still runs, with its latest output line. On failure the log's tail is shown."""
    logs = IMAGE_CACHE / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / (re.sub(r"[^A-Za-z0-9.-]+", "-", what).strip("-") + ".log")
    started = time.monotonic()
    last = [""]
    with log_path.open("w") as log_file:
        log_file.write(f"$ {' '.join(argv)}\n")
        log_file.flush()
        process = subprocess.Popen(
            list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        )
        assert process.stdout is not None
        stdout = process.stdout

        def pump() -> None:
            for line in stdout:
                log_file.write(line)
                log_file.flush()
                line = line.rstrip()
                if line:
                    last[0] = line
                    if echo(line):
                        log(f"  {line[:160]}")

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            while True:
                try:
                    process.wait(timeout=15)
                    break
                except subprocess.TimeoutExpired:
                    log(f"  {what}: {time.monotonic() - started:.0f}s so far; {last[0][:120]}")
        except BaseException:
            process.terminate()
            process.wait()
            raise
        reader.join()
    if process.returncode != 0:
        tail = log_path.read_text().splitlines()[-40:]
        raise SystemExit(
            f"{what} failed ({process.returncode}); the last lines of {log_path}:\n" + "\n".join(tail)
        )


# ---------------------------------------------------------------------------------------------------------------
# tools


def need(tools: dict[str, str]) -> None:
    debian.need(tools, log, "image.py")


def need_root() -> None:
    if os.geteuid() != 0:
        raise SystemExit(
            "image.py needs root: debootstrap makes device nodes and owners, and buildah runs rootful here "
            "(no subordinate ids for rootless builds). Run it as root (sudo make image)."
        )


# ---------------------------------------------------------------------------------------------------------------
# buildah with a storage of our own


@functools.cache
def _storage_driver() -> str:
    """overlay, unless the cache lives on an overlay filesystem (as inside a container), where the kernel refuses
    overlay on top of overlay: then vfs (a full copy per layer: slower, bigger, but works anywhere; checked here
    with MAESTRO_BUILDAH_DRIVER=vfs, which forces it: 104 s cold, 490 MB of storage instead of 330 MB).
    Rootful overlay works on these machines (ext4, root without CAP_SYS_RESOURCE: buildah never needs it)."""
    forced = os.environ.get("MAESTRO_BUILDAH_DRIVER")
    if forced:
        return forced
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    fstype = run(["findmnt", "-n", "-o", "FSTYPE", "-T", str(CACHE_ROOT)], check=False).stdout.strip()
    return "vfs" if fstype in ("overlay", "") else "overlay"


def _runroot() -> Path:
    """buildah's run state (locks, mount counts). It normally lives on a tmpfs and so is reset on reboot; ours
    sits beside the storage, so it is reset by hand when the boot id changes (stale mount counts would otherwise
    keep layers "in use")."""
    runroot = CACHE_ROOT / "buildah" / "run"
    boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    marker = runroot / ".boot-id"
    if not marker.exists() or marker.read_text() != boot_id:
        shutil.rmtree(runroot, ignore_errors=True)
        runroot.mkdir(parents=True)
        marker.write_text(boot_id)
    return runroot


def buildah_argv() -> list[str]:
    """buildah with its storage under ~/.cache/maestro/buildah/ rather than the system's /var/lib/containers:
    the images made here are the project's cache, removed with `image.py prune` or the cache directory, and stay
    out of any other buildah/podman user's way (and theirs out of ours: no storage.conf is read for the driver,
    the storage is keyed by it, since one storage cannot switch drivers)."""
    driver = _storage_driver()
    root = CACHE_ROOT / "buildah" / f"storage-{driver}"
    root.mkdir(parents=True, exist_ok=True)
    return ["buildah", "--root", str(root), "--runroot", str(_runroot()), "--storage-driver", driver]


def buildah(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run([*buildah_argv(), *args], check=check)


def image_exists(name: str) -> bool:
    return buildah("inspect", "--type", "image", name, check=False).returncode == 0


# ---------------------------------------------------------------------------------------------------------------
# the base image


def debian_mirror() -> str:
    """MAESTRO_DEBIAN_MIRROR, else the machine's own Debian archive (its apt sources), else deb.debian.org."""
    if os.environ.get("MAESTRO_DEBIAN_MIRROR"):
        return os.environ["MAESTRO_DEBIAN_MIRROR"]
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for source in sources:
        if source.suffix not in ("", ".list", ".sources") or not source.is_file():
            continue
        for uri in re.findall(r"(?:^URIs:|^deb(?:\s+\[[^]]*\])?)\s+(\S+)", source.read_text(), re.MULTILINE):
            if re.fullmatch(r"https?://[^ ]+/debian/?", uri):
                return str(uri).rstrip("/")
    return DEFAULT_MIRROR


def base_name() -> str:
    key = hashlib.sha256(json.dumps([SUITE, PACKAGES, BASE_RECIPE]).encode()).hexdigest()[:12]
    return f"{BASE_REPOSITORY}:{SUITE}-{key}"


def _slim_rootfs(rootfs: Path) -> None:
    """What a container needs none of: apt's downloaded packages and lists (apt-get update fetches them again),
    docs (but each package's copyright file), man pages, locales, logs; device nodes (the runtime makes /dev)
    and the host's resolv.conf and hostname that debootstrap copied in (the runtime provides both)."""
    for pattern in (
        "var/cache/apt/*.bin",
        "var/cache/apt/archives/*.deb",
        "var/lib/apt/lists/*",
        "var/log/*",
    ):
        for path in rootfs.glob(pattern):
            if path.is_file() or path.is_symlink():
                path.unlink()
            elif path.is_dir() and path.name != "partial":
                shutil.rmtree(path)
    for path in (rootfs / "usr/share/doc").rglob("*"):
        if (path.is_file() or path.is_symlink()) and path.name != "copyright":
            path.unlink()
    for directory in ("usr/share/man", "usr/share/locale", "usr/share/info", "dev", "tmp", "run"):
        for path in (rootfs / directory).iterdir() if (rootfs / directory).is_dir() else ():
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    for name in ("etc/resolv.conf", "etc/hostname"):
        (rootfs / name).unlink(missing_ok=True)


def make_base() -> str:
    """The base image, made once: debootstrap, slimmed, committed with buildah."""
    name = base_name()
    if image_exists(name):
        log(f"base image {name}: cached")
        return name
    need({"debootstrap": "debootstrap"})
    mirror = debian_mirror()
    IMAGE_CACHE.mkdir(parents=True, exist_ok=True)
    rootfs = Path(tempfile.mkdtemp(prefix="rootfs-", dir=IMAGE_CACHE))
    container = f"maestro-base-{os.getpid()}"
    try:
        with step(
            f"debootstrap --variant=minbase {SUITE} from {mirror} with {', '.join(PACKAGES)} (about 70 s)"
        ):
            run_long(
                [
                    "debootstrap",
                    "--variant=minbase",
                    f"--include={','.join(PACKAGES)}",
                    SUITE,
                    str(rootfs),
                    mirror,
                ],
                "debootstrap",
                echo=lambda line: line.startswith(
                    ("I: Retrieving Release", "I: Installing", "I: Base system")
                ),
            )
        _slim_rootfs(rootfs)
        with step(f"committing the root filesystem as {name}"):
            buildah("from", "--name", container, "scratch")
            mountpoint = buildah("mount", container).stdout.strip()
            try:
                # tar keeps owners, modes, links and special files exactly; numeric ids, not the host's names.
                packer = subprocess.Popen(
                    ["tar", "-C", str(rootfs), "--numeric-owner", "-cf", "-", "."], stdout=subprocess.PIPE
                )
                run(["tar", "-C", mountpoint, "--numeric-owner", "-xpf", "-"], stdin=packer.stdout)
                if packer.wait() != 0:
                    raise SystemExit("tar of the root filesystem failed")
            finally:
                buildah("umount", container)
            buildah(
                "config",
                "--env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "--env", "LANG=C.UTF-8",
                "--cmd", "python3",
                "--label", f"org.opencontainers.image.description=Debian {SUITE} minbase with {' '.join(PACKAGES)} (hack/image/image.py)",
                container,
            )  # fmt: skip
            buildah("commit", "--rm", container, name)
        return name
    finally:
        buildah("rm", container, check=False)
        shutil.rmtree(rootfs, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------------
# the operator image


def chart_repository() -> str:
    """image.repository from the chart's values.yaml (read as text: no YAML library before the virtualenv)."""
    match = re.search(
        r"^image:\n(?:[ \t]+.*\n)*?[ \t]+repository:[ \t]*(\S+)", VALUES.read_text(), re.MULTILINE
    )
    if match is None:
        raise SystemExit(f"no image.repository in {VALUES}")
    return match.group(1).strip("\"'")


def package_version() -> str:
    version: str = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    return version


def _build_files() -> list[Path]:
    files: list[Path] = []
    for name in BUILD_INPUTS:
        path = ROOT / name
        candidates = sorted(path.rglob("*")) if path.is_dir() else [path]
        files += [
            p for p in candidates if p.is_file() and not DIGEST_SKIP.search(p.relative_to(ROOT).as_posix())
        ]
    return files


def source_digest() -> str:
    """Over every file the build takes (names and bytes), the base's name (which keys its own recipe) and the
    chart's repository (the archive carries the image's name)."""
    digest = hashlib.sha256(f"{base_name()}\0{chart_repository()}".encode())
    for path in _build_files():
        digest.update(b"\0" + path.relative_to(ROOT).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def planned() -> Image:
    """The image the current sources make: its name and where its archive is (built or not)."""
    tag = f"{package_version()}-{source_digest()}"
    return Image(chart_repository(), tag, IMAGE_CACHE / f"maestro-{tag}.tar")


def pip_settings() -> tuple[Path | None, str | None]:
    """The CA bundle and the index URL pip on this machine is configured with (`pip config list`: environment
    first, then its files), so that pip inside the build goes where pip here goes."""
    values: dict[str, str] = {}
    for command in ([sys.executable, "-m", "pip"], ["pip3"], ["pip"]):
        if command[0] != sys.executable and shutil.which(command[0]) is None:
            continue
        result = run([*command, "config", "list"], check=False)
        if result.returncode != 0:
            continue
        for line in result.stdout.splitlines():
            key, _, value = line.partition("=")
            scope, _, option = key.rpartition(".")
            if option in ("cert", "index-url") and (option not in values or scope == ":env:"):
                values[option] = value.strip().strip("'\"")
        break
    values.setdefault("cert", os.environ.get("PIP_CERT", ""))
    values.setdefault("index-url", os.environ.get("PIP_INDEX_URL", ""))
    cert = Path(values["cert"]) if values["cert"] else None
    if cert is not None and not cert.is_file():
        log(f"pip's configured cert {cert} is not a file: not passed to the build")
        cert = None
    return cert, values["index-url"] or None


def build_image(image: Image, base: str) -> None:
    cert, index_url = pip_settings()
    argv = [
        *buildah_argv(),
        "bud",
        # RUN steps in a chroot: no runc, cgroups or namespaces to set up. (runc, --isolation oci, works on these
        # machines too; chroot is lighter and also works where runc cannot, as inside a container.)
        "--isolation", "chroot",
        "--network", "host",  # pip reaches the index through this machine's own network: no CNI set-up
        "--pull=never",  # the base is local; nothing is fetched from a registry
        "--build-arg", f"PYTHON_IMAGE={base}",
        "--tag", image.name,
        "--file", str(ROOT / "Dockerfile"),
    ]  # fmt: skip
    if cert is not None:
        # Only for the build's RUN steps: nothing of it stays in the image.
        argv += ["--volume", f"{cert}:/etc/ssl/certs/ca-certificates.crt:ro"]
    if index_url is not None:
        argv += ["--build-arg", f"PACKAGE_INDEX_URL={index_url}"]
    argv.append(str(ROOT))
    extras = f"pip cert {cert}" if cert else "the image's own CA bundle"
    extras += f", index {index_url}" if index_url else ""
    with step(f"buildah bud the Dockerfile on {base} ({extras}; about 50 s)"):
        run_long(argv, "buildah-bud", echo=lambda line: "STEP" in line or line.startswith("Successfully"))


def export(image: Image) -> None:
    partial = image.archive.with_name(f"{image.archive.name}.partial-{os.getpid()}")
    partial.unlink(missing_ok=True)
    with step(f"exporting {image.name} to {image.archive}"):
        try:
            buildah("push", image.name, f"docker-archive:{partial}:{image.name}")
            partial.rename(image.archive)  # atomic: an archive in the cache is complete
        finally:
            partial.unlink(missing_ok=True)


def _prune_old(image: Image) -> None:
    """Older archives beyond the newest KEEP_ARCHIVES, and every other tag of the repository in the storage (the
    archive is what is used; an image in the storage is only a step towards it), plus dangling build stages."""
    archives = sorted(IMAGE_CACHE.glob("maestro-*.tar"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in archives[KEEP_ARCHIVES:]:
        if old != image.archive:
            old.unlink(missing_ok=True)
    listing = buildah("images", "--format", "{{.Name}}:{{.Tag}}", check=False).stdout.split()
    for name in listing:
        if name.startswith(f"{image.repository}:") and name != image.name:
            buildah("rmi", name, check=False)
    buildah("rmi", "--prune", check=False)


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """One build at a time (`make image` beside a test that builds): the second waits, then finds the cache."""
    IMAGE_CACHE.mkdir(parents=True, exist_ok=True)
    with (IMAGE_CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def build(force: bool = False) -> Image:
    """The image of the current sources, as a docker-archive in the cache: built unless it is there already."""
    image = planned()
    if image.archive.exists() and not force:
        log(f"{image.name}: cached ({image.archive})")
        return image
    need_root()
    need({"buildah": "buildah", "debootstrap": "debootstrap"})
    with _locked():
        if image.archive.exists() and not force:
            log(f"{image.name}: cached ({image.archive}, built meanwhile)")
            return image
        started = time.monotonic()
        base = make_base()
        build_image(image, base)
        export(image)
        _prune_old(image)
        size = buildah("images", "--format", "{{.Size}}", image.name, check=False).stdout.strip()
        archive_mb = image.archive.stat().st_size / 1e6
        log(
            f"{image.name} built in {time.monotonic() - started:.1f}s: {size} ({image.archive}, {archive_mb:.0f} MB)"
        )
    return image


# ---------------------------------------------------------------------------------------------------------------
# containerd: the import, and a private one to run the image as the kubelet would


def chart_default_name() -> str:
    """The image the chart runs with its default values: image.repository at the chart's appVersion (the
    Deployment's `image.tag | default .Chart.AppVersion`)."""
    chart = (VALUES.parent / "Chart.yaml").read_text()
    match = re.search(r"^appVersion:[ \t]*(\S+)", chart, re.MULTILINE)
    if match is None:
        raise SystemExit(f"no appVersion in {VALUES.parent / 'Chart.yaml'}")
    return f"{chart_repository()}:{match.group(1).strip(chr(34) + chr(39))}"


def import_into(
    address: str, namespace: str = "k8s.io", image: Image | None = None, also: Sequence[str] = ()
) -> Image:
    """Build (or reuse) the image and import its archive into the containerd at `address` (the kubelet's
    images live in the k8s.io namespace); `also`: more names for the same image there (`ctr images tag`)."""
    image = image or build()
    need({"ctr": "containerd"})
    ctr = ["ctr", "--address", address, "-n", namespace, "images"]
    # The tag carries the digest of everything the image is built from: the same name there is the same image.
    present = run([*ctr, "ls", "--quiet", f"name=={image.name}"], check=False).stdout.split()
    if image.name in present:
        log(f"{image.name}: already in containerd {address}")
    else:
        with step(f"importing {image.name} into containerd {address} (namespace {namespace})"):
            run([*ctr, "import", str(image.archive)])
    for name in also:
        if name != image.name:
            run([*ctr, "tag", "--force", image.name, name])
            log(f"  also tagged {name}")
    return image


# The capabilities containerd's default spec grants (oci.populateDefaultUnixSpec): the chart drops them all.
DEFAULT_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
    "CAP_AUDIT_WRITE",
)  # fmt: skip


@dataclasses.dataclass
class PrivateContainerd:
    """A containerd of our own (state in a temporary directory, its own socket, CRI off): to import and run the
    image exactly as a node would, without touching the machine's containerd or the local cluster's."""

    directory: Path
    process: subprocess.Popen[bytes]

    @property
    def address(self) -> str:
        return str(self.directory / "containerd.sock")

    def ctr_argv(self, *args: str) -> list[str]:
        return ["ctr", "--address", self.address, "-n", "maestro-image", *args]

    def ctr(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return run(self.ctr_argv(*args), check=check, timeout=timeout)

    def run_argv(
        self,
        image: Image,
        args: Sequence[str] | None = None,
        *,
        command: Sequence[str] | None = None,
        name: str | None = None,
        options: Sequence[str] = (),
    ) -> list[str]:
        """`ctr run` of the image's entrypoint with `args` (its CMD when None), or `command` instead of both, as
        the chart's pod runs it minus Kubernetes: as the image's user (ctr 1.6 has no --user: the chart's
        runAsUser must be the image's, a unit test holds them equal), with a read-only root filesystem, the
        runtime's default seccomp profile, no capabilities, and no network unless `options` give --net-host."""
        config = self.image_config(image)
        if command is None:
            command = [*config.get("Entrypoint", []), *(config.get("Cmd", []) if args is None else args)]
        name = name or f"maestro-check-{os.getpid()}-{time.monotonic_ns()}"
        flags = ["--rm", "--read-only", "--seccomp"]
        for capability in DEFAULT_CAPABILITIES:  # `drop: [ALL]` (ctr 1.6 takes no ALL)
            flags += ["--cap-drop", capability]
        return self.ctr_argv("run", *flags, *options, image.name, name, *command)

    def run_image(
        self, image: Image, args: Sequence[str] | None = None, *, command: Sequence[str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the image to its end (see run_argv); its output captured."""
        return run(self.run_argv(image, args, command=command), check=False, timeout=120)

    def image_config(self, image: Image) -> dict[str, Any]:
        """The image's config (User, Entrypoint, Cmd, Env, ...), as containerd takes it: from the archive."""
        return archive_config(image.archive)


@functools.cache
def archive_config(archive: Path) -> dict[str, Any]:
    """The image config in a docker-archive (its manifest.json names the config file)."""
    with tempfile.TemporaryDirectory() as unpacked:
        run(["tar", "-C", unpacked, "-xf", str(archive), "manifest.json"])
        (manifest,) = json.loads((Path(unpacked) / "manifest.json").read_text())
        run(["tar", "-C", unpacked, "-xf", str(archive), manifest["Config"]])
        config: dict[str, Any] = json.loads((Path(unpacked) / manifest["Config"]).read_text())["config"]
    return config


@contextlib.contextmanager
def private_containerd() -> Iterator[PrivateContainerd]:
    need({"containerd": "containerd", "ctr": "containerd", "runc": "runc"})
    directory = Path(tempfile.mkdtemp(prefix="maestro-containerd-"))
    config = directory / "config.toml"
    config.write_text(
        "version = 2\n"
        f'root = "{directory / "root"}"\nstate = "{directory / "state"}"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{directory / "containerd.sock"}"\n'
        f'[ttrpc]\n  address = "{directory / "containerd.sock.ttrpc"}"\n'
    )
    with (directory / "containerd.log").open("wb") as output:
        process = subprocess.Popen(
            ["containerd", "--config", str(config)],
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    daemon = PrivateContainerd(directory, process)
    try:
        deadline = time.monotonic() + 30
        while daemon.ctr("version", check=False, timeout=10).returncode != 0:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(
                    "the private containerd did not start:\n"
                    + (directory / "containerd.log").read_text()[-2000:]
                )
            time.sleep(0.2)
        yield daemon
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        # Snapshots are overlay mounts under root/: none stays mounted once containers are gone, but be sure.
        for line in reversed(Path("/proc/self/mounts").read_text().splitlines()):
            mountpoint = line.split()[1]
            if mountpoint.startswith(str(directory)):
                subprocess.run(["umount", "-l", mountpoint], check=False)
        shutil.rmtree(directory, ignore_errors=True)


def chart_args() -> list[str]:
    """The container arguments the chart's Deployment passes with its default values (values.yaml), read from
    deploy/manifests/maestro.yaml: the chart rendered with its defaults, kept identical to it by a unit test."""
    documents = (ROOT / "deploy" / "manifests" / "maestro.yaml").read_text().split("\n---")
    (deployment,) = (d for d in documents if re.search(r"^kind: Deployment$", d, re.MULTILINE))
    match = re.search(r"^( +)args:\n((?:\1 *- .*\n)+)", deployment, re.MULTILINE)
    if match is None:
        raise SystemExit("no container args in deploy/manifests/maestro.yaml")
    return [line.strip().removeprefix("- ").strip("\"'") for line in match.group(2).splitlines()]


def check(image: Image) -> None:
    """Run the image as the chart's pod does (user 10001, read-only root filesystem) in a private containerd."""
    with private_containerd() as daemon:
        with step(f"importing {image.archive.name} into a private containerd"):
            daemon.ctr("images", "import", str(image.archive))
        config = daemon.image_config(image)
        log(
            f"image config: User={config.get('User')} Entrypoint={config.get('Entrypoint')} Cmd={config.get('Cmd')}"
        )
        identity = daemon.run_image(
            image, command=["python", "-c", "import os; print(os.getuid(), os.getgid(), os.getgroups())"]
        )
        log(f"  uid, gid and groups in the container: {identity.stdout.strip()}")
        if identity.returncode != 0 or identity.stdout.split()[:2] != ["10001", "10001"]:
            raise SystemExit(f"the image does not run as 10001:10001: {identity.stdout}{identity.stderr}")
        for args in (["--version"], ["run", "--help"], [*chart_args(), "--help"]):
            result = daemon.run_image(image, args)
            shown = " ".join([*config.get("Entrypoint", []), *args])
            if result.returncode != 0:
                raise SystemExit(f"`{shown}` failed ({result.returncode}):\n{result.stdout}{result.stderr}")
            log(f"  {shown}: ok ({result.stdout.strip().splitlines()[0]})")


def prune() -> None:
    for directory in (CACHE_ROOT / "buildah", IMAGE_CACHE):
        if directory.exists():
            for line in reversed(Path("/proc/self/mounts").read_text().splitlines()):
                if line.split()[1].startswith(str(directory)):
                    subprocess.run(["umount", "-l", line.split()[1]], check=False)
            shutil.rmtree(directory)
            log(f"removed {directory}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="image.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build_parser = commands.add_parser("build", help="build (or reuse) the image; print its name and archive")
    build_parser.add_argument("--force", action="store_true", help="rebuild even when the archive is cached")
    build_parser.add_argument("--json", action="store_true")
    path_parser = commands.add_parser("path", help="print the image's name and archive without building")
    path_parser.add_argument("--json", action="store_true")
    import_parser = commands.add_parser("import", help="build (or reuse), then import into a containerd")
    import_parser.add_argument("--address", required=True, help="containerd's socket")
    import_parser.add_argument("--namespace", default="k8s.io", help="containerd namespace (default k8s.io)")
    import_parser.add_argument(
        "--chart-default",
        action="store_true",
        help="also tag it as the image the chart's default values name (repository:appVersion)",
    )
    commands.add_parser(
        "check", help="build (or reuse), then run it as the chart does in a private containerd"
    )
    commands.add_parser("prune", help="remove the buildah storage and the archives")
    args = parser.parse_args(argv)

    if args.command == "prune":
        prune()
        return 0
    if args.command == "path":
        image = planned()
    elif args.command == "import":
        image = import_into(
            args.address, args.namespace, also=[chart_default_name()] if args.chart_default else ()
        )
    else:
        image = build(force=getattr(args, "force", False))
        if args.command == "check":
            check(image)
    sys.stdout.write(image.as_json() + "\n" if getattr(args, "json", False) else image.env())
    return 1 if args.command == "path" and not image.archive.exists() else 0


if __name__ == "__main__":
    raise SystemExit(main())
