"""Routes from `expose.http` and NetworkPolicies from the dependency graph (issue 20): what is rendered, what is
refused and where, what the status says, and an HTTPRoute on a cluster without the Gateway API."""

from __future__ import annotations

from typing import Any

import pytest

from maestro import render
from maestro.api import models as api
from maestro.controller import compare, plan, reconcile, status
from maestro.controller.projection import projection
from maestro.kube import client as kube
from maestro.runtime import childwatch
from tests.unit import fake_api
from tests.unit.helpers import app, by_kind, svc

GATEWAY = {"http": {"gateway": {"name": "public", "namespace": "gateways"}}}
WEB_ROUTE = {"http": {"hosts": ["shop.example.com"], "paths": ["/", "/api"]}}
NOW = "2026-01-01T00:00:00Z"


def shop(**web: Any) -> dict[str, Any]:
    """web -> api -> db, a job that depends on db; web routed through the defaults' Gateway."""
    return app(
        svc("web", **({"dependsOn": ["api"], "expose": WEB_ROUTE} | web)),
        svc("api", dependsOn=["db"], ports=[{"name": "http", "port": 80, "targetPort": 8080}]),
        svc("db", ports=[{"name": "pg", "port": 5432}]),
        jobs=[{"name": "migrate", "image": "registry.example.com/migrate:1", "dependsOn": ["db"]}],
        defaults={"expose": GATEWAY},
    )


def children(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return render.render_app(obj)


def selector(name: str) -> dict[str, Any]:
    return {"podSelector": {"matchLabels": render.selector_labels("shop", name)}}


# ------------------------------------------------------------------------------------------ NetworkPolicies


def test_every_service_gets_a_policy_letting_in_only_its_dependents_on_its_ports() -> None:
    rendered = children(shop())
    db = by_kind(rendered, "NetworkPolicy", "shop-db")
    assert db["spec"]["podSelector"] == {"matchLabels": render.selector_labels("shop", "db")}
    assert db["spec"]["policyTypes"] == ["Ingress"]  # egress open by default
    # api (a service) and migrate (a job) declare dependsOn: db
    assert db["spec"]["ingress"] == [
        {"from": [selector("api"), selector("migrate")], "ports": [{"protocol": "TCP", "port": 5432}]}
    ]
    api_policy = by_kind(rendered, "NetworkPolicy", "shop-api")
    # the pod's port (targetPort): a policy sees the connection after the Service's translation
    assert api_policy["spec"]["ingress"] == [
        {"from": [selector("web")], "ports": [{"protocol": "TCP", "port": 8080}]}
    ]
    assert db["metadata"]["ownerReferences"][0]["uid"] == "0000-1111"
    assert not [
        c for c in rendered if c["kind"] == "NetworkPolicy" and c["metadata"]["name"] == "shop-migrate"
    ]


def test_the_routed_service_is_open_to_the_gateways_namespace_on_the_routed_port_only() -> None:
    web = by_kind(children(shop()), "NetworkPolicy", "shop-web")
    assert web["spec"]["ingress"] == [
        {
            "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gateways"}}}],
            "ports": [{"protocol": "TCP", "port": 80}],
        }
    ]


def test_route_from_and_an_ingress_choose_where_route_traffic_comes_from() -> None:
    ingress = shop(expose={"http": {"hosts": ["shop.example.com"], "ingress": {"className": "nginx"}}})
    rule = by_kind(children(ingress), "NetworkPolicy", "shop-web")["spec"]["ingress"][0]
    assert rule["from"] == [{"namespaceSelector": {}}]  # where an ingress controller runs is not known
    chosen = shop(networkPolicy={"routeFrom": [{"namespaceSelector": {"matchLabels": {"gw": "yes"}}}]})
    rule = by_kind(children(chosen), "NetworkPolicy", "shop-web")["spec"]["ingress"][0]
    assert rule["from"] == [{"namespaceSelector": {"matchLabels": {"gw": "yes"}}}]


@pytest.mark.parametrize("exposed", ["NodePort", "LoadBalancer"])
def test_a_node_port_or_load_balancer_service_is_open_to_anyone_on_its_ports(exposed: str) -> None:
    obj = app(svc("web", expose={"type": exposed}))
    assert by_kind(children(obj), "NetworkPolicy", "shop-web")["spec"]["ingress"] == [
        {"ports": [{"protocol": "TCP", "port": 80}]}
    ]


def test_a_service_nobody_depends_on_accepts_nothing() -> None:
    policy = by_kind(children(app(svc("web"))), "NetworkPolicy", "shop-web")
    assert policy["spec"]["ingress"] == [] and policy["spec"]["policyTypes"] == ["Ingress"]


def test_allow_from_adds_peers_on_the_ports_named() -> None:
    obj = app(
        svc(
            "web",
            ports=[{"name": "http", "port": 80}, {"name": "metrics", "port": 9100}],
            networkPolicy={
                "allowFrom": [
                    {"namespaceSelector": {"matchLabels": {"team": "observability"}}, "ports": ["metrics"]},
                    {"ipBlock": {"cidr": "10.8.0.0/16", "except": ["10.8.1.0/24"]}},
                ]
            },
        )
    )
    assert by_kind(children(obj), "NetworkPolicy", "shop-web")["spec"]["ingress"] == [
        {
            "from": [{"namespaceSelector": {"matchLabels": {"team": "observability"}}}],
            "ports": [{"protocol": "TCP", "port": 9100}],
        },
        {
            "from": [{"ipBlock": {"cidr": "10.8.0.0/16", "except": ["10.8.1.0/24"]}}],
            "ports": [{"protocol": "TCP", "port": 80}, {"protocol": "TCP", "port": 9100}],
        },
    ]


def test_restricted_egress_allows_dns_the_dependencies_and_allow_to() -> None:
    obj = shop(
        networkPolicy={
            "egress": "restricted",
            "allowTo": [{"ipBlock": {"cidr": "0.0.0.0/0"}, "ports": [443]}],
        }
    )
    web = by_kind(children(obj), "NetworkPolicy", "shop-web")["spec"]
    assert web["policyTypes"] == ["Ingress", "Egress"]
    assert web["egress"] == [
        {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
        {"to": [selector("api")], "ports": [{"protocol": "TCP", "port": 8080}]},
        {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 443}]},
    ]


def test_network_policies_off_app_wide_or_per_service() -> None:
    off = shop(networkPolicy={"enabled": False})
    assert {c["metadata"]["name"] for c in children(off) if c["kind"] == "NetworkPolicy"} == {
        "shop-api",
        "shop-db",
    }
    obj = shop()
    obj["spec"]["defaults"]["networkPolicy"] = {"enabled": False}
    assert not [c for c in children(obj) if c["kind"] == "NetworkPolicy"]


def test_a_new_dependent_changes_its_dependencys_policy() -> None:
    before = by_kind(children(app(svc("web"), svc("db"))), "NetworkPolicy", "shop-db")
    after = by_kind(children(app(svc("web", dependsOn=["db"]), svc("db"))), "NetworkPolicy", "shop-db")
    assert before["spec"]["ingress"] == [] and after["spec"]["ingress"][0]["from"] == [selector("web")]


# ------------------------------------------------------------------------------------------ routes


def test_expose_http_renders_an_httproute_to_the_gateway_of_the_defaults() -> None:
    route = by_kind(children(shop()), "HTTPRoute", "shop-web")
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["spec"] == {
        "parentRefs": [
            {
                "group": "gateway.networking.k8s.io",
                "kind": "Gateway",
                "name": "public",
                "namespace": "gateways",
            }
        ],
        "hostnames": ["shop.example.com"],
        "rules": [
            {
                "matches": [
                    {"path": {"type": "PathPrefix", "value": "/"}},
                    {"path": {"type": "PathPrefix", "value": "/api"}},
                ],
                "backendRefs": [
                    {"group": "", "kind": "Service", "name": "shop-web", "port": 80, "weight": 1}
                ],
            }
        ],
    }
    # the defaults' route settings are only for the services that ask for a route
    assert [c["metadata"]["name"] for c in children(shop()) if c["kind"] in ("HTTPRoute", "Ingress")] == [
        "shop-web"
    ]


def test_expose_http_ingress_renders_an_ingress_with_tls() -> None:
    obj = shop(
        expose={
            "http": {
                "hosts": ["shop.example.com"],
                "paths": ["/shop"],
                "tlsSecret": "shop-tls",
                "ingress": {"className": "nginx"},
            }
        }
    )
    rendered = children(obj)
    assert not [c for c in rendered if c["kind"] == "HTTPRoute"]
    ingress = by_kind(rendered, "Ingress", "shop-web")
    assert ingress["spec"] == {
        "ingressClassName": "nginx",
        "tls": [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}],
        "rules": [
            {
                "host": "shop.example.com",
                "http": {
                    "paths": [
                        {
                            "path": "/shop",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": "shop-web", "port": {"name": "http"}}},
                        }
                    ]
                },
            }
        ],
    }


# ------------------------------------------------------------------------------------------ validation


def errors(obj: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(api.SpecError) as caught:
        api.validate_app("shop", obj["spec"])
    return caught.value.errors


@pytest.mark.parametrize(
    ("web", "path", "words"),
    [
        (
            {"expose": {"http": {"hosts": ["Shop.Example.com"]}}},
            "spec.services[0].expose.http.hosts[0]",
            "must match",
        ),
        (
            {"expose": {"http": {"hosts": ["shop..example.com"]}}},
            "spec.services[0].expose.http.hosts[0]",
            "must match",
        ),
        (
            {"expose": {"http": {"hosts": ["a.example.com"], "paths": ["api"]}}},
            "spec.services[0].expose.http.paths[0]",
            "must match",
        ),
        (
            {"expose": {"http": {"hosts": ["a.example.com"], "paths": ["/a//b"]}}},
            "spec.services[0].expose.http.paths[0]",
            "must match",
        ),
        (
            {"expose": {"http": {"hosts": ["a.example.com"], "paths": ["/a/../b"]}}},
            "spec.services[0].expose.http.paths[0]",
            ". or ..",
        ),
        (
            {"expose": {"http": {"hosts": ["a.example.com"], "port": "grpc"}}},
            "spec.services[0].expose.http.port",
            "no port named 'grpc'",
        ),
        ({"expose": {"http": {"paths": ["/"]}}}, "spec.services[0].expose.http.hosts", "required"),
        (
            {"expose": {"http": {"hosts": ["a.example.com"], "tlsSecret": "Bad_Name", "ingress": {}}}},
            "spec.services[0].expose.http.tlsSecret",
            "must match",
        ),
        (
            {"expose": {"http": {"hosts": ["a.example.com"], "tlsSecret": "tls"}}},
            "spec.services[0].expose.http.tlsSecret",
            "only with ingress",
        ),
        (
            {"expose": {"type": "None", "http": {"hosts": ["a.example.com"]}}},
            "spec.services[0].expose.http",
            "needs a port",
        ),
        (
            {"networkPolicy": {"allowFrom": [{"ipBlock": {"cidr": "10.0.0.1/8"}}]}},
            "spec.services[0].networkPolicy.allowFrom[0].ipBlock.cidr",
            "CIDR",
        ),
        (
            {"networkPolicy": {"allowFrom": [{"ipBlock": {"cidr": "10.0.0.0/33"}}]}},
            "spec.services[0].networkPolicy.allowFrom[0].ipBlock.cidr",
            "CIDR",
        ),
        (
            {
                "networkPolicy": {
                    "allowTo": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["192.168.0.0/16"]}}]
                }
            },
            "spec.services[0].networkPolicy.allowTo[0].ipBlock.except[0]",
            "inside 10.0.0.0/8",
        ),
        (
            {"networkPolicy": {"allowFrom": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}},
            "spec.services[0].networkPolicy.allowFrom[0]",
            "set ipBlock, or",
        ),
        (
            {"networkPolicy": {"allowFrom": [{"ports": ["http"]}]}},
            "spec.services[0].networkPolicy.allowFrom[0]",
            "set ipBlock, or",
        ),
        (
            {"networkPolicy": {"allowFrom": [{"podSelector": {}, "ports": ["admin"]}]}},
            "spec.services[0].networkPolicy.allowFrom[0].ports[0]",
            "no port named 'admin'",
        ),
        ({"networkPolicy": {"egress": "closed"}}, "spec.services[0].networkPolicy.egress", "must be one of"),
    ],
)
def test_bad_routes_and_peers_are_refused_naming_the_field(
    web: dict[str, Any], path: str, words: str
) -> None:
    found = errors(app(svc("web", **web), defaults={"expose": GATEWAY}))
    assert any(p == path and words in m for p, m in found), found


def test_an_httproute_needs_a_gateway_here_or_in_the_defaults() -> None:
    found = errors(app(svc("web", expose=WEB_ROUTE)))
    assert "spec.services[0].expose.http.gateway" in [p for p, _ in found], found


def test_two_services_routed_at_the_same_host_and_path_are_refused() -> None:
    same = {"http": {"hosts": ["shop.example.com"], "paths": ["/api/"]}}
    found = errors(app(svc("web", expose=WEB_ROUTE), svc("api", expose=same), defaults={"expose": GATEWAY}))
    assert found == [
        ("spec.services[1].expose.http.paths[0]", "shop.example.com/api/ is already routed to service 'web'")
    ]


# ------------------------------------------------------------------------------------------ status


def route_in_cluster(parents: list[dict[str, Any]] | None) -> dict[str, Any]:
    route = by_kind(children(shop()), "HTTPRoute", "shop-web")
    return {**route, "status": {"parents": parents}} if parents is not None else route


def web_status(observed: dict[str, Any] | None, obj: dict[str, Any] | None = None) -> api.ServiceStatus:
    obj = obj or shop()
    spec = api.validate_app("shop", obj["spec"])
    web = render.effective_services(spec)[0]
    route = next(c for c in children(obj) if c["kind"] in ("HTTPRoute", "Ingress"))
    return status.service_status(obj, web, None, route=status.route_status(web, route, observed))


def test_the_status_shows_the_urls_and_a_route_not_yet_accepted() -> None:
    shown = web_status(route_in_cluster(None))
    assert shown.urls == ["http://shop.example.com/", "http://shop.example.com/api"]
    assert shown.route is not None
    assert (shown.route.kind, shown.route.name, shown.route.accepted) == ("HTTPRoute", "shop-web", "Unknown")
    assert shown.route.message == "not yet accepted: no controller of Gateway gateways/public has answered"


def test_the_status_reads_back_the_gateways_answer() -> None:
    ref = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "public", "namespace": "gateways"}
    accepted = route_in_cluster(
        [
            {
                "parentRef": ref,
                "controllerName": "example.com/gateway",
                "conditions": [
                    {"type": "Accepted", "status": "True", "reason": "Accepted"},
                    {
                        "type": "ResolvedRefs",
                        "status": "False",
                        "reason": "BackendNotFound",
                        "message": "no svc",
                    },
                ],
            }
        ]
    )
    shown = web_status(accepted).route
    assert shown is not None
    assert (shown.accepted, shown.resolved_refs) == ("True", "False")
    assert shown.message == "ResolvedRefs: BackendNotFound: no svc"


def test_an_ingress_is_accepted_once_it_has_an_address_and_tls_makes_https_urls() -> None:
    obj = shop(expose={"http": {"hosts": ["shop.example.com"], "tlsSecret": "tls", "ingress": {}}})
    ingress = by_kind(children(obj), "Ingress", "shop-web")
    waiting = web_status(ingress, obj)
    assert waiting.urls == ["https://shop.example.com/"]
    assert waiting.route is not None and waiting.route.accepted == "Unknown"
    answered = web_status({**ingress, "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.7"}]}}}, obj)
    assert answered.route is not None and (answered.route.accepted, answered.route.message) == (
        "True",
        "address 192.0.2.7",
    )


def test_the_route_status_fields_a_pass_reads_survive_the_child_index() -> None:
    ref = {"name": "public", "namespace": "gateways"}
    route = route_in_cluster(
        [
            {
                "parentRef": ref,
                "conditions": [{"type": "Accepted", "status": "True", "lastTransitionTime": "x"}],
            }
        ]
    )
    projected = projection(route)
    assert projected["status"] == {
        "parents": [{"parentRef": ref, "conditions": [{"type": "Accepted", "status": "True"}]}]
    }


def test_a_whole_pass_writes_policies_and_route_and_reports_the_route() -> None:
    obj = shop()
    desired = plan.desire(obj, api.validate_app("shop", obj["spec"]), {})
    decided = plan.plan(desired, plan.Observed(NOW))
    assert isinstance(decided, plan.Plan)
    assert [compare.label(w.child) for w in decided.writes] == [
        "Deployment/shop-db",
        "Service/shop-db",
        "NetworkPolicy/shop-db",
    ]
    web = next(s for s in decided.report().status.services or [] if s.name == "web")
    assert web.phase == "Waiting" and web.urls == ["http://shop.example.com/", "http://shop.example.com/api"]
    assert web.route is not None and web.route.message == "HTTPRoute not created yet"


# ------------------------------------------------------------------------------------------ Gateway API not installed


def test_an_httproute_on_a_cluster_without_the_gateway_api_makes_only_that_app_invalid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    routed = app(svc("web", expose=WEB_ROUTE), defaults={"expose": GATEWAY})
    server = fake_api.FakeApi([routed]).install(monkeypatch)
    server.unserved.add("HTTPRoute")
    stores = fake_api.stores(server)
    outcome = reconcile.reconcile(server.objects[("MicroserviceApp", "prod", "shop")], stores)
    assert outcome.phase == "Invalid"
    ready = server.objects[("MicroserviceApp", "prod", "shop")]["status"]["conditions"][0]
    assert ready["reason"] == "ChildRejected"
    assert ready["message"].startswith("spec.services[0]: HTTPRoute/shop-web: this cluster does not serve ")
    assert "install its CRDs" in ready["message"] and "expose.http.ingress" in ready["message"]


def test_an_unserved_optional_kind_lists_as_empty_and_other_404s_still_raise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def not_found(*args: Any, **kwargs: Any) -> Any:
        raise kube.ApiError(404, "NotFound", "the server could not find the requested resource")

    monkeypatch.setattr(kube, "request", not_found)
    assert kube.list_objects("HTTPRoute", "prod") == []
    listing = kube.list_pages("HTTPRoute", "prod")
    assert list(listing) == [] and not listing.served
    with pytest.raises(kube.ApiError):
        kube.list_objects("NetworkPolicy", "prod")  # a built-in kind: a 404 is a real error


def test_the_watch_of_an_unserved_kind_waits_and_lists_again(monkeypatch: pytest.MonkeyPatch) -> None:
    served = iter([False, True])

    class Listing:
        resource_version = "7"

        def __init__(self) -> None:
            self.served = next(served)

        def __iter__(self) -> Any:
            return iter([])

    monkeypatch.setattr(kube, "list_pages", lambda kind, namespace: Listing())
    watch = childwatch.KindWatch("HTTPRoute", "prod", lambda event, obj: None, childwatch.threading.Event())
    watch.list()
    assert (watch.served, watch.version) == (False, None)  # follow() waits UNSERVED_RETRY, then lists again
    watch.list()
    assert (watch.served, watch.version) == (True, "7")


def test_a_rejection_is_told_for_refusals_and_unserved_kinds_only() -> None:
    from maestro.controller import execute

    route = by_kind(children(shop()), "HTTPRoute", "shop-web")
    policy = by_kind(children(shop()), "NetworkPolicy", "shop-web")
    not_found = kube.ApiError(404, "NotFound", "the server could not find the requested resource")
    told = execute.rejection(route, not_found)
    assert told is not None and "does not serve gateway.networking.k8s.io/v1 HTTPRoute" in told
    assert execute.rejection(policy, not_found) is None  # a built-in kind: retried, not the app's fault
    assert execute.rejection(policy, kube.ApiError(422, "Invalid", "bad")) == (
        "the API server rejected NetworkPolicy/shop-web: bad"
    )
