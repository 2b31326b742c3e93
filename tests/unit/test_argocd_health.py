"""The Argo CD health check for MicroserviceApp (deploy/argocd/) on hand-written objects, run by Debian's Lua 5.1.

The cases are Argo CD's own test format (health_test.yaml + testdata/), so the customization can be
contributed upstream as is. tests/e2e/test_gitops.py runs the same script on objects the operator wrote.
"""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests import argocd_health
from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]
CASES = yaml.safe_load((argocd_health.CUSTOMIZATION / "health_test.yaml").read_text())["tests"]


@pytest.fixture(scope="module")
def lua() -> str:
    return argocd_health.interpreter()


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _hack_argocd() -> ModuleType:
    return load_script("hack/argocd.py")


def test_interpreter_is_lua_5_1(lua: str) -> None:
    result = subprocess.run([lua, "-v"], capture_output=True, text=True, check=True)
    assert (result.stdout + result.stderr).startswith("Lua 5.1")


@pytest.mark.parametrize("case", CASES, ids=[Path(c["inputPath"]).stem for c in CASES])
def test_health_test_yaml_cases(case: dict[str, Any], lua: str, tmp_path: Path) -> None:
    obj = _load(argocd_health.CUSTOMIZATION / case["inputPath"])
    expected = case["healthStatus"]
    assert argocd_health.health(lua, obj, tmp_path) == (expected["status"], expected["message"])


def test_every_testdata_file_is_a_case() -> None:
    listed = {c["inputPath"] for c in CASES}
    files = {f"testdata/{p.name}" for p in (argocd_health.CUSTOMIZATION / "testdata").glob("*.yaml")}
    assert listed == files


def test_every_status_that_status_py_writes_has_a_case() -> None:
    phases = {
        (_load(argocd_health.CUSTOMIZATION / c["inputPath"]).get("status") or {}).get("phase") for c in CASES
    }
    assert {"Pending", "Progressing", "Ready", "Degraded", "Invalid", None} <= phases


def test_stale_generation_wins_over_any_phase(lua: str, tmp_path: Path) -> None:
    # Whatever the old status says (even Degraded), a newer spec is Progressing until observed.
    for name in ("ready", "degraded", "invalid_spec"):
        obj = _load(argocd_health.CUSTOMIZATION / "testdata" / f"{name}.yaml")
        obj["metadata"]["generation"] += 1
        state, message = argocd_health.health(lua, obj, tmp_path)
        assert state == "Progressing", name
        assert message.startswith("Waiting for the Maestro operator to observe generation"), message


def test_message_text_survives_quotes_and_non_ascii(lua: str, tmp_path: Path) -> None:
    obj = copy.deepcopy(_load(argocd_health.CUSTOMIZATION / "testdata" / "degraded.yaml"))
    text = 'db: ReplicaSet "x" \\ timed out — ünïcode'
    for c in obj["status"]["conditions"]:
        c["message"] = text
    assert argocd_health.health(lua, obj, tmp_path) == ("Degraded", text)


def test_embedded_copies_match_the_script() -> None:
    lua_text = argocd_health.HEALTH_SCRIPT.read_text()
    assert _hack_argocd().main(["--check"]) == 0, "run `python hack/argocd.py`"
    key = "resource.customizations.health.maestro.dev_MicroserviceApp"
    configmap = _load(ROOT / "deploy" / "argocd" / "argocd-cm.yaml")
    assert (configmap["kind"], configmap["metadata"]["name"]) == ("ConfigMap", "argocd-cm")
    assert configmap["data"][key] == lua_text
    assert _load(ROOT / "deploy" / "argocd" / "argo-cd-values.yaml")["configs"]["cm"][key] == lua_text
