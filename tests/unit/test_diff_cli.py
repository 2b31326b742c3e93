"""`maestro diff` without a cluster to talk to: one line and exit 2 (kubectl diff's "an error"), never a traceback.
Its decisions are tests/unit/test_preview.py's; against a real API server, tests/e2e/test_diff.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from maestro.cli import main as cli

from .helpers import app

KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: nowhere, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: me, user: {token: t}}]
contexts: [{name: nowhere, context: {cluster: nowhere, user: me, namespace: prod}}]
current-context: nowhere
"""


def run(capsys: pytest.CaptureFixture[str], tmp_path: Path, *argv: str) -> tuple[int, str, str]:
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(app()))
    code = cli.main(["diff", "-f", str(path), *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_a_kubeconfig_that_does_not_exist(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run(capsys, tmp_path, "--kubeconfig", str(tmp_path / "missing"))
    assert (code, out) == (2, "")
    assert err.startswith("maestro diff: cannot load the kubeconfig") and err.count("\n") == 1


def test_a_cluster_that_cannot_be_reached(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(KUBECONFIG)
    code, out, err = run(capsys, tmp_path, "--kubeconfig", str(config))
    assert (code, out) == (2, "")
    assert err.startswith("maestro diff: shop: ") and err.count("\n") == 1


def test_an_unreadable_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = cli.main(["diff", "-f", str(tmp_path / "none.yaml")])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err.startswith("maestro diff: ") and "cannot read" in err
