"""`maestro status NAME`: one view of a whole app (its services, their children, why something is wrong), and
with `--watch` the same view followed through a rollout until it is Ready (exit 0), failed (1) or `--timeout`
passes (3). What the view shows is statusview.py's (pure); this module reads the cluster and prints.

Exit codes: 0 shown (without --watch) or Ready; 1 Degraded or Invalid at the app's current generation (--watch);
2 the app does not exist, or the cluster cannot be read (one line, never a traceback); 3 --timeout passed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

import requests
import yaml
from pykube.exceptions import KubernetesError

from maestro.api import models as api
from maestro.cli import cluster, statusview
from maestro.kube import client as kube

POLL_SECONDS = 1.0  # --watch reads the app and its children once a second: simple, and robust to restarts
EXIT_FAILED, EXIT_ERROR, EXIT_TIMEOUT = 1, 2, 3
_CLEAR = "\x1b[H\x1b[2J"  # cursor home, erase the screen

Snapshot = tuple[Mapping[str, Any], dict[str, Any]]  # the app as read, and its tree (statusview.build)


class NotFound(Exception):
    """The app does not exist."""


def add_status(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "status",
        help="show an app as a tree of its services and children (--watch: follow a rollout)",
        description="Show a MicroserviceApp as a tree: its phase, its services in spec order, their "
        "Deployments, Services, autoscalers and disruption budgets, and why something is not Ready. With "
        "--watch, redraw until the app is Ready at its current generation (exit 0), Degraded or Invalid "
        "(exit 1) or --timeout passes (exit 3). Exit 2: no such app, or the cluster cannot be read.",
    )
    parser.add_argument("name", metavar="NAME", help="the MicroserviceApp's name")
    cluster.add_flags(parser)
    parser.add_argument("-o", "--output", choices=("json", "yaml"), help="print the tree as data")
    parser.add_argument(
        "-w", "--watch", action="store_true", help="follow the rollout until the app is Ready or failed"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="with --watch: give up after this many seconds (exit 3); default: no limit",
    )
    parser.set_defaults(handler=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    if args.timeout is not None and not args.watch:
        return _fail("--timeout goes with --watch")
    display = Display.for_stream(sys.stdout, args.output)
    try:
        namespace = cluster.connect(args)
    except cluster.ConnectError as error:
        return _fail(str(error))
    except (KubernetesError, yaml.YAMLError) as error:  # no kubeconfig at all, or one that is not YAML
        return _fail(f"cannot load the kubeconfig: {error}")
    try:

        def fetch() -> Snapshot:
            return snapshot(namespace, args.name)

        if not args.watch:
            display.show(fetch()[1])
            return 0
        return watch(fetch, display, timeout=args.timeout)
    except NotFound:
        return _fail(f"MicroserviceApp {args.name!r} not found in namespace {namespace!r}")
    except kube.ApiError as error:
        return _fail(f"the API server refused: {error}")
    except (requests.RequestException, OSError) as error:
        return _fail(f"cannot reach the API server: {error}")
    except KeyboardInterrupt:
        return 130


def _fail(message: str) -> int:
    print(f"maestro status: {' '.join(message.split())}", file=sys.stderr)
    return EXIT_ERROR


def snapshot(namespace: str, name: str) -> Snapshot:
    """The app and its tree, as the cluster has them now. The Events are read only while it is not Ready."""
    app = kube.get(api.KIND, namespace, name)
    if app is None:
        raise NotFound(name)
    children = kube.owned_children(app)
    events = [] if statusview.outcome(app) == 0 else kube.list_events(namespace, api.KIND, name)
    return app, statusview.build(app, children, events)


def watch(
    fetch: Callable[[], Snapshot],
    display: Display,
    *,
    timeout: float | None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Show the app until it is Ready at its current generation (0), failed at it (1) or `timeout` seconds
    have passed (3). On a terminal the view is redrawn at every poll; piped, a view is printed only when it
    differs from the last one printed."""
    start = clock()
    shown: dict[str, Any] | None = None
    while True:
        app, tree = fetch()
        if display.terminal or tree != shown:
            display.show(tree, elapsed=clock() - start)
            shown = tree
        result = statusview.outcome(app)
        if result is not None:
            return result
        if timeout is not None and clock() - start >= timeout:
            print(
                f"maestro status: timed out after {timeout:g}s: {tree['name']} is not Ready "
                f"({statusview.progress_line(tree)})",
                file=sys.stderr,
            )
            return EXIT_TIMEOUT
        sleep(POLL_SECONDS)


@dataclass(frozen=True)
class Display:
    """How the tree is printed: as text (colours, width and tree characters fitting the stream) or as data."""

    stream: TextIO
    output: str | None  # "json", "yaml" or None (text)
    terminal: bool
    color: bool
    width: int
    glyphs: statusview.Glyphs

    @classmethod
    def for_stream(cls, stream: TextIO, output: str | None) -> Display:
        terminal = stream.isatty()
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
        return cls(
            stream=stream,
            output=output,
            terminal=terminal,
            color=terminal and not os.environ.get("NO_COLOR"),
            width=shutil.get_terminal_size().columns if terminal else statusview.WIDTH,
            glyphs=statusview.UNICODE if encoding.startswith("utf") else statusview.ASCII,
        )

    def show(self, tree: dict[str, Any], *, elapsed: float | None = None) -> None:
        """One view; `elapsed` (seconds watched) when watching: a progress line is added, the screen cleared
        first on a terminal, and data goes out one document per view."""
        watching = elapsed is not None
        if self.output == "json":
            text = json.dumps(tree) if watching else json.dumps(tree, indent=2)
        elif self.output == "yaml":
            text = yaml.safe_dump(tree, sort_keys=False, explicit_start=watching).rstrip("\n")
        else:
            now = datetime.now(UTC)
            lines = statusview.lines(tree, now=now, width=self.width, color=self.color, glyphs=self.glyphs)
            if watching:
                summary = statusview.progress_line(tree)
                lines.append(f"{summary} ({elapsed:.0f}s)" if self.terminal else summary)
                if self.terminal:
                    lines[0] = _CLEAR + lines[0]
                else:
                    lines.append("")  # a blank line between the views
            text = "\n".join(lines)
        self.stream.write(text + "\n")
        self.stream.flush()
