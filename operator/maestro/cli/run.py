"""`maestro run`: the operator itself, kopf running the handlers against the current kubeconfig, with the
HTTP endpoint for metrics and probes (serving.py) and, with --peering, kopf peering between replicas
(leadership.py): only one replica acts, another takes over when it stops. Without --peering kopf runs
standalone (one process; what the e2e tests and a local `maestro run` use).

kopf is imported only here, when the subcommand runs, so the offline subcommands stay fast.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import kopf

    from maestro.runtime.operator import Operator

DEFAULT_METRICS_PORT = 8080
# A start decodes a listing of every app and child (150 MiB of JSON at 5000 apps) into objects that live a
# moment: with the cyclic collector's default thresholds (700, 10, 10) its collections were a third of a start's
# CPU (docs/benchmarks.md, stop 35). What the operator keeps is hardly ever cyclic: it collects rarely.
GC_THRESHOLDS = (50_000, 10, 10)


def cmd_run(args: argparse.Namespace) -> int:
    namespaces: list[str] = list(args.namespace or [])
    if namespaces and args.all_namespaces:
        print("maestro run: use --namespace or --all-namespaces, not both", file=sys.stderr)
        return 2
    if args.peering_lifetime < 2:
        print("maestro run: --peering-lifetime must be at least 2 seconds", file=sys.stderr)
        return 2

    gc.set_threshold(*GC_THRESHOLDS)

    import pykube

    from maestro import metrics
    from maestro.cli.earlylog import EarlyLog
    from maestro.kube import client as kube
    from maestro.runtime import leadership
    from maestro.runtime.operator import Operator
    from maestro.runtime.settings import Settings

    early_log = EarlyLog(logging.DEBUG if args.verbose else logging.INFO)  # until kopf's logging is set up
    try:  # the in-cluster service account, else the current kubeconfig (KUBECONFIG)
        kube.load_config()
    except (OSError, ValueError, KeyError, pykube.exceptions.PyKubeError) as error:
        print(f"maestro run: cannot load the kubeconfig: {error}", file=sys.stderr)
        return 1
    peering: leadership.Peering | None = None
    if args.peering:
        peering = leadership.Peering(
            name=args.peering,
            identity=leadership.identity(),
            priority=leadership.startup_priority(),
            lifetime=args.peering_lifetime,
            namespaces=tuple(namespaces) or None,
        )
        try:
            leadership.ensure_objects(peering)
        except (kube.ApiError, OSError) as error:
            print(f"maestro run: peering {args.peering}: {error}", file=sys.stderr)
            return 1
        logging.getLogger(__name__).info(
            "peering %s as %s, priority %d, lifetime %ds",
            peering.name,
            peering.identity,
            peering.priority,
            peering.lifetime,
        )
    operator = Operator(Settings.from_env(namespaces), leadership.Leadership(peering))
    metrics.QUEUE_DEPTH.set_function(operator.passes.depth)
    # The listings of the apps and children, the longest part of a start, go on while kopf is imported and
    # started: its startup handler waits for them (docs/benchmarks.md, stop 32).
    operator.begin()

    import kopf

    import maestro.runtime.handlers  # noqa: F401  (registers the kopf handlers)

    log_format = kopf.LogFormat.JSON if args.log_format == "json" else kopf.LogFormat.FULL
    early_log.hand_over(lambda: kopf.configure(verbose=args.verbose, log_format=log_format))
    if not args.verbose:
        # kopf logs "Handler ... succeeded" for every watch event handled: thousands a minute while apps
        # converge, drowning Maestro's own lines (maestro.*). Its warnings and errors still show.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)

    settings = kopf.OperatorSettings()
    if peering is not None:
        settings.peering.lifetime = peering.lifetime
        settings.peering.stealth = True  # no log line per keep-alive; pauses and resumes are still logged
    asyncio.run(_operate(args, operator, settings))
    return 0


async def _operate(args: argparse.Namespace, operator: Operator, settings: kopf.OperatorSettings) -> None:
    """kopf's operator, handed `operator` as every handler's memo, beside the HTTP endpoint and the role's
    monitor."""
    import kopf

    from maestro.runtime import serving

    peering = operator.leadership.peering
    namespaces = list(operator.settings.namespaces)
    identity: Any = peering.identity if peering else None  # a str; kopf's type for it is private
    started = asyncio.Event()  # set by kopf once its startup handlers have run
    server = None
    if args.metrics_port:
        try:
            server = await serving.start(
                args.metrics_bind_address, args.metrics_port, started, operator.leadership.role
            )
        except OSError as error:  # the port is taken: say so rather than print a traceback
            address = f"{args.metrics_bind_address}:{args.metrics_port}"
            raise SystemExit(f"maestro run: cannot serve on {address}: {error.strerror or error}") from None
    # The role is checked a few times per lifetime: `maestro_leader` and /readyz follow a takeover quickly.
    monitor = asyncio.create_task(operator.leadership.monitor(max(1.0, args.peering_lifetime / 5)))
    stopping = asyncio.Event()
    signals = asyncio.create_task(_stand_down_on_signals(operator, started, stopping))
    try:
        await kopf.operator(
            standalone=peering is None,
            peering_name=peering.name if peering else None,
            priority=peering.priority if peering else None,
            identity=identity,
            clusterwide=not namespaces,
            namespaces=namespaces,
            settings=settings,
            ready_flag=started,
            stop_flag=stopping,
            memo=operator,
        )
    finally:
        signals.cancel()
        monitor.cancel()
        if server is not None:
            await server.cleanup()


async def _stand_down_on_signals(operator: Operator, started: asyncio.Event, stopping: asyncio.Event) -> None:
    """Once kopf has started, SIGTERM and SIGINT stop this replica acting at once, then stop kopf. kopf removes
    its peering record as it stops, long before its cleanup handlers run: the operator's own watches would go on
    starting passes meanwhile, beside the standby that took over (docs/operator.md, HA)."""
    await started.wait()
    loop = asyncio.get_running_loop()

    def stand_down(signum: signal.Signals) -> None:
        logging.getLogger(__name__).info("%s received: no pass starts from now on; stopping", signum.name)
        operator.leadership.stand_down()
        operator.stop()
        stopping.set()

    for signum in (signal.SIGINT, signal.SIGTERM):  # in place of kopf's own handlers, which only stop kopf
        loop.add_signal_handler(signum, stand_down, signum)


def add_run(subparsers: Any) -> None:
    from maestro.runtime import leadership

    parser = subparsers.add_parser(
        "run",
        help="run the operator against the current kubeconfig",
        description="Run the Maestro operator (kopf) against the cluster of the current kubeconfig "
        "(KUBECONFIG, or the in-cluster service account). Watches all namespaces unless --namespace is given.",
    )
    parser.add_argument(
        "-n",
        "--namespace",
        action="append",
        metavar="NS",
        help="watch this namespace (repeatable); default: all namespaces",
    )
    parser.add_argument("-A", "--all-namespaces", action="store_true", help="watch all namespaces (default)")
    parser.add_argument("--log-format", choices=["text", "json"], default="text", help="log line format")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=DEFAULT_METRICS_PORT,
        metavar="PORT",
        help=f"serve /metrics, /healthz and /readyz on this port (default {DEFAULT_METRICS_PORT}; 0: off)",
    )
    parser.add_argument(
        "--metrics-bind-address",
        default="0.0.0.0",
        metavar="ADDR",
        help="the address to serve them on (default 0.0.0.0)",
    )
    parser.add_argument(
        "--peering",
        metavar="NAME",
        help="HA: join the kopf peering object NAME (the Helm chart uses "
        f"{leadership.DEFAULT_NAME!r}); of the processes sharing it only one acts. Created when missing; "
        "the kopf.dev peering CRDs must be installed. Default: standalone, this process always acts",
    )
    parser.add_argument(
        "--peering-lifetime",
        type=int,
        default=leadership.DEFAULT_LIFETIME,
        metavar="SECONDS",
        help="how long a replica's peering record lasts without a keep-alive: a standby takes over at most "
        f"this long after the acting replica dies (default {leadership.DEFAULT_LIFETIME})",
    )
    parser.set_defaults(handler=cmd_run)
