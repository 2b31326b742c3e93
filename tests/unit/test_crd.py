"""crd.py: the committed CRD is current, structural, and documented."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

from maestro.api import crd

from .helpers import ROOT


def walk(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every (path, schema) node of an OpenAPI schema."""
    yield path, schema
    for name, child in schema.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            yield from walk(schema[key], f"{path}[{key}]")


def schema() -> dict[str, Any]:
    result: dict[str, Any] = crd.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return result


def test_committed_crd_is_current() -> None:
    committed = (ROOT / crd.CRD_PATH).read_text()
    assert committed == crd.crd_yaml(), f"{crd.CRD_PATH} is stale: regenerate it with `{crd.REGENERATE}`"


def test_names_and_printer_columns() -> None:
    spec = crd.crd()["spec"]
    assert crd.crd()["metadata"]["name"] == "microserviceapps.maestro.dev"
    assert spec["names"]["shortNames"] == ["msa"]
    assert spec["names"]["categories"] == ["maestro"]
    version = spec["versions"][0]
    assert version["subresources"] == {"status": {}}
    assert [(c["name"], c["jsonPath"]) for c in version["additionalPrinterColumns"]] == [
        ("Ready", ".status.readyServices"),
        ("Phase", ".status.phase"),
        ("Age", ".metadata.creationTimestamp"),
    ]


def test_structural_no_refs_no_anyof_no_nulls() -> None:
    text = yaml.safe_dump(schema())
    for forbidden in ("$ref", "anyOf", "allOf", "oneOf", "$defs", "title", "'null'", "uniqueItems"):
        assert forbidden not in text, forbidden
    for path, node in walk(schema()):
        has_type = "type" in node
        assert has_type or node.get("x-kubernetes-int-or-string") or path == "", f"{path} has no type"
        assert not ("properties" in node and "additionalProperties" in node), path
        assert node.get("default", 0) is not None, path


def test_every_property_has_a_description() -> None:
    missing = [
        path
        for path, node in walk(schema())
        if path and "[" not in path.rsplit(".", 1)[-1] and path != ".metadata" and not node.get("description")
    ]
    assert missing == []


def test_cel_iterated_lists_and_strings_are_bounded() -> None:
    spec = schema()["properties"]["spec"]
    services = spec["properties"]["services"]
    assert services["maxItems"] == 50
    service = services["items"]["properties"]
    assert service["name"]["maxLength"] == 63
    assert service["ports"]["maxItems"] == 20
    assert service["dependsOn"]["maxItems"] == 20
    assert service["dependsOn"]["items"]["maxLength"] == 63
    assert services["x-kubernetes-list-type"] == "map"
    assert services["x-kubernetes-list-map-keys"] == ["name"]


def test_cel_rules_present() -> None:
    rules = [v["rule"] for _, node in walk(schema()) for v in node.get("x-kubernetes-validations", [])]
    text = "\n".join(rules)
    for fragment in (
        "exists_one(t, t.name == s.name)",
        "q.port == p.port",
        "self.minReplicas <= self.maxReplicas",
        "s.dependsOn.all(d, self.services.exists(t, t.name == d) || (has(self.jobs) && self.jobs.exists(",
        "!(self.name in self.dependsOn)",
        "size(self.metadata.name) + size(s.name) <= 62",
        "size(self.metadata.name) + size(j.name) <= 51",
        "self.jobs.all(j, !self.services.exists(s, s.name == j.name))",
        "!self.jobs.exists(j, j.name == d && has(j.schedule))",
    ):
        assert fragment in text, fragment


def test_int_or_string_and_free_form_fields() -> None:
    service = schema()["properties"]["spec"]["properties"]["services"]["items"]["properties"]
    assert service["rollout"]["properties"]["maxSurge"]["x-kubernetes-int-or-string"] is True
    assert service["readinessProbe"]["x-kubernetes-preserve-unknown-fields"] is True
    assert service["volumes"]["items"]["x-kubernetes-preserve-unknown-fields"] is True
    assert service["volumes"]["items"]["required"] == ["name"]
    assert service["ports"]["items"]["properties"]["protocol"]["default"] == "TCP"


def test_status_defaults_to_generation_zero() -> None:
    """A new app, before the operator's first pass, reads as behind its generation (kstatus: InProgress)."""
    status = crd.openapi_schema()["properties"]["status"]
    assert status["default"] == {}
    assert status["properties"]["observedGeneration"]["default"] == 0
    assert "kopf" not in status["properties"], "kopf writes nothing to apps any more"
