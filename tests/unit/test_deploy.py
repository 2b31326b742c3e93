"""The install artefacts: the Helm chart (lint, render, values schema), its CRD and the plain manifests kept in step,
and least-privilege RBAC: the Role grants exactly what the operator's code calls, derived from render/kinds.py, kube/client.py and the kopf
handlers it registers.

helm is built from its Go module by hack/helm/helm.py and cached (~/.cache/maestro/helm-<version>-<pins>/helm);
these tests build it on first use when Go is available (a few minutes, once); without Go they fail, saying so (a skipped test would hide a missing part).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import helm_script as helm_script_module
from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "maestro"
CRD = ROOT / "crds" / "maestro.dev_microserviceapps.yaml"

Rule = tuple[str, str, str]  # (apiGroup, resource, verb)


helm_script = helm_script_module.load()


@pytest.fixture(scope="module")
def helm() -> Path:
    return helm_script_module.binary(helm_script)


def run_helm(helm: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(helm), *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def render(helm: Path, *sets: str, namespace: str = "maestro-system") -> list[dict[str, Any]]:
    args = ["template", "maestro", str(CHART), "--namespace", namespace]
    for item in sets:
        args += ["--set", item]
    out = run_helm(helm, *args).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def find(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def rule_set(rules: list[dict[str, Any]]) -> set[Rule]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


# ---------------------------------------------------------------------------------------------------------------
# what the operator uses, derived from its code


def _group(prefix: str) -> str:
    """'/api/v1' -> '' (core), '/apis/apps/v1' -> 'apps'."""
    parts = prefix.strip("/").split("/")
    return "" if parts[0] == "api" else parts[1]


def operator_needs(clusterwide: bool = False) -> set[Rule]:
    """Every (group, resource, verb) the operator's code calls in a watched namespace (or cluster-wide).

    - kube/client.py: the kinds in KINDS (the child kinds from render/kinds.py) and the calls made on them (children: get/list/watch/apply/delete; config sources:
      get; the app: get/list/watch, status patched through the subresource; events: created);
    - kopf: every resource a handler is registered for is listed and watched; resources with change handlers
      (create/update/resume) are patched by kopf (progress storage);
    - peering (the chart's default, `maestro run --peering`): kopf lists, watches and patches the peering object
      kopf selects (a KopfPeering per namespace, a ClusterKopfPeering cluster-wide); leadership.py creates (POST)
      and reads (GET) it.
    """
    import kopf

    from maestro.api import models as api
    from maestro.kube import client as kube
    from maestro.render import kinds
    from maestro.runtime import handlers

    assert handlers.on_config_source  # imported for its registrations
    needs: set[Rule] = set()
    for kind, (prefix, plural) in kube.KINDS.items():
        group = _group(prefix)
        if kind in kinds.BY_KIND:
            verbs = set(kinds.BY_KIND[kind].verbs)
        elif kind == api.KIND:
            verbs = {"get", "list", "watch"}  # the operator's own watch of the apps (operator.py)
            needs.add((group, f"{plural}/status", "patch"))  # kube.patch_status
        elif kind in ("Pod", "ReplicaSet"):  # kube.run_pods, kube.pods, kube.replica_sets
            verbs = {"list"}
        elif kind == "ControllerRevision":  # kube.get, revisions, create, delete
            verbs = {"get", "list", "create", "delete"}
        else:  # config sources, read by kube.get; their snapshots: kube.snapshot_copies, create, delete
            verbs = {"get", "list", "create", "delete"}
        needs |= {(group, plural, verb) for verb in verbs}
    needs.add(("", "events", "create"))  # kube.post_event, and kopf's warning events

    registry = kopf.get_default_registry()
    for handler in registry._watching.get_all_handlers():
        needs |= {(*_resource(handler.selector), verb) for verb in ("list", "watch")}
    for changing in registry._changing.get_all_handlers():
        needs |= {(*_resource(changing.selector), verb) for verb in ("list", "watch", "patch")}
    return needs | peering_needs(clusterwide)


def peering_needs(clusterwide: bool) -> set[Rule]:
    from kopf._cogs.structs import references

    from maestro.runtime import leadership

    selector = references.CLUSTER_PEERINGS_K if clusterwide else references.NAMESPACED_PEERINGS_K
    plural = leadership.CLUSTER_PLURAL if clusterwide else leadership.NAMESPACED_PLURAL
    assert (selector.group, _resource(selector)[1]) == (leadership.GROUP, plural), "kopf peers elsewhere"
    return {(leadership.GROUP, plural, verb) for verb in ("list", "watch", "patch", "create", "get")}


def _resource(selector: Any) -> tuple[str, str]:
    """(group, plural) of a kopf handler's selector (`kopf.on.event("apps", "v1", "deployments")`)."""
    plural = selector.plural or selector.any_name
    assert plural, f"a handler selects no single resource: {selector}"
    return selector.group or "", str(plural)


def test_operator_needs_cover_every_kind_in_kube() -> None:
    from maestro.kube import client as kube

    resources = {resource for _, resource, _ in operator_needs()}
    assert {plural for _, plural in kube.KINDS.values()} <= resources
    assert "events" in resources


# ---------------------------------------------------------------------------------------------------------------
# the chart


def test_chart_crd_is_the_generated_crd() -> None:
    assert (CHART / "crds" / CRD.name).read_text() == CRD.read_text(), (
        "deploy/helm/maestro/crds/ differs from crds/: cp crds/maestro.dev_microserviceapps.yaml deploy/helm/maestro/crds/"
    )


@pytest.mark.parametrize(
    "sets",
    [
        [],
        ["watchNamespaces={team-a,team-b}"],
        ["rbac.discovery=false", "logFormat=text", "verbose=true"],
        ["metrics.serviceMonitor.enabled=true", "peering.enabled=false", "replicas=1"],
    ],
)
def test_helm_lint_is_clean(helm: Path, sets: list[str]) -> None:
    args = ["lint", "--strict", str(CHART)]
    for item in sets:
        args += ["--set", item]
    result = run_helm(helm, *args)
    assert "0 chart(s) failed" in result.stdout, result.stdout
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout, result.stdout


def test_values_schema_rejects_unknown_and_bad_values(helm: Path) -> None:
    for bad in (
        "imagee.tag=x",
        "logFormat=xml",
        "watchNamespaces={Not_A_Name}",
        "replicas=0",
        "peering.lifetime=1",
        "metrics.port=0",
        "metrics.serviceMonitor.interval=often",
        "livenessProbe.periodSeconds=0",
    ):
        result = run_helm(helm, "template", "maestro", str(CHART), "--set", bad, check=False)
        assert result.returncode != 0, f"--set {bad} was accepted"


def _ha_args() -> list[str]:
    """The chart's defaults are the operator's own (cli/run.py, runtime/settings.py, runtime/leadership.py)."""
    from maestro.cli import run as runner
    from maestro.runtime import leadership

    return [
        f"--metrics-port={runner.DEFAULT_METRICS_PORT}",
        f"--peering={leadership.DEFAULT_NAME}",
        f"--peering-lifetime={leadership.DEFAULT_LIFETIME}",
    ]


HA_ARGS = _ha_args()


def test_cluster_wide_render(helm: Path) -> None:
    docs = render(helm)
    kinds = sorted(doc["kind"] for doc in docs)
    assert kinds == sorted(
        [
            "ServiceAccount",
            "ClusterRole",
            "ClusterRole",
            "ClusterRoleBinding",
            "ClusterRoleBinding",
            "Deployment",
            "Service",
        ]
    )
    (deployment,) = find(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"] == [
        "run",
        "--log-format=json",
        "--all-namespaces",
        *HA_ARGS,
    ]
    assert container["image"] == "ghcr.io/maestro-dev/maestro:0.1.0"
    assert pod["serviceAccountName"] == "maestro"
    for doc in docs:
        if doc["kind"] in ("ServiceAccount", "Deployment", "Service"):
            assert doc["metadata"]["namespace"] == "maestro-system"


def test_namespaced_render(helm: Path) -> None:
    docs = render(
        helm, "watchNamespaces={team-a,team-b}", "image.tag=1.2.3", "image.repository=example.com/m"
    )
    roles = find(docs, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    bindings = find(docs, "RoleBinding")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    for binding in bindings:
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "maestro", "namespace": "maestro-system"}
        ]
    # The only cluster-scoped grant is the read-only discovery role.
    assert [c["metadata"]["name"] for c in find(docs, "ClusterRole")] == ["maestro-discovery"]
    (container,) = find(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"]
    assert container["args"] == [
        "run",
        "--log-format=json",
        "--namespace=team-a",
        "--namespace=team-b",
        *HA_ARGS,
    ]
    assert container["image"] == "example.com/m:1.2.3"


def test_operator_pod_is_restricted(helm: Path) -> None:
    (deployment,) = find(render(helm), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    context = container["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["readOnlyRootFilesystem"] is True
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    # ... but for a small emptyDir at /tmp, where the API clients put a kubeconfig's inline certificates.
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}}]


# ---------------------------------------------------------------------------------------------------------------
# HA, probes and metrics


def test_two_replicas_with_peering_roll_without_a_gap(helm: Path) -> None:
    (deployment,) = find(render(helm), "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert "--peering=maestro" in container["args"]
    custom = find(render(helm, "peering.name=team-x", "peering.lifetime=30"), "Deployment")[0]
    args = custom["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--peering=team-x" in args and "--peering-lifetime=30" in args


def test_standalone_means_one_replica_recreated(helm: Path) -> None:
    (deployment,) = find(render(helm, "peering.enabled=false", "replicas=1"), "Deployment")
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert not [arg for arg in container["args"] if arg.startswith("--peering")]
    (cluster_role, _) = find(render(helm, "peering.enabled=false", "replicas=1"), "ClusterRole")
    assert not [r for r in cluster_role["rules"] if "kopf.dev" in r["apiGroups"]]
    args = ["template", "maestro", str(CHART), "--set", "peering.enabled=false"]
    result = run_helm(helm, *args, check=False)
    assert result.returncode != 0 and "needs peering.enabled" in result.stderr


def test_chart_ships_kopfs_peering_crds() -> None:
    docs = list(yaml.safe_load_all((CHART / "crds" / "kopf.dev_peerings.yaml").read_text()))
    from kopf._cogs.structs import references

    for doc, selector, scope in (
        (docs[0], references.CLUSTER_PEERINGS_K, "Cluster"),
        (docs[1], references.NAMESPACED_PEERINGS_K, "Namespaced"),
    ):
        assert doc["spec"]["group"] == selector.group and doc["spec"]["scope"] == scope
        assert doc["spec"]["names"]["plural"] == _resource(selector)[1]
        assert [v["name"] for v in doc["spec"]["versions"]] == [selector.version]


def test_probes_and_metrics_port(helm: Path) -> None:
    docs = render(helm)
    (container,) = find(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"]
    assert container["ports"] == [{"name": "metrics", "containerPort": 8080, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    from maestro.runtime import serving

    assert (serving.HEALTH_PATH, serving.READY_PATH) == ("/healthz", "/readyz")
    (service,) = find(docs, "Service")
    assert service["metadata"]["name"] == "maestro-metrics"
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 8080, "targetPort": "metrics", "protocol": "TCP"}
    ]
    pod_labels = find(docs, "Deployment")[0]["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert not find(docs, "ServiceMonitor")  # off by default: it needs the prometheus-operator's CRDs


def test_service_monitor(helm: Path) -> None:
    docs = render(helm, "metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.labels.release=prom")
    (monitor,) = find(docs, "ServiceMonitor")
    (service,) = find(docs, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["maestro-system"]}
    assert monitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}
    ]
    result = run_helm(
        helm,
        *["template", "maestro", str(CHART), "--set", "metrics.serviceMonitor.enabled=true"],
        *["--set", "metrics.service.enabled=false"],
        check=False,
    )
    assert result.returncode != 0


# ---------------------------------------------------------------------------------------------------------------
# least privilege


def test_role_grants_exactly_what_the_operator_uses(helm: Path) -> None:
    docs = render(helm, "watchNamespaces={team-a}", "rbac.discovery=false")
    (role,) = find(docs, "Role")
    granted = rule_set(role["rules"])
    needs = operator_needs()
    assert granted - needs == set(), f"granted but never used: {sorted(granted - needs)}"
    assert needs - granted == set(), f"used but not granted: {sorted(needs - granted)}"
    assert not find(docs, "ClusterRole") and not find(docs, "ClusterRoleBinding")


def test_cluster_role_grants_the_same_rules(helm: Path) -> None:
    docs = render(helm, "rbac.discovery=false")
    (cluster_role,) = find(docs, "ClusterRole")
    assert rule_set(cluster_role["rules"]) == operator_needs(clusterwide=True)


def test_discovery_role_is_read_only_and_small(helm: Path) -> None:
    cluster_wide = {c["metadata"]["name"]: rule_set(c["rules"]) for c in find(render(helm), "ClusterRole")}
    crds = {("apiextensions.k8s.io", "customresourcedefinitions", v) for v in ("list", "watch")}
    assert cluster_wide["maestro-discovery"] == crds
    namespaced = find(render(helm, "watchNamespaces={team-a}"), "ClusterRole")
    assert rule_set(namespaced[0]["rules"]) == crds | {("", "namespaces", v) for v in ("list", "watch")}


def test_no_wildcards_anywhere(helm: Path) -> None:
    for sets in ([], ["watchNamespaces={team-a}"]):
        for doc in render(helm, *sets):
            for rule in doc.get("rules") or []:
                for field in ("apiGroups", "resources", "verbs"):
                    assert "*" not in rule[field], doc


# ---------------------------------------------------------------------------------------------------------------
# plain manifests


def test_plain_manifests_match_the_chart(helm: Path) -> None:
    committed = (ROOT / "deploy" / "manifests" / helm_script.GENERATED).read_text()
    assert committed == helm_script.render_manifests(), (
        "deploy/manifests/ drifted from the chart: run `python hack/helm/helm.py manifests`"
    )


def test_chart_child_kinds_match_the_table() -> None:
    """The chart's RBAC reads its child kinds from a file generated from render/kinds.py: adding a kind there and
    running `make manifests` is all the chart needs."""
    script = load_script("hack/child_kinds.py")
    assert script.PATH.read_text() == script.render(), (
        "the chart's child-kinds.yaml drifted: run `make manifests`"
    )


def test_kustomization_lists_the_generated_file() -> None:
    kustomization = yaml.safe_load((ROOT / "deploy" / "manifests" / "kustomization.yaml").read_text())
    assert kustomization["resources"] == [helm_script.GENERATED]


def test_plain_manifests_contents() -> None:
    docs = [
        d
        for d in yaml.safe_load_all((ROOT / "deploy" / "manifests" / helm_script.GENERATED).read_text())
        if d
    ]
    kinds = [d["kind"] for d in docs]
    assert kinds.count("Namespace") == 1
    crds = {d["metadata"]["name"]: d for d in docs if d["kind"] == "CustomResourceDefinition"}
    assert sorted(crds) == [
        "clusterkopfpeerings.kopf.dev",
        "kopfpeerings.kopf.dev",
        "microserviceapps.maestro.dev",
    ]
    assert crds["microserviceapps.maestro.dev"] == yaml.safe_load(CRD.read_text())
    (namespace,) = (d for d in docs if d["kind"] == "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


# ---------------------------------------------------------------------------------------------------------------
# the image's recipe (tests/cluster/test_image.py builds the image and runs it)


def test_dockerfile_is_small_non_root_and_runs_the_operator() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    bases = [line.split()[1] for line in instructions if line.startswith("FROM ")]
    assert bases and all(base == "${PYTHON_IMAGE}" for base in bases)
    assert "ARG PYTHON_IMAGE=python:3.11-slim-bookworm" in instructions
    assert any("@sha256:" in line for line in lines), "the Dockerfile says how to pin the base by digest"
    (user,) = (line for line in instructions if line.startswith("USER "))
    uid = user.split()[1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "a numeric non-root user, so runAsNonRoot can be verified"
    assert instructions[-2] == 'ENTRYPOINT ["maestro"]'
    assert instructions[-1].startswith('CMD ["run"')


def test_chart_runs_the_image_as_its_user(helm: Path) -> None:
    (deployment,) = find(render(helm), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    user = next(line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("USER "))
    assert f"{pod['securityContext']['runAsUser']}:{pod['securityContext']['runAsGroup']}" == user.split()[1]
