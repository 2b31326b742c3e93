"""Every manifest of tests/e2e/invalid_apps.py (which the e2e suite applies to a real API server) is also
rejected offline by `maestro validate`, and the CRD has the rule each one is about."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from maestro.api import crd
from maestro.api import models as api
from tests.scripts import load_script


def _load() -> list[tuple[str, dict[str, Any], str]]:
    module = load_script("tests/e2e/invalid_apps.py")
    apps: list[tuple[str, dict[str, Any], str]] = module.INVALID_APPS
    return apps


INVALID_APPS = _load()


def test_at_least_fifteen_distinct_cases() -> None:
    ids = [case_id for case_id, _, _ in INVALID_APPS]
    assert len(ids) == len(set(ids)) >= 15


@pytest.mark.parametrize(("case_id", "manifest", "expected"), INVALID_APPS, ids=[c[0] for c in INVALID_APPS])
def test_rejected_offline_too(case_id: str, manifest: dict[str, Any], expected: str) -> None:
    with pytest.raises(api.SpecError):
        api.validate_app(manifest["metadata"]["name"], manifest["spec"])


def test_quoted_rule_messages_exist_in_the_crd() -> None:
    text = yaml.safe_dump(crd.crd(), width=10_000)
    for case_id, _, expected in INVALID_APPS:
        if not expected.startswith("spec."):
            assert expected in text, f"{case_id}: no CRD rule says {expected!r}"
