"""precheck.py's claim, held against a real API server: a service (or job) that sets only the fields the models
check renders children the API server accepts, whatever values the models let through. Such services are applied
without a dry run first (reconcile.py step 4a), so a value the models pass and the API server refuses would
leave an app half-applied. Values are drawn wide on purpose (any text, any number in the models' bounds)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maestro import render
from maestro.api import models as api
from maestro.controller import precheck
from tests.faults.client import Client
from tests.unit.test_properties import autoscaling

dns_label = st.from_regex(r"\A[a-z]([a-z0-9]{0,5}|-[a-z0-9]{1,4})\Z")
port_name = st.from_regex(r"\A[a-z](-?[a-z0-9]){0,14}\Z").filter(lambda name: len(name) <= api.PORT_NAME_MAX)
env_name = st.from_regex(r"\A[-._a-zA-Z][-._a-zA-Z0-9]{0,20}\Z")
text = st.text(max_size=30)
image = st.text(min_size=1, max_size=40).filter(lambda value: value == value.strip())
quantity = st.one_of(
    st.integers(0, 2**40),
    st.builds(
        lambda number, suffix: f"{number}{suffix}",
        st.one_of(st.integers(0, 10**6).map(str), st.decimals(0, 10**4, places=3).map(str)),
        st.sampled_from(["", "m", "k", "M", "G", "Ki", "Mi", "Gi", "e3", "E2"]),
    ),
)
int_or_percent = st.one_of(st.integers(0, 10000), st.integers(0, 100).map(lambda n: f"{n}%"))


@st.composite
def modelled_service(draw: st.DrawFn, name: str) -> dict[str, Any]:
    """A service setting any of precheck's modelled fields, with values drawn across the models' bounds."""
    service: dict[str, Any] = {"name": name, "image": draw(image)}
    optional: dict[str, st.SearchStrategy[Any]] = {
        "command": st.lists(text, max_size=3),
        "args": st.lists(text, max_size=3),
        "env": st.lists(
            st.fixed_dictionaries({"name": env_name, "value": text}),
            max_size=3,
            unique_by=lambda v: v["name"],
        ),
        "ports": st.lists(
            st.fixed_dictionaries(
                {"name": port_name, "port": st.integers(1, 65535)},
                optional={
                    "targetPort": st.integers(1, 65535),
                    "protocol": st.sampled_from(["TCP", "UDP", "SCTP"]),
                },
            ),
            max_size=3,
            unique_by=(lambda p: p["name"], lambda p: p["port"]),
        ),
        "expose": st.fixed_dictionaries(
            {"type": st.sampled_from(["ClusterIP", "NodePort", "LoadBalancer", "Headless", "None"])}
        ),
        "resources": st.fixed_dictionaries(
            {},
            optional={
                "requests": st.dictionaries(
                    st.sampled_from(["cpu", "memory", "ephemeral-storage"]), quantity
                ),
                "limits": st.dictionaries(st.sampled_from(["cpu", "memory", "ephemeral-storage"]), quantity),
            },
        ),
        "rollout": st.fixed_dictionaries(
            {},
            optional={
                "maxSurge": int_or_percent,
                "maxUnavailable": int_or_percent,
                "progressDeadlineSeconds": st.integers(1, 86400),
            },
        ),
        "disruptionBudget": st.one_of(
            st.fixed_dictionaries({"minAvailable": int_or_percent}),
            st.fixed_dictionaries({"maxUnavailable": int_or_percent}),
            st.just({"enabled": False}),
        ),
        "imagePullPolicy": st.sampled_from(["Always", "IfNotPresent", "Never"]),
    }
    for field, strategy in optional.items():
        if draw(st.booleans()):
            service[field] = draw(strategy)
    if draw(st.booleans()):
        service["autoscaling"] = draw(autoscaling(min_up_to=10000, max_up_to=10000, percent_up_to=1000))
    elif draw(st.booleans()):
        service["replicas"] = draw(st.integers(0, 10000))
    return service


@st.composite
def modelled_job(draw: st.DrawFn, name: str, services: list[str]) -> dict[str, Any]:
    """A job setting any of precheck's modelled fields (all a job has but timeZone and the free-form ones)."""
    job: dict[str, Any] = {"name": name, "image": draw(image)}
    optional: dict[str, st.SearchStrategy[Any]] = {
        "command": st.lists(text, max_size=3),
        "args": st.lists(text, max_size=3),
        "env": st.lists(
            st.fixed_dictionaries({"name": env_name, "value": text}),
            max_size=3,
            unique_by=lambda v: v["name"],
        ),
        "resources": st.fixed_dictionaries(
            {}, optional={"requests": st.dictionaries(st.sampled_from(["cpu", "memory"]), quantity)}
        ),
        "dependsOn": st.lists(st.sampled_from(services), min_size=1, unique=True),
        "backoffLimit": st.integers(0, 100),
        "activeDeadlineSeconds": st.integers(1, 2592000),
        "historyLimit": st.integers(1, 20),
        "imagePullPolicy": st.sampled_from(["Always", "IfNotPresent", "Never"]),
    }
    for field, strategy in optional.items():
        if draw(st.booleans()):
            job[field] = draw(strategy)
    if draw(st.booleans()):
        job["schedule"] = draw(st.from_regex(api.CRON_PATTERN, fullmatch=True))
        if draw(st.booleans()):
            job["concurrencyPolicy"] = draw(st.sampled_from(["Allow", "Forbid", "Replace"]))
    return job


@st.composite
def modelled_app(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(dns_label, min_size=1, max_size=3, unique=True))
    services = [draw(modelled_service(name)) for name in names]
    for index, service in enumerate(services[1:], start=1):
        if draw(st.booleans()):
            service["dependsOn"] = draw(st.lists(st.sampled_from(names[:index]), min_size=1, unique=True))
    jobs = [
        draw(modelled_job(name, names))
        for name in draw(st.lists(dns_label.filter(lambda n: n not in names), max_size=2, unique=True))
    ]
    return {"services": services, "jobs": jobs}


def test_services_with_only_modelled_fields_render_children_the_api_server_accepts(
    namespace: str, crd: None, client: Client
) -> None:
    tally: Counter[str] = Counter()

    @settings(
        max_examples=150,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(modelled_app())
    def check(spec: dict[str, Any]) -> None:
        app = {
            "metadata": {"name": "pc", "namespace": namespace, "uid": "00000000-0000-0000-0000-000000000001"}
        }
        try:
            parsed = api.validate_app("pc", spec)
        except api.SpecError:
            tally["refused by the models"] += 1
            return
        merged = render.effective_components(parsed)
        for service in merged.values():
            if precheck.needs_dry_run(service):
                tally["left to a dry run"] += 1
                continue
            tally["applied without a dry run"] += 1
            for child in render.render_component(app, service, merged):
                refused = client.rejects(child)  # a server-side apply, dry run, as the operator's would be
                assert refused is None, (
                    f"the models passed service {service.name!r} but the API server refuses "
                    f"{child['kind']}: {refused}\nspec: {spec}"
                )

    check()
    assert tally["applied without a dry run"] >= 100, tally  # the property was exercised
