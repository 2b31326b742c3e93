"""What the subcommands that talk to a cluster share: kubectl's flags (--kubeconfig, --context, -n), so that
`kubectl maestro ...` behaves as kubectl users expect, and connecting with them."""

from __future__ import annotations

import argparse

import pykube

from maestro.kube import client as kube


class ConnectError(Exception):
    """The cluster named by the flags cannot be used (no kubeconfig, unknown context)."""


def add_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kubeconfig", help="the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)"
    )
    parser.add_argument("--context", help="the kubeconfig context (default: its current context)")
    parser.add_argument("-n", "--namespace", help="the namespace (default: the context's namespace)")


def connect(args: argparse.Namespace) -> str:
    """Load the kubeconfig the flags name; the namespace to use (-n, else the context's)."""
    try:
        kube.load_config(args.kubeconfig, args.context)
    # pykube reports a kubeconfig file that does not exist as a PyKubeError, not an OSError
    except (OSError, ValueError, KeyError, pykube.exceptions.PyKubeError) as error:
        raise ConnectError(f"cannot load the kubeconfig: {error}") from error
    return str(args.namespace or kube.default_namespace())
