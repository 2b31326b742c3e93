"""The MicroserviceApp CustomResourceDefinition, generated from the pydantic models in models.py.

pydantic's JSON schema is made structural (what apiextensions.k8s.io/v1 requires): `$defs` inlined,
optional fields as plain non-required properties, `int | str` as x-kubernetes-int-or-string, free-form
Kubernetes objects as x-kubernetes-preserve-unknown-fields. The models' CEL rules and list types are kept.
`crds/maestro.dev_microserviceapps.yaml` is this module's output, committed; a unit test checks it is current.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pydantic
import yaml

from maestro.api import models as api

CRD_PATH = "crds/maestro.dev_microserviceapps.yaml"
REGENERATE = "maestro crd > crds/maestro.dev_microserviceapps.yaml"

# JSON-schema keywords pydantic emits that a CRD schema does not accept (or that carry no meaning there).
_DROPPED = frozenset({"title", "examples"})

_ROOT_RULES = [
    {
        # Needs the app's name, which only the root of the schema sees (CEL may read metadata.name there).
        "rule": "!has(self.metadata.name) || "
        "self.spec.services.all(s, size(self.metadata.name) + size(s.name) <= 62)",
        "message": "every child name <metadata.name>-<service name> must be at most 63 characters: "
        "shorten metadata.name or the service name",
        "fieldPath": ".spec.services",
    },
    {
        # A run is the Job <app>-<job>-<run key> (a label value of its pods: 63 at most), a scheduled job the
        # CronJob <app>-<job> (52 at most: its controller appends 11 characters to name its Jobs).
        "rule": "!has(self.metadata.name) || !has(self.spec.jobs) || "
        f"self.spec.jobs.all(j, size(self.metadata.name) + size(j.name) <= {api.JOB_CHILD_MAX - 1})",
        "message": f"every <metadata.name>-<job name> must be at most {api.JOB_CHILD_MAX} characters: "
        "shorten metadata.name or the job name",
        "fieldPath": ".spec.jobs",
    },
    {
        # The app's name prefixes the names of its Services, which must be DNS-1035 labels.
        "rule": "!has(self.metadata.name) || self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
        "message": "metadata.name must be a DNS-1035 label (lowercase letters, digits and '-', starting "
        "with a letter): it prefixes the names of the app's Services",
    },
]


class SchemaError(ValueError):
    """pydantic produced a schema construct this module does not know how to make structural."""


def structural(node: Any, defs: Mapping[str, Any]) -> Any:
    """Turn one pydantic JSON-schema node (and everything under it) into a structural OpenAPI v3 schema."""
    if isinstance(node, list):
        return [structural(item, defs) for item in node]
    if not isinstance(node, Mapping):
        return node
    node = dict(node)
    if "$ref" in node:
        target = defs[node.pop("$ref").rsplit("/", 1)[-1]]
        # The referencing field's own keys (its description, its CEL rules) win over the model's.
        return structural({**target, **node}, defs)
    if "anyOf" in node:
        options = [option for option in node.pop("anyOf") if option != {"type": "null"}]
        if sorted(str(option.get("type")) for option in options) == ["integer", "string"]:
            node["x-kubernetes-int-or-string"] = True
        elif len(options) == 1:
            return structural({**options[0], **node}, defs)
        else:
            raise SchemaError(f"cannot make a structural schema of anyOf {options!r}")
    if "const" in node:
        node["enum"] = [node.pop("const")]
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED or (key == "default" and value is None):
            continue
        if key == "properties":
            out[key] = {name: structural(schema, defs) for name, schema in value.items()}
        elif key in {"items", "additionalProperties"} and isinstance(value, Mapping):
            out[key] = structural(value, defs)
        elif key == "additionalProperties":
            # true: a free-form object; false (extra="forbid"): the API server prunes or rejects unknown
            # fields anyway, and a structural schema may not combine it with properties.
            if value is True:
                out["x-kubernetes-preserve-unknown-fields"] = True
        else:
            out[key] = value
    if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


def _schema_of(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, mode="validation")
    defs = schema.pop("$defs", {})
    result: dict[str, Any] = structural(schema, defs)
    return result


def _status_schema() -> dict[str, Any]:
    schema = _schema_of(api.MicroserviceAppStatus)
    # An app the operator has not handled yet reads `status: {observedGeneration: 0}` (the API server fills
    # in defaults when it reads the object): behind its generation, so kstatus (Flux, Helm's --wait) sees
    # it in progress. With no status at all, kstatus would read a brand-new app as Current (docs/gitops.md).
    schema["default"] = {}
    schema["properties"]["observedGeneration"]["default"] = 0
    return schema


def openapi_schema() -> dict[str, Any]:
    """The openAPIV3Schema of the CRD's only version."""
    return {
        "type": "object",
        "description": "MicroserviceApp runs a whole microservice application: its services become "
        "Deployments, Services, HorizontalPodAutoscalers and PodDisruptionBudgets, rolled out in dependency "
        "order, with one status for the whole app.",
        "properties": {
            "apiVersion": {"type": "string", "description": "maestro.dev/v1alpha1"},
            "kind": {"type": "string", "description": "MicroserviceApp"},
            # The API server allows nothing but a type here (kubectl explain shows ObjectMeta's own docs).
            "metadata": {"type": "object"},
            "spec": _schema_of(api.MicroserviceAppSpec),
            "status": _status_schema(),
        },
        "required": ["spec"],
        "x-kubernetes-validations": _ROOT_RULES,
    }


def crd() -> dict[str, Any]:
    """The whole CustomResourceDefinition object (apiextensions.k8s.io/v1)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{api.PLURAL}.{api.GROUP}",
            "labels": {"app.kubernetes.io/name": "maestro", "app.kubernetes.io/part-of": "maestro"},
        },
        "spec": {
            "group": api.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": api.KIND,
                "listKind": api.LIST_KIND,
                "plural": api.PLURAL,
                "singular": api.SINGULAR,
                "shortNames": list(api.SHORT_NAMES),
                "categories": list(api.CATEGORIES),
            },
            "versions": [
                {
                    "name": api.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {
                            "name": "Ready",
                            "type": "string",
                            "jsonPath": ".status.readyServices",
                            "description": "Ready services of all services.",
                        },
                        {
                            "name": "Phase",
                            "type": "string",
                            "jsonPath": ".status.phase",
                            "description": "Pending, Progressing, Ready, Degraded or Invalid.",
                        },
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                    "schema": {"openAPIV3Schema": openapi_schema()},
                }
            ],
        },
    }


class _NoAliasDumper(yaml.SafeDumper):
    """Writes repeated sub-objects out in full: anchors and aliases would only puzzle a reader of the CRD."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def crd_yaml() -> str:
    """The CRD as the YAML committed in crds/ (and printed by `maestro crd`)."""
    header = f"# Generated from operator/maestro/api/models.py by `{REGENERATE}`. Do not edit.\n"
    body = yaml.dump(crd(), Dumper=_NoAliasDumper, sort_keys=False, width=110, allow_unicode=True)
    return header + body
