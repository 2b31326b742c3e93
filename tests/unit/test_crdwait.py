"""hack/crdwait.py: kubectl's early failure on a CRD just created is asked again; any other failure is not."""

from __future__ import annotations

from pathlib import Path

from tests.scripts import load_script

crdwait = load_script("hack/crdwait.py")

# A stand-in for kubectl: each run appends a line to the log, and the first `fails` runs print `error`.
FAKE_KUBECTL = """#!/bin/sh
echo run >> "{log}"
if [ "$(wc -l < "{log}")" -le {fails} ]; then echo '{error}' >&2; exit 1; fi
echo 'customresourcedefinition.apiextensions.k8s.io/apps.example.com condition met'
"""
ACCESSOR = "error: .status.conditions accessor error: <nil> is of the type <nil>, expected []interface{}"


def fake_kubectl(tmp_path: Path, fails: int, error: str) -> tuple[list[str], Path]:
    log = tmp_path / "runs"
    script = tmp_path / "kubectl"
    script.write_text(FAKE_KUBECTL.format(log=log, fails=fails, error=error))
    script.chmod(0o755)
    return [str(script)], log


def test_the_early_failure_is_asked_again(tmp_path: Path) -> None:
    kubectl, log = fake_kubectl(tmp_path, 2, ACCESSOR)
    waited = crdwait.wait_established(kubectl, "crd/apps.example.com")
    assert waited.returncode == 0 and "condition met" in waited.stdout
    assert len(log.read_text().splitlines()) == 3


def test_another_failure_is_returned_at_once(tmp_path: Path) -> None:
    kubectl, log = fake_kubectl(tmp_path, 5, 'Error from server (NotFound): "apps.example.com" not found')
    waited = crdwait.wait_established(kubectl, "crd/apps.example.com")
    assert waited.returncode == 1 and "NotFound" in waited.stderr
    assert len(log.read_text().splitlines()) == 1


def test_the_early_failure_is_asked_again_only_until_the_timeout(tmp_path: Path) -> None:
    kubectl, _ = fake_kubectl(tmp_path, 1000, ACCESSOR)
    waited = crdwait.wait_established(kubectl, "crd/apps.example.com", timeout=1)
    assert waited.returncode == 1 and "accessor error" in waited.stderr
