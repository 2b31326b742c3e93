"""`go build` with progress, shared by the scripts that build third-party tools from their Go modules.

Used by hack/cluster/cluster.py (the control plane) and hack/helm/helm.py (helm). Standard library only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPORT_EVERY = 30.0  # seconds between progress lines


def go_build(
    label: str,
    module_dir: Path,
    packages: Sequence[str],
    output: Path,
    ldflags: str,
    log: Callable[[str], None],
) -> None:
    """Build `packages` of the Go module in `module_dir` into `output` (a file, or an existing directory).

    One `go build` for all packages so the compiler shares work across them; `-v` names each package as it is
    compiled, which gives the progress count. `go list -deps` first fetches just the modules needed (not the
    whole graph's test dependencies).
    """
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly -buildvcs=false"}
    log(f"resolving {label}'s packages (downloads Go modules the first time; the Go module cache keeps them)")
    listed = subprocess.run(
        ["go", "list", "-deps", *packages],
        cwd=module_dir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if listed.returncode != 0:
        sys.stderr.write(listed.stderr)
        raise SystemExit(f"go list failed for {label}")
    total = len(listed.stdout.split())
    log(f"compiling {label}: {total} Go packages (minutes on 2 cores the first time; cached afterwards)")
    cmd = ["go", "build", "-v", "-trimpath", f"-ldflags={ldflags}", "-o", str(output), *packages]
    started = last_report = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=module_dir, env=env, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    compiled, errors = 0, []
    for line in proc.stderr:
        if line.startswith(("#", " ", "\t")) or ":" in line:
            errors.append(line)
        else:
            compiled += 1
        if time.monotonic() - last_report > REPORT_EVERY:
            elapsed = int(time.monotonic() - started)
            log(
                f"  {label}: {compiled}/{total} packages compiled, {elapsed // 60}m{elapsed % 60:02d}s so far"
            )
            last_report = time.monotonic()
    if proc.wait() != 0:
        sys.stderr.write("".join(errors[-50:]))
        raise SystemExit(f"go build failed for {label}")
    log(f"  {label}: built in {int(time.monotonic() - started)}s")
