"""hack/helm/helm.py loaded as a module (it is a script, not part of the package) for the tests that use helm."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import ModuleType

import pytest

from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[1]


def load() -> ModuleType:
    return load_script("hack/helm/helm.py")


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
