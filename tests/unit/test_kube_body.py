"""The apply patch body (kube.apply_body): the API server parses it as YAML, so any string must come back
unchanged from a YAML parser. Found by tests/faults/test_fuzz.py: an emoji (escaped surrogate pair) and C1
control characters (raw) made the API server reject the patch, and the app went Invalid (ChildRejected)."""

from __future__ import annotations

import json

import yaml
from hypothesis import given
from hypothesis import strategies as st

from maestro.kube import client as kube


@given(st.text())
def test_any_string_survives_a_yaml_parser(value: str) -> None:
    obj = {"env": [{"name": "A", "value": value}]}
    assert yaml.safe_load(kube.apply_body(obj).decode()) == obj


def test_unprintable_and_line_break_characters_stay_escaped() -> None:
    body = kube.apply_body({"v": "\x7f\x85\x9f\u2028\u2029\ufeff 👋 é"}).decode()
    assert "\\u007f\\u0085\\u009f\\u2028\\u2029\\ufeff 👋 é" in body
    assert json.loads(body) == {"v": "\x7f\x85\x9f\u2028\u2029\ufeff 👋 é"}
