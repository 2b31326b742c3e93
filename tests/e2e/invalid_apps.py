"""MicroserviceApps the real API server must reject at `kubectl apply`, by the CRD's OpenAPI schema or its CEL
rules (crds/maestro.dev_microserviceapps.yaml, generated from operator/maestro/api/models.py).

INVALID_APPS is a list of (id, manifest, expected substring of the error): the substring names the field (or,
for rules about several fields, quotes the rule's message). Manifests carry no namespace: the test picks one.
tests/unit/test_invalid_apps.py checks that `maestro validate` rejects each too, and that each rule exists.
"""

from __future__ import annotations

import copy
from typing import Any


def _service(name: str = "web", **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "image": "nginxinc/nginx-unprivileged:1.27",
        "ports": [{"name": "http", "port": 80}],
    } | fields


def _app(*services: dict[str, Any], name: str = "bad", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "maestro.dev/v1alpha1",
        "kind": "MicroserviceApp",
        "metadata": {"name": name},
        "spec": {"services": [copy.deepcopy(s) for s in services], **spec},
    }


def _job(name: str = "migrate", **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": "registry.example.com/migrate:1.0"} | fields


def _without_image() -> dict[str, Any]:
    service = _service()
    del service["image"]
    return _app(service)


INVALID_APPS: list[tuple[str, dict[str, Any], str]] = [
    # --- OpenAPI schema: required fields, types, ranges, patterns, enums, unknown fields
    ("missing-services", {**_app(), "spec": {}}, "spec.services"),
    ("empty-services", _app(), "spec.services"),
    ("missing-image", _without_image(), "spec.services[0].image"),
    ("empty-image", _app(_service(image="")), "spec.services[0].image"),
    (
        "port-out-of-range",
        _app(_service(ports=[{"name": "http", "port": 70000}])),
        "spec.services[0].ports[0].port",
    ),
    ("port-zero", _app(_service(ports=[{"name": "http", "port": 0}])), "spec.services[0].ports[0].port"),
    (
        "target-port-out-of-range",
        _app(_service(ports=[{"name": "http", "port": 80, "targetPort": 65536}])),
        "spec.services[0].ports[0].targetPort",
    ),
    (
        "port-name-too-long",
        _app(_service(ports=[{"name": "a-very-long-port-name", "port": 80}])),
        "spec.services[0].ports[0].name",
    ),
    (
        "bad-protocol",
        _app(_service(ports=[{"name": "http", "port": 80, "protocol": "HTTP"}])),
        "spec.services[0].ports[0].protocol",
    ),
    ("uppercase-service-name", _app(_service("Web")), "spec.services[0].name"),
    ("service-name-too-long", _app(_service("s" * 64)), "spec.services[0].name"),
    ("negative-replicas", _app(_service(replicas=-1)), "spec.services[0].replicas"),
    ("replicas-not-a-number", _app(_service(replicas="two")), "spec.services[0].replicas"),
    ("bad-expose-type", _app(_service(expose={"type": "Public"})), "spec.services[0].expose.type"),
    (
        "max-replicas-zero",
        _app(_service(autoscaling={"maxReplicas": 0})),
        "spec.services[0].autoscaling.maxReplicas",
    ),
    (
        "cpu-target-zero",
        _app(_service(autoscaling={"maxReplicas": 3, "targetCPUUtilizationPercentage": 0})),
        "spec.services[0].autoscaling.targetCPUUtilizationPercentage",
    ),
    ("unknown-service-field", _app(_service(replica=2)), "spec.services[0].replica"),
    ("unknown-defaults-field", _app(_service(), defaults={"replica": 2}), "spec.defaults.replica"),
    (
        "bad-image-pull-policy",
        _app(_service(imagePullPolicy="Sometimes")),
        "spec.services[0].imagePullPolicy",
    ),
    # --- list types: unique keys
    ("duplicate-service-names", _app(_service("web"), _service("web")), "spec.services"),
    (
        "duplicate-port-names",
        _app(_service(ports=[{"name": "http", "port": 80}, {"name": "http", "port": 81}])),
        "spec.services[0].ports",
    ),
    (
        "duplicate-depends-on",
        _app(_service("db"), _service(dependsOn=["db", "db"])),
        "spec.services[1].dependsOn",
    ),
    # --- CEL rules (x-kubernetes-validations)
    (
        "duplicate-port-numbers",
        _app(_service(ports=[{"name": "http", "port": 80}, {"name": "alt", "port": 80}])),
        "port numbers must be unique",
    ),
    (
        "min-replicas-above-max",
        _app(_service(autoscaling={"minReplicas": 5, "maxReplicas": 2})),
        "spec.services[0].autoscaling.minReplicas",
    ),
    (
        "depends-on-unknown-service",
        _app(_service(dependsOn=["ghost"])),
        "every dependsOn entry must name a service",
    ),
    ("depends-on-itself", _app(_service(dependsOn=["web"])), "spec.services[0].dependsOn"),
    (
        "replicas-and-autoscaling",
        _app(_service(replicas=2, autoscaling={"maxReplicas": 4})),
        "spec.services[0].replicas",
    ),
    (
        "config-from-both",
        _app(_service(configFrom=[{"configMap": "a", "secret": "b"}])),
        "set exactly one of configMap or secret",
    ),
    ("config-from-neither", _app(_service(configFrom=[{}])), "set exactly one of configMap or secret"),
    (
        "env-value-and-value-from",
        _app(
            _service(
                env=[{"name": "A", "value": "1", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
            )
        ),
        "set value or valueFrom, not both",
    ),
    (
        "pdb-min-and-max",
        _app(_service(disruptionBudget={"minAvailable": 1, "maxUnavailable": 1})),
        "set minAvailable or maxUnavailable, not both",
    ),
    ("child-name-too-long", _app(_service("s" * 40), name="a" * 23), "must be at most 63 characters"),
    ("app-name-starts-with-digit", _app(_service(), name="1shop"), "metadata.name must be a DNS-1035 label"),
    # --- jobs
    ("job-without-image", _app(_service(), jobs=[{"name": "migrate"}]), "spec.jobs[0].image"),
    (
        "job-schedule-minute-out-of-range",
        _app(_service(), jobs=[_job(schedule="60 * * * *")]),
        "spec.jobs[0].schedule",
    ),
    (
        "job-schedule-with-tz",
        _app(_service(), jobs=[_job(schedule="TZ=UTC 0 3 * * *")]),
        "spec.jobs[0].schedule",
    ),
    (
        "job-backoff-limit-negative",
        _app(_service(), jobs=[_job(backoffLimit=-1)]),
        "spec.jobs[0].backoffLimit",
    ),
    (
        "duplicate-job-names",
        _app(_service(), jobs=[_job(), _job()]),
        "spec.jobs",
    ),
    (
        "job-named-like-a-service",
        _app(_service(), jobs=[_job("web")]),
        "a job cannot have the name of a service",
    ),
    (
        "job-depends-on-unknown-name",
        _app(_service(), jobs=[_job(dependsOn=["ghost"])]),
        "every dependsOn entry must name a service or a job",
    ),
    (
        "depends-on-a-scheduled-job",
        _app(_service(dependsOn=["report"]), jobs=[_job("report", schedule="@daily")]),
        "dependsOn cannot name a scheduled job",
    ),
    ("job-depends-on-itself", _app(_service(), jobs=[_job(dependsOn=["migrate"])]), "spec.jobs[0].dependsOn"),
    ("time-zone-without-schedule", _app(_service(), jobs=[_job(timeZone="UTC")]), "spec.jobs[0].timeZone"),
    (
        "job-child-name-too-long",
        _app(_service(), jobs=[_job("j" * 31)], name="a" * 21),
        "must be at most 52 characters",
    ),
    # --- routes and network policies (issue 20)
    (
        "route-host-uppercase",
        _app(_service(expose={"http": {"hosts": ["Shop.example.com"], "ingress": {}}})),
        "spec.services[0].expose.http.hosts[0]",
    ),
    (
        "route-path-relative",
        _app(_service(expose={"http": {"hosts": ["shop.example.com"], "paths": ["api"], "ingress": {}}})),
        "spec.services[0].expose.http.paths[0]",
    ),
    (
        "route-path-dot-dot",
        _app(_service(expose={"http": {"hosts": ["shop.example.com"], "paths": ["/a/../b"], "ingress": {}}})),
        "a path may not have . or .. segments",
    ),
    (
        "route-tls-secret-name",
        _app(
            _service(expose={"http": {"hosts": ["a.example.com"], "tlsSecret": "TLS_secret", "ingress": {}}})
        ),
        "spec.services[0].expose.http.tlsSecret",
    ),
    (
        "policy-cidr-not-a-network",
        _app(_service(networkPolicy={"allowFrom": [{"ipBlock": {"cidr": "10.0.0.1/8"}}]})),
        "spec.services[0].networkPolicy.allowFrom[0].ipBlock.cidr",
    ),
    (
        "policy-peer-ip-block-and-selector",
        _app(_service(networkPolicy={"allowFrom": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]})),
        "set ipBlock, or namespaceSelector and/or podSelector",
    ),
    (
        "policy-egress-unknown",
        _app(_service(networkPolicy={"egress": "closed"})),
        "spec.services[0].networkPolicy.egress",
    ),
]
