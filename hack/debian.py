"""Debian packages the local tooling needs on the host, installed with apt-get when missing (as root).

A tool is a command on PATH or an absolute path (e.g. a CNI plugin under /usr/lib/cni); each names the Debian
package that provides it. On a fresh machine the package lists are empty, so they are fetched first. Standard
library only, like the scripts that use it (hack/cluster, hack/image).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

Log = Callable[[str], None]


def present(tool: str) -> bool:
    return Path(tool).exists() if tool.startswith("/") else shutil.which(tool) is not None


def _run(argv: list[str], log: Log) -> None:
    log(f"{' '.join(argv)} ...")
    started = time.monotonic()
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{(result.stderr or result.stdout).strip()[-3000:]}")
    log(f"{' '.join(argv[:2])}: done in {time.monotonic() - started:.1f}s")


def need(tools: dict[str, str], log: Log, why: str) -> None:
    """Every tool present afterwards, or SystemExit naming the packages to install."""
    missing = {tool: package for tool, package in tools.items() if not present(tool)}
    if not missing:
        return
    packages = sorted(set(missing.values()))
    if os.geteuid() == 0 and shutil.which("apt-get") is not None:
        log(f"{why} needs {', '.join(packages)}: installing with apt-get")
        if not any(Path("/var/lib/apt/lists").glob("*Packages*")):
            _run(["apt-get", "update"], log)
        _run(["apt-get", "install", "-y", "--no-install-recommends", *packages], log)
    still = [tool for tool in missing if not present(tool)]
    if still:
        raise SystemExit(
            f"{why} needs {', '.join(still)}; on Debian/Ubuntu: apt-get install {' '.join(packages)}"
        )
