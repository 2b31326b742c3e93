"""cli/main.py in-process: exit codes, one line per error, never a traceback."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml

from maestro.api import crd
from maestro.cli import main as cli

from .helpers import EXAMPLES, app, svc


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def write(tmp_path: Path, content: str) -> str:
    path = tmp_path / "app.yaml"
    path.write_text(content)
    return str(path)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("maestro ")


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys)
    assert code == 2 and "render" in err and "validate" in err


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_validate_and_render_examples(capsys: pytest.CaptureFixture[str], path: Path) -> None:
    code, out, _ = run(capsys, "validate", "-f", str(path))
    assert code == 0 and out.endswith(": valid\n")
    code, out, _ = run(capsys, "render", "-f", str(path))
    assert code == 0
    docs = list(yaml.safe_load_all(out))
    assert docs and all(
        doc["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "maestro" for doc in docs
    )
    assert all("ownerReferences" not in doc["metadata"] for doc in docs)


def test_validate_reports_one_line_per_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = app(svc("web", ports=[{"name": "http", "port": 70000}]), svc("api", dependsOn=["web"]))
    bad["spec"]["services"][1]["replicas"] = "two"
    code, _, err = run(capsys, "validate", "-f", write(tmp_path, yaml.safe_dump(bad)))
    assert code == 1
    assert err.splitlines() == [
        "spec.services[0].ports[0].port: must be between 1 and 65535",
        "spec.services[1].replicas: Input should be a valid integer, unable to parse string as an integer",
    ]


def test_validate_rule_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = app(svc("a", dependsOn=["b"]), svc("b", dependsOn=["a"]))
    code, _, err = run(capsys, "validate", "-f", write(tmp_path, yaml.safe_dump(bad)))
    assert code == 1
    assert err == "spec.services[0].dependsOn: dependency cycle: a -> b -> a\n"


def test_render_invalid_app_fails_without_output(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = app(svc("web", dependsOn=["ghost"]))
    code, out, err = run(capsys, "render", "-f", write(tmp_path, yaml.safe_dump(bad)))
    assert code == 1 and out == ""
    assert "spec.services[0].dependsOn[0]: unknown service or job 'ghost'" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("services: [\n  - {name: web", "not valid YAML (line"),
        ("", "no MicroserviceApp in the file"),
        ("- 1\n- 2\n", "document 1: not an object"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", "no MicroserviceApp in the file"),
        (
            "apiVersion: maestro.dev/v1\nkind: MicroserviceApp\n",
            "expected apiVersion maestro.dev/v1alpha1 and kind MicroserviceApp",
        ),
        ("kind: MicroserviceApp\n", "expected apiVersion maestro.dev/v1alpha1 and kind MicroserviceApp"),
    ],
)
def test_bad_files_are_one_line_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str, message: str
) -> None:
    for command in ("validate", "render"):
        code, _, err = run(capsys, command, "-f", write(tmp_path, content))
        assert code == 1
        assert message in err and len(err.splitlines()) == 1


def test_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "validate", "-f", str(tmp_path / "nope.yaml"))
    assert code == 1 and "cannot read" in err


def test_missing_metadata_name_and_spec(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(tmp_path, "apiVersion: maestro.dev/v1alpha1\nkind: MicroserviceApp\nmetadata: {}\n")
    code, _, err = run(capsys, "validate", "-f", path)
    assert code == 1 and err == "metadata.name: required value\n"
    path = write(tmp_path, "apiVersion: maestro.dev/v1alpha1\nkind: MicroserviceApp\nmetadata: {name: x}\n")
    code, _, err = run(capsys, "validate", "-f", path)
    assert code == 1 and err.startswith("spec: required value")


def test_render_from_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(yaml.safe_dump(app(svc("web")))))
    code, out, _ = run(capsys, "render", "-f", "-")
    assert code == 0
    assert [doc["kind"] for doc in yaml.safe_load_all(out)] == ["Deployment", "Service", "NetworkPolicy"]


def test_crd_command_prints_the_crd(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "crd")
    assert code == 0 and out == crd.crd_yaml()
