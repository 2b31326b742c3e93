"""The latest version seen of every app (appcache.py)."""

from __future__ import annotations

from typing import Any

from maestro.runtime import appcache


def app(version: int, generation: int = 1, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "shop",
            "namespace": "ns",
            "uid": "u",
            "generation": generation,
            "resourceVersion": str(version),
            "managedFields": [{"manager": "kubectl"}],
        },
        "spec": {"services": [{"name": "web", "image": "web:1"}]},
        "status": status,
    }


def test_the_newest_version_is_kept_whatever_the_order() -> None:
    cache = appcache.AppCache()
    cache.observe("ADDED", app(5))
    cache.record(app(9, phase="Ready"))  # what a status write returned
    cache.observe("MODIFIED", app(7, phase="Progressing"))  # an older event, arriving late
    kept = cache.get("ns", "shop")
    assert kept is not None
    assert kept["metadata"]["resourceVersion"] == "9" and kept["status"] == {"phase": "Ready"}
    cache.observe("MODIFIED", app(11, generation=2))
    assert cache.get("ns", "shop")["metadata"]["generation"] == 2  # type: ignore[index]


def test_deleted_apps_are_forgotten_and_managed_fields_never_kept() -> None:
    cache = appcache.AppCache()
    cache.observe(None, app(3))
    assert "managedFields" not in cache.get("ns", "shop")["metadata"]  # type: ignore[index]
    cache.observe("DELETED", app(4))
    assert cache.get("ns", "shop") is None and len(cache) == 0


def test_an_app_forgotten_or_not_listed_is_read_again() -> None:
    # An app deleted while no watch stream was open sends no DELETED event (docs/reliability.md bug 11).
    cache = appcache.AppCache()
    other = app(3)
    other["metadata"]["name"] = "cart"
    cache.observe(None, app(3))
    cache.observe(None, other)
    cache.retain([("ns", "cart"), ("ns", "listed-but-never-seen")])
    assert cache.get("ns", "shop") is None and cache.get("ns", "cart") is not None and len(cache) == 1
    cache.forget("ns", "cart")
    cache.forget("ns", "never-kept")  # harmless
    assert len(cache) == 0
