"""The CRD's CEL rules (x-kubernetes-validations), evaluated offline with cel-python: they compile, every
example and every generated valid app passes them, and each CEL case of tests/e2e/invalid_apps.py fails the
rule it is about, with the field path the API server will report."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import celpy
import celpy.adapter
import pytest
from hypothesis import given, settings

from maestro.api import crd

from .helpers import EXAMPLES, example_app
from .test_invalid_apps import INVALID_APPS
from .test_properties import apps

# The invalid manifests that only a CEL rule rejects (the others are rejected by the OpenAPI schema).
CEL_CASES = {
    "duplicate-service-names",
    "duplicate-port-numbers",
    "min-replicas-above-max",
    "depends-on-unknown-service",
    "depends-on-itself",
    "replicas-and-autoscaling",
    "config-from-both",
    "config-from-neither",
    "env-value-and-value-from",
    "pdb-min-and-max",
    "child-name-too-long",
    "app-name-starts-with-digit",
    "job-named-like-a-service",
    "job-depends-on-unknown-name",
    "depends-on-a-scheduled-job",
    "job-depends-on-itself",
    "time-zone-without-schedule",
    "job-child-name-too-long",
}

_ENV = celpy.Environment()


@functools.cache
def _program(rule: str) -> Any:
    return _ENV.program(_ENV.compile(rule))


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = crd.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def _located(schema: dict[str, Any], value: Any, path: str) -> Iterator[tuple[str, dict[str, Any], Any]]:
    """(path, schema node, value) for every value of the object that has a schema node."""
    yield path, schema, value
    if isinstance(value, dict):
        for name, child in schema.get("properties", {}).items():
            if name in value:
                yield from _located(child, value[name], f"{path}.{name}" if path else name)
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            yield from _located(schema["items"], item, f"{path}[{index}]")


def failures(obj: dict[str, Any]) -> list[str]:
    """`path: message` for every CEL rule the object breaks, as the API server would report it."""
    result = []
    for path, node, value in _located(_schema(), obj, ""):
        for validation in node.get("x-kubernetes-validations", []):
            if not _program(validation["rule"]).evaluate({"self": celpy.adapter.json_to_cel(value)}):
                where = path + validation.get("fieldPath", "")
                result.append(f"{where.lstrip('.')}: {validation['message']}")
    return result


def _rules(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        yield from (v["rule"] for v in node.get("x-kubernetes-validations", []))
        for child in node.values():
            yield from _rules(child)


def test_every_rule_compiles() -> None:
    rules = list(_rules(_schema()))
    assert len(rules) >= 14
    for rule in rules:
        _program(rule)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_pass_every_rule(path: Any) -> None:
    assert failures(example_app(path)) == []


def test_cel_cases_are_invalid_apps() -> None:
    assert {case_id for case_id, _, _ in INVALID_APPS} >= CEL_CASES


@pytest.mark.parametrize(
    ("case_id", "manifest", "expected"),
    [case for case in INVALID_APPS if case[0] in CEL_CASES],
    ids=[case[0] for case in INVALID_APPS if case[0] in CEL_CASES],
)
def test_cel_cases_fail_the_rule_they_are_about(
    case_id: str, manifest: dict[str, Any], expected: str
) -> None:
    found = failures(manifest)
    assert any(expected in line for line in found), found


@settings(max_examples=25, deadline=None)
@given(apps())
def test_generated_valid_apps_pass_every_rule(app: dict[str, Any]) -> None:
    assert failures(app) == []
