#!/usr/bin/env python3
"""Build helm from its Go module and run it; render the plain manifests from the chart.

helm is pinned in `hack/helm/gomod/go.mod` (a `tool` directive) and built with the Go module proxy only, like the
local control plane (hack/cluster/cluster.py). The binary is cached outside the repository in
`~/.cache/maestro/helm-<version>/helm` (`MAESTRO_CACHE` moves the cache) and rebuilt only when the pin changes.

    helm.py build                 build (or reuse) the cached binary; prints its path
    helm.py path                  print where the binary is (or would be) cached
    helm.py manifests             regenerate deploy/manifests/ from the chart (`helm template`)
    helm.py manifests --check     exit 1 when deploy/manifests/ differs from the chart's output
    helm.py -- ARGS...            run helm with ARGS

Only the standard library is used.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # hack/: the shared gobuild module
import gobuild  # noqa: E402

ROOT = HERE.parent.parent
GOMOD = HERE / "gomod"
PACKAGE = "helm.sh/helm/v4/cmd/helm"
MODULE = "helm.sh/helm/v4"
CACHE_ROOT = Path(os.environ.get("MAESTRO_CACHE", Path.home() / ".cache" / "maestro"))
CHART = ROOT / "deploy" / "helm" / "maestro"
MANIFESTS = ROOT / "deploy" / "manifests"
# The plain manifests are the chart rendered with its defaults (cluster-wide mode) into this namespace.
RELEASE = "maestro"
NAMESPACE = "maestro-system"
GENERATED = "maestro.yaml"
HEADER = (
    "# Generated from deploy/helm/maestro by `python hack/helm/helm.py manifests`; do not edit.\n"
    "# A unit test (tests/unit/test_deploy.py) fails when this drifts from the chart.\n"
)


def log(message: str) -> None:
    print(f"[helm {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def helm_version() -> str:
    for line in (GOMOD / "go.mod").read_text().splitlines():
        words = line.split()
        if MODULE in words:
            return words[words.index(MODULE) + 1]
    raise SystemExit(f"{MODULE} is not required in {GOMOD / 'go.mod'}")


def cache_dir() -> Path:
    """Keyed by the release and a digest of the pins, so any change of go.mod/go.sum rebuilds."""
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum"):
        digest.update((GOMOD / name).read_bytes())
    return CACHE_ROOT / f"helm-{helm_version()}-{digest.hexdigest()[:12]}"


def binary_path() -> Path:
    return cache_dir() / "helm"


def build() -> Path:
    target = binary_path()
    if target.exists():
        return target
    if shutil.which("go") is None:
        raise SystemExit("Go is needed to build helm (https://go.dev/dl); it is not on PATH.")
    version = helm_version()
    started = time.monotonic()
    # Per process, so that two builds at once (e.g. two test runs) do not share a half-written directory.
    staging = target.parent.with_name(f"{target.parent.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    ldflags = f"-s -w -X helm.sh/helm/v4/internal/version.version={version}"
    gobuild.go_build(f"helm {version}", GOMOD, [PACKAGE], staging / "helm", ldflags, log)
    try:
        staging.rename(target.parent)  # atomic: the cache directory is either complete or absent
    except OSError:  # another build finished first: its binary is as good
        shutil.rmtree(staging, ignore_errors=True)
        if not target.exists():
            raise
    log(f"built helm {version} in {int(time.monotonic() - started)}s into {target}")
    return target


def helm(*args: str) -> str:
    result = subprocess.run([str(build()), *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        raise SystemExit(f"helm {' '.join(args)} failed")
    return result.stdout


def render_manifests() -> str:
    """The chart with its default values, as `kubectl apply -k deploy/manifests` installs it."""
    rendered = helm(
        "template",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--include-crds",
        "--set",
        "namespace.create=true",
    )
    return HEADER + rendered


def manifests(check: bool) -> int:
    path = MANIFESTS / GENERATED
    wanted = render_manifests()
    if check:
        if not path.exists() or path.read_text() != wanted:
            print(f"{path} is out of date: run `python hack/helm/helm.py manifests`", file=sys.stderr)
            return 1
        return 0
    MANIFESTS.mkdir(parents=True, exist_ok=True)
    path.write_text(wanted)
    log(f"wrote {path.relative_to(ROOT)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--":
        return subprocess.call([str(build()), *argv[1:]])
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build (or reuse) the cached helm binary")
    sub.add_parser("path", help="print where the helm binary is cached")
    gen = sub.add_parser("manifests", help="regenerate deploy/manifests from the chart")
    gen.add_argument("--check", action="store_true", help="only report drift")
    args = parser.parse_args(argv)
    if args.command == "build":
        print(build())
    elif args.command == "path":
        print(binary_path())
    elif args.command == "manifests":
        return manifests(args.check)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
