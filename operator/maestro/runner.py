"""`maestro run`: the operator itself, kopf running the handlers against the current kubeconfig.

kopf is imported only here, when the subcommand runs, so the offline subcommands stay fast.
Who calls it: cli.py registers `add_run`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any


def cmd_run(args: argparse.Namespace) -> int:
    namespaces: list[str] = list(args.namespace or [])
    if namespaces and args.all_namespaces:
        print("maestro run: use --namespace or --all-namespaces, not both", file=sys.stderr)
        return 2

    import kopf

    from maestro import handlers  # registers the handlers and the settings

    log_format = kopf.LogFormat.JSON if args.log_format == "json" else kopf.LogFormat.FULL
    kopf.configure(verbose=args.verbose, log_format=log_format)
    if not args.verbose:
        # kopf logs "Handler ... succeeded" for every watch event handled: thousands a minute while apps
        # converge, drowning Maestro's own lines (maestro.*). Its warnings and errors still show.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    handlers.WATCHED_NAMESPACES = namespaces or None
    kopf.run(
        standalone=True,  # one replica, no peering objects needed
        clusterwide=not namespaces,
        namespaces=namespaces,
    )
    return 0


def add_run(subparsers: Any) -> None:
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
    parser.set_defaults(handler=cmd_run)
