"""`kubectl wait` for a CRD to be Established, for the scripts and the tests that install CRDs (hack/demo.py,
hack/cluster, tests/e2e). Standard library only, like the scripts that use it.

Right after its creation a CRD's status has no conditions yet, and kubectl then fails at once
(".status.conditions accessor error") instead of waiting: that failure, and only it, is asked again.
"""

from __future__ import annotations

import subprocess
import time


def wait_established(kubectl: list[str], crd: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`kubectl` (the command and its flags, e.g. --kubeconfig) waiting for `crd` (crd/NAME or a file) to be
    Established: the last run, which failed when its return code is not 0."""
    deadline = time.monotonic() + timeout
    argv = [*kubectl, "wait", "--for=condition=Established", f"--timeout={int(timeout)}s", crd]
    while True:
        waited = subprocess.run(argv, capture_output=True, text=True)
        if waited.returncode == 0 or "accessor error" not in waited.stderr or time.monotonic() > deadline:
            return waited
        time.sleep(0.5)
