"""`maestro history NAME` (the app's revisions, docs/api.md "Rollbacks") and `maestro rollback NAME
[--to-revision N]` (write a revision's spec back into the app, as `kubectl rollout undo` does for a Deployment).

The table is `history_table` (pure); the commands read the cluster and print. Exit codes: 0 done, 1 no such
revision (or nothing to do), 2 the app does not exist or the cluster cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import requests
import yaml
from pykube.exceptions import KubernetesError

from maestro.api import models as api
from maestro.cli import cluster
from maestro.controller import revisions
from maestro.kube import client as kube

EXIT_NOTHING, EXIT_ERROR = 1, 2


def _services(items: Mapping[str, Any]) -> str:
    return ", ".join(f"{name}={value}" for name, value in items.items()) or "-"


def history_table(app: Mapping[str, Any], recorded: Sequence[revisions.Revision]) -> list[list[str]]:
    """Header and one row per revision, newest first: number, generation, images, config hashes, when it was
    Ready, and its outcome (the current one; the one a failed rollout returned to). A failure in force comes
    first, as the row of the generation that failed."""
    status = app.get("status") or {}
    last_good = (status.get("lastGoodRevision") or {}).get("name")
    failure = status.get("rolloutFailure") or {}
    rows = [["REVISION", "GENERATION", "IMAGES", "CONFIG", "READY AT", "OUTCOME"]]
    if failure:
        returned = (failure.get("revision") or {}).get("revision")
        action = f"rolled back to {returned}" if failure.get("action") == "RolledBack" else "held"
        rows.append(
            [
                "-",
                str(failure.get("generation")),
                "-",
                "-",
                "-",
                f"Failed ({failure.get('service')}: {failure.get('cause')}); {action}",
            ]
        )
    for revision in sorted(recorded, key=lambda r: r.number, reverse=True):
        images = {name: ",".join(record.images) for name, record in revision.services.items()}
        config = {
            name: record.config_hash for name, record in revision.services.items() if record.config_hash
        }
        outcome = "Ready"
        if revision.name == last_good:
            outcome += " (returned to)" if failure.get("action") == "RolledBack" else " (current)"
        rows.append(
            [
                str(revision.number),
                str(revision.generation),
                _services(images),
                _services(config),
                revision.ready_at or "-",
                outcome,
            ]
        )
    return rows


def format_table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def add_history(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "history",
        help="list an app's revisions (each time the whole app was Ready)",
        description="List the revisions of a MicroserviceApp, newest first: every time the whole app became "
        "Ready at a new rendering (spec and config), Maestro recorded its services' children, images and "
        "config hashes (apps/v1 ControllerRevisions owned by the app, up to spec.revisionHistoryLimit). A "
        "failed rollout in force is shown first, with what was done about it.",
    )
    parser.add_argument("name", metavar="NAME", help="the MicroserviceApp's name")
    cluster.add_flags(parser)
    parser.set_defaults(handler=cmd_history)


def add_rollback(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "rollback",
        help="write a revision's spec back into the app (not under GitOps: revert in Git)",
        description="Write the spec of one of the app's revisions back into the MicroserviceApp, as `kubectl "
        "rollout undo` does for a Deployment; the operator then rolls the app out to it. Default: the last "
        "revision at which the whole app was Ready (after an automatic rollback: make the spec say what runs). "
        "Under GitOps (Argo CD, Flux) do not use this: the controller would put Git's spec back; revert the "
        "change in Git instead.",
    )
    parser.add_argument("name", metavar="NAME", help="the MicroserviceApp's name")
    parser.add_argument(
        "--to-revision", type=int, metavar="N", help="the revision to return to (see `maestro history`)"
    )
    cluster.add_flags(parser)
    parser.set_defaults(handler=cmd_rollback)


def _run(args: argparse.Namespace, command: str, body: Callable[[str, dict[str, Any]], int]) -> int:
    """Connect, read the app, and run `body(namespace, app)`; the cluster's errors as one line (exit 2)."""
    try:
        namespace = cluster.connect(args)
        app = kube.get(api.KIND, namespace, args.name)
        if app is None:
            return _fail(command, f"MicroserviceApp {args.name!r} not found in namespace {namespace!r}")
        return body(namespace, app)
    except cluster.ConnectError as error:
        return _fail(command, str(error))
    except (KubernetesError, yaml.YAMLError) as error:
        return _fail(command, f"cannot load the kubeconfig: {error}")
    except kube.ApiError as error:
        return _fail(command, f"the API server refused: {error}")
    except (requests.RequestException, OSError) as error:
        return _fail(command, f"cannot reach the API server: {error}")


def _fail(command: str, message: str, code: int = EXIT_ERROR) -> int:
    print(f"maestro {command}: {' '.join(message.split())}", file=sys.stderr)
    return code


def _recorded(app: Mapping[str, Any]) -> list[revisions.Revision]:
    return [revisions.read_revision(obj) for obj in kube.revisions(app)]


def cmd_history(args: argparse.Namespace) -> int:
    def show(namespace: str, app: dict[str, Any]) -> int:
        sys.stdout.write(format_table(history_table(app, _recorded(app))))
        return 0

    return _run(args, "history", show)


def cmd_rollback(args: argparse.Namespace) -> int:
    def write_back(namespace: str, app: dict[str, Any]) -> int:
        recorded = {revision.number: revision for revision in _recorded(app)}
        wanted = args.to_revision or ((app.get("status") or {}).get("lastGoodRevision") or {}).get("revision")
        if wanted is None:
            return _fail(
                "rollback", f"{args.name} has no revision yet: it has never been Ready", EXIT_NOTHING
            )
        if wanted not in recorded:
            known = ", ".join(str(n) for n in sorted(recorded)) or "none"
            return _fail(
                "rollback", f"{args.name} has no revision {wanted} (revisions: {known})", EXIT_NOTHING
            )
        revision = recorded[wanted]
        if app.get("spec") == revision.spec:
            print(f"{args.name}: the spec is revision {wanted}'s already")
            return 0
        kube.replace_spec(app, revision.spec)
        print(f"{args.name}: spec set to revision {wanted}'s (generation {revision.generation}); rolling out")
        return 0

    return _run(args, "rollback", write_back)
