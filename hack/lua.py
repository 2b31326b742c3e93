#!/usr/bin/env python3
"""Get a Lua 5.1 interpreter from Debian for the tests of the Argo CD health check (deploy/argocd/).

Argo CD runs health checks with gopher-lua, which implements Lua 5.1: the tests use Debian's `lua5.1` package
for the same semantics. In order:

1. `lua5.1` on PATH;
2. the cached copy in `~/.cache/maestro/lua5.1-<version>/` (`MAESTRO_CACHE` moves the cache);
3. `apt-get download lua5.1 liblua5.1-0` and `dpkg -x` into the cache: no root needed (as root, an
   `apt-get update` first when the package lists are empty, as on a fresh CI machine);
4. as root, `apt-get install -y lua5.1`.

It fails loudly when none works: the tests must not silently lose their interpreter.

    lua.py build      find or fetch the interpreter; prints the command to run it
    lua.py -- ARGS    run the interpreter with ARGS

Only the standard library is used.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

CACHE_ROOT = Path(os.environ.get("MAESTRO_CACHE", Path.home() / ".cache" / "maestro"))
PACKAGES = ("lua5.1", "liblua5.1-0")
WRAPPER = "lua5.1"  # a shell script in the cache directory that runs the extracted binary with its library


def log(message: str) -> None:
    print(f"[lua {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def is_lua51(command: str) -> bool:
    try:
        result = subprocess.run([command, "-v"], capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return False
    return result.returncode == 0 and (result.stdout + result.stderr).startswith("Lua 5.1")


def _run(argv: list[str], what: str) -> bool:
    log(f"{what}: {' '.join(argv)}")
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        log(f"  failed ({result.returncode}): {(result.stderr or result.stdout).strip()[-500:]}")
    return result.returncode == 0


def _candidate_version() -> str | None:
    result = subprocess.run(["apt-cache", "policy", PACKAGES[0]], capture_output=True, text=True, check=False)
    for line in result.stdout.splitlines():
        key, _, value = line.strip().partition(":")
        if key == "Candidate" and value.strip() not in ("", "(none)"):
            return value.strip()
    return None


def _cached() -> list[Path]:
    return sorted(CACHE_ROOT.glob(f"lua5.1-*/{WRAPPER}"))


def fetch() -> Path | None:
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        log("apt-get/dpkg not found: this is not a Debian-like machine")
        return None
    version = _candidate_version()
    if version is None and os.geteuid() == 0:
        _run(["apt-get", "update"], "no package lists yet (fresh machine): updating them")
        version = _candidate_version()
    if version is None:
        log("apt knows no lua5.1 package (as root, `apt-get update` would fetch the lists)")
        return None
    target = CACHE_ROOT / f"lua5.1-{version}"
    staging = target.with_name(f"{target.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        log(f"fetching Debian's lua5.1 {version} into {target} (no root needed)")
        download = subprocess.run(
            ["apt-get", "download", *(f"{p}={version}" for p in PACKAGES)],
            cwd=staging,
            capture_output=True,
            text=True,
            check=False,
        )
        if download.returncode != 0:
            log(f"  apt-get download failed: {download.stderr.strip()[-500:]}")
            return None
        root = staging / "root"
        for deb in sorted(staging.glob("*.deb")):
            if not _run(["dpkg", "-x", str(deb), str(root)], f"unpacking {deb.name}"):
                return None
        binary = root / "usr" / "bin" / "lua5.1"
        libdirs = sorted({str(p.parent) for p in root.glob("usr/lib/**/liblua5.1.so*")})
        wrapper = staging / WRAPPER
        wrapper.write_text(
            "#!/bin/sh\n# Debian's lua5.1, unpacked by hack/lua.py (not installed system-wide).\n"
            f'LD_LIBRARY_PATH="{":".join(libdirs)}${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}" '
            f'exec "{target / "root" / "usr" / "bin" / "lua5.1"}" "$@"\n'
        )
        wrapper.chmod(0o755)
        if not binary.exists():
            log(f"  {binary} is not in the packages")
            return None
        try:
            staging.rename(target)  # atomic: the cache directory is complete or absent
        except OSError:  # another fetch finished first
            if not (target / WRAPPER).exists():
                raise
        return target / WRAPPER
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def install() -> str | None:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    log("installing lua5.1 with apt-get (root)")
    result = subprocess.run(["apt-get", "install", "-y", "lua5.1"], env=env, check=False)
    return shutil.which("lua5.1") if result.returncode == 0 else None


def interpreter() -> str:
    """The command that runs Lua 5.1; fetches it the first time. Raises SystemExit when it cannot."""
    on_path = shutil.which("lua5.1")
    if on_path and is_lua51(on_path):
        return on_path
    for wrapper in reversed(_cached()):
        if is_lua51(str(wrapper)):
            return str(wrapper)
    started = time.monotonic()
    fetched = fetch()
    if fetched is not None and is_lua51(str(fetched)):
        log(f"got Debian's lua5.1 in {time.monotonic() - started:.1f}s: {fetched}")
        return str(fetched)
    installed = install()
    if installed and is_lua51(installed):
        return installed
    raise SystemExit(
        "no Lua 5.1 interpreter: lua5.1 is not on PATH and Debian's package could not be fetched "
        "(apt-get download lua5.1 liblua5.1-0) nor installed. On Debian/Ubuntu: apt-get install lua5.1"
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["build"]:
        print(interpreter())
        return 0
    if argv[:1] == ["--"]:
        return subprocess.call([interpreter(), *argv[1:]])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
