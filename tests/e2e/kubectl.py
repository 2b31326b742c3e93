"""A small kubectl wrapper for tests: what a user would type, always against the test cluster's kubeconfig."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.scripts import load_script

crdwait = load_script("hack/crdwait.py")  # the scripts' wait for a CRD, shared


class KubectlError(AssertionError):
    def __init__(self, args: list[str], result: subprocess.CompletedProcess[str]) -> None:
        super().__init__(f"kubectl {' '.join(args)} exited {result.returncode}:\n{result.stderr.strip()}")
        self.stderr = result.stderr
        self.returncode = result.returncode


@dataclass(frozen=True)
class Kubectl:
    binary: str
    kubeconfig: Path
    namespace: str | None = None

    def in_namespace(self, namespace: str) -> Kubectl:
        return Kubectl(self.binary, self.kubeconfig, namespace)

    def run(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        argv = [self.binary, f"--kubeconfig={self.kubeconfig}"]
        if self.namespace:
            argv.append(f"--namespace={self.namespace}")
        result = subprocess.run([*argv, *args], input=stdin, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise KubectlError(list(args), result)
        return result

    def __call__(self, *args: str, stdin: str | None = None) -> str:
        return self.run(*args, stdin=stdin).stdout

    def wait_established(self, crd: str) -> None:
        """`kubectl wait` for a CRD to be Established (hack/crdwait.py)."""
        waited = crdwait.wait_established([self.binary, f"--kubeconfig={self.kubeconfig}"], crd)
        if waited.returncode != 0:
            raise KubectlError(["wait", "--for=condition=Established", crd], waited)

    def apply(self, *manifests: dict[str, Any], server_side: bool = False) -> str:
        flags = ["--server-side", "--field-manager=e2e-user"] if server_side else []
        return self("apply", *flags, "-f", "-", stdin=yaml.safe_dump_all(manifests))

    def try_apply(self, manifest: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        return self.run("apply", "-f", "-", stdin=yaml.safe_dump(manifest), check=False)

    def get(self, kind: str, name: str | None = None, *, selector: str | None = None) -> Any:
        """One object as a dict, a list's items, or None when the named object does not exist."""
        args = ["get", kind, "-o", "json"]
        if name:
            args.insert(2, name)
        if selector:
            args += ["-l", selector]
        result = self.run(*args, check=False)
        if result.returncode != 0:
            if "NotFound" in result.stderr or "not found" in result.stderr:
                return None
            raise KubectlError(args, result)
        data = json.loads(result.stdout)
        return data["items"] if name is None else data
