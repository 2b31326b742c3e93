"""The Argo CD health check (deploy/argocd/) run by Debian's Lua 5.1, as Argo CD's gopher-lua would run it.

The object is handed to Lua as a table literal written here (no JSON library in plain Lua); numbers are Lua
numbers (doubles) as in Argo CD. Shared by the unit tests (hand-written objects) and e2e (objects read from
the API server).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
CUSTOMIZATION = ROOT / "deploy" / "argocd" / "resource_customizations" / "maestro.dev" / "MicroserviceApp"
HEALTH_SCRIPT = CUSTOMIZATION / "health.lua"
HARNESS = ROOT / "tests" / "lua" / "argocd_health.lua"
# What Argo CD accepts from a health script (health.HealthStatusCode).
ARGO_HEALTH = frozenset({"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"})


def load_lua_script() -> ModuleType:
    return load_script("hack/lua.py")


def interpreter() -> str:
    """Lua 5.1 (fetched from Debian the first time); the test fails, not skips, when it cannot be had."""
    try:
        return str(load_lua_script().interpreter())
    except SystemExit as error:
        pytest.fail(f"no Lua 5.1 interpreter for the Argo CD health check tests: {error}")


def _lua_string(text: str) -> str:
    out = []
    for byte in text.encode():
        char = chr(byte)
        out.append(char if 32 <= byte < 127 and char not in '"\\' else f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


def to_lua(value: Any) -> str:
    """A Lua expression for a JSON value: objects and arrays become tables, null becomes nil."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _lua_string(value)
    if isinstance(value, list):
        return "{" + ", ".join(to_lua(item) for item in value) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{_lua_string(str(k))}] = {to_lua(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"not a JSON value: {value!r}")


def health(lua: str, obj: dict[str, Any], tmp_path: Path, script: Path = HEALTH_SCRIPT) -> tuple[str, str]:
    """(status, message) that Argo CD would show for `obj`."""
    chunk = tmp_path / "object.lua"
    chunk.write_text("return " + to_lua(obj) + "\n")
    result = subprocess.run(
        [lua, str(HARNESS), str(script), str(chunk)], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, f"the health script failed on {obj!r}:\n{result.stderr}"
    status, _, message = result.stdout.partition("\n")
    assert status in ARGO_HEALTH, f"not an Argo CD health status: {status!r}"
    return status, message
