"""The operator's HTTP endpoint (one port, default 8080): /metrics for Prometheus, /healthz and /readyz for the
kubelet. Served by aiohttp (a kopf dependency) inside kopf's event loop, so an answer from /healthz also proves
that the loop running every handler and watch is not stuck. (kopf's own `liveness_endpoint` serves a single
path with the results of `kopf.on.probe` handlers; Maestro needs /metrics and a readiness that differs from
liveness, on one port, so it serves its own.)

- /healthz (liveness): 200 while the event loop answers.
- /readyz (readiness): 503 until kopf's startup is complete (the startup handlers ran: the API client is set
  up); then 200, on the acting replica and on a standby alike, with the role in the body. A standby is
  Ready because it is exactly what it should be: up, keeping its peering record, able to take over at once.
  A NotReady standby would make a 2-replica Deployment never Available and stall every rolling update (the new
  pod is always the standby: older replicas have the higher priority, see leadership.py). Which replica acts
  is in the `maestro_leader` metric and in the body of /readyz.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

log = logging.getLogger(__name__)

HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
METRICS_PATH = "/metrics"


def make_app(started: asyncio.Event, role: Callable[[], str]) -> web.Application:
    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        if not started.is_set():
            return web.Response(status=503, text="starting\n")
        return web.Response(text=f"ok: {role()}\n")

    app = web.Application()
    app.add_routes(
        [web.get(METRICS_PATH, metrics), web.get(HEALTH_PATH, healthz), web.get(READY_PATH, readyz)]
    )
    return app


async def start(host: str, port: int, started: asyncio.Event, role: Callable[[], str]) -> web.AppRunner:
    """Serve until the returned runner is cleaned up (`await runner.cleanup()`)."""
    runner = web.AppRunner(make_app(started, role), handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("serving %s, %s and %s on %s:%d", METRICS_PATH, HEALTH_PATH, READY_PATH, host or "*", port)
    return runner
