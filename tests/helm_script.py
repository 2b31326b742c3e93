"""hack/helm/helm.py loaded as a module (it is a script, not part of the package) for the tests that use helm."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("maestro_hack_helm", ROOT / "hack" / "helm" / "helm.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def binary(script: ModuleType) -> Path:
    """The cached helm, built on first use; without Go the test fails saying so (a skip would hide a gap)."""
    path: Path = script.binary_path()
    if not path.exists():
        if shutil.which("go") is None:
            pytest.fail(
                "helm is not built and Go is not on PATH to build it (install Go; hack/helm/helm.py build)"
            )
        path = script.build()
    return path
