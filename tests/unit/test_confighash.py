"""confighash.py: stable, order-independent, missing differs from empty."""

from __future__ import annotations

from maestro.api import models as api
from maestro.render import confighash


def test_stable_and_order_independent() -> None:
    a = {"configmap/app": {"b": "2", "a": "1"}, "secret/db": {"password": "cHc="}}
    b = {"secret/db": {"password": "cHc="}, "configmap/app": {"a": "1", "b": "2"}}
    assert confighash.config_hash(a) == confighash.config_hash(b)
    assert len(confighash.config_hash(a)) == 64


def test_data_change_changes_hash() -> None:
    before = confighash.config_hash({"configmap/app": {"a": "1"}})
    assert before != confighash.config_hash({"configmap/app": {"a": "2"}})


def test_missing_object_is_deterministic_and_differs_from_empty() -> None:
    missing = confighash.config_hash({"configmap/app": None})
    assert missing == confighash.config_hash({"configmap/app": None})
    assert missing != confighash.config_hash({"configmap/app": {}})


def test_configmap_and_secret_of_same_name_differ() -> None:
    key_cm = confighash.source_key("ConfigMap", "x")
    key_secret = confighash.source_key("Secret", "x")
    assert key_cm == "configmap/x"
    assert confighash.config_hash({key_cm: {"k": "v"}}) != confighash.config_hash({key_secret: {"k": "v"}})


def test_no_sources_hash_is_fixed() -> None:
    assert confighash.config_hash({}) == confighash.config_hash({})


def test_referenced_are_config_from_then_mounted_ones_once_each() -> None:
    settings = api.ServiceSpec.model_validate(
        {
            "name": "web",
            "image": "registry.example.com/web:1",
            "configFrom": [{"configMap": "web-config"}, {"secret": "web-secret"}],
            "volumes": [
                {"name": "files", "configMap": {"name": "web-config"}},  # also in configFrom: counted once
                {"name": "tls", "secret": {"secretName": "web-tls"}},
                {"name": "scratch", "emptyDir": {}},
                {"name": "p", "projected": {"sources": [{"secret": {"name": "token"}}, {"downwardAPI": {}}]}},
            ],
        }
    )
    assert confighash.referenced(settings) == [
        ("ConfigMap", "web-config"),
        ("Secret", "web-secret"),
        ("Secret", "web-tls"),
        ("Secret", "token"),
    ]


def test_a_volume_without_config_references_nothing() -> None:
    assert confighash.volume_sources({"name": "data", "persistentVolumeClaim": {"claimName": "x"}}) == []
    assert confighash.volume_sources({"name": "bad", "configMap": {}}) == []
