"""Offline Kubernetes OpenAPI validation with kubernetes-validate's bundled schemas, one validator per kind.

`kubernetes_validate.validate` re-reads the (large) schema files on every call; the property tests validate
hundreds of objects, so the validators are built once here from the same files, with the same semantics
(strict schemas: unknown fields are errors).
"""

from __future__ import annotations

import functools
import re
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate
import referencing
from kubernetes_validate import utils

VERSION = "1.37"


def schema_version() -> str:
    """The newest bundled schema version not newer than VERSION (1.37 when the package ships it)."""
    return str([v for v in utils.all_versions() if utils.major_minor(v) <= VERSION][-1])


@functools.cache
def _validator(kind: str, api_version: str) -> jsonschema.protocols.Validator:
    schema_dir = f"v{schema_version()}-local-strict"
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema = utils.schema_contents(
        f"kubernetes-json-schema/{schema_dir}/{kind.lower()}-{group_version}.json", VERSION
    )
    definitions = utils.schema_contents(f"kubernetes-json-schema/{schema_dir}/_definitions.json", VERSION)
    registry: referencing.Registry[Any] = referencing.Resource.from_contents(schema) @ referencing.Registry()
    registry = referencing.Resource.from_contents(definitions) @ registry
    return jsonschema.Draft202012Validator(schema, registry=registry)


def validate(obj: dict[str, Any]) -> None:
    """Raise kubernetes_validate.ValidationError when `obj` does not fit its kind's schema."""
    try:
        _validator(obj["kind"], obj["apiVersion"]).validate(obj)
    except jsonschema.ValidationError as exc:
        raise kubernetes_validate.ValidationError(exc, version=VERSION) from None
