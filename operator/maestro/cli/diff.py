"""`maestro diff -f app.yaml`: what applying the apps in a file would do, before it is done. Each child's change
as a unified diff (what `kubectl diff` would show of the children the operator writes), then the rollout plan:
the services that change and why, the waves they roll in, who waits for whom, the children pruned.

The decisions are controller/preview.py's (pure); here the cluster is read: the app and its children, the
ConfigMaps and Secrets its services hash, and server-side dry runs (of the app against the live CRD, of each
child that would change). Nothing is written. Exit codes as kubectl diff's: 0 no change, 1 changes, 2 an error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from maestro.api import models as api
from maestro.api import timestamps
from maestro.cli import cluster
from maestro.controller import execute, plan, preview
from maestro.controller.compare import ChildKey, in_place, key_of, label
from maestro.kube import client as kube

NO_CHANGES, CHANGES, ERROR = 0, 1, 2


class DiffError(Exception):
    """An app that cannot be diffed: the lines say why (the API server's or Maestro's field errors)."""

    def __init__(self, *lines: str) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines


@dataclass(frozen=True)
class AppDiff:
    namespace: str
    name: str
    exists: bool
    preview: preview.Preview


def cmd_diff(args: argparse.Namespace) -> int:
    from maestro.cli.main import InputError, load_apps  # main imports this module

    try:
        apps = load_apps(args.file)
        default_namespace = cluster.connect(args)
    except (InputError, cluster.ConnectError) as error:
        print(f"maestro diff: {error}", file=sys.stderr)
        return ERROR
    results: list[AppDiff] = []
    failed = False
    for app in apps:
        name = (app.get("metadata") or {}).get("name", "?")
        try:
            results.append(diff_app(app, default_namespace))
        except DiffError as error:
            failed = True
            prefix = f"{name}: " if len(apps) > 1 else ""
            for line in error.lines:
                print(f"maestro diff: {prefix}{line}", file=sys.stderr)
        except (kube.ApiError, OSError) as error:  # the cluster, not the app: unreachable, forbidden, ...
            print(f"maestro diff: {name}: {error}", file=sys.stderr)
            return ERROR
    if args.output == "json":
        print(json.dumps({"apps": [as_json(result) for result in results]}, indent=2))
    else:
        colour = sys.stdout.isatty()
        for result in results:
            sys.stdout.write(as_text(result, colour=colour))
    if failed:
        return ERROR
    return CHANGES if any(result.preview.changed for result in results) else NO_CHANGES


def add_diff(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "diff",
        help="show what applying apps would change: the children's diffs and the rollout plan",
        description="Show what applying the MicroserviceApps in a file would do, without writing anything: a "
        "unified diff of each child the operator would create, update or prune (server-side dry runs), then "
        "the rollout plan: the services that change and why (new, image, config, pod spec, scaling only, "
        "other), the waves they roll in (dependencies first) and who waits for whom. Exit 0: no change; "
        "1: changes; 2: an error (an app the API server or Maestro rejects, a cluster that cannot be reached).",
    )
    parser.add_argument("-f", "--file", required=True, help="a YAML file of MicroserviceApps, or - for stdin")
    parser.add_argument(
        "-o",
        "--output",
        choices=("text", "json"),
        default="text",
        help="text (default) or json, for machines",
    )
    cluster.add_flags(parser)
    parser.set_defaults(handler=cmd_diff)


# ------------------------------------------------------------------------------------------------ observation


def diff_app(app: Mapping[str, Any], default_namespace: str) -> AppDiff:
    """Validate one app against the live CRD and Maestro's rules, observe what the operator would, and preview."""
    meta = dict(app.get("metadata") or {})
    meta["namespace"] = meta.get("namespace") or default_namespace
    meta.pop("uid", None)
    app = {**app, "metadata": meta}
    namespace, name = meta["namespace"], meta.get("name")
    _dry_run_app(app)
    live_app = kube.get(api.KIND, namespace, str(name))
    if live_app is not None:  # its uid, so that the children's ownerReferences match
        meta["uid"] = live_app["metadata"]["uid"]

    spec = plan.validated(app)
    if not isinstance(spec, api.MicroserviceAppSpec):
        raise DiffError(*(f"{path}: {message}" for path, message in spec))
    config = execute.read_config(app, plan.merged_components(spec))
    desired = plan.desire(app, spec, config.hashes, config.copies)
    owned = kube.owned_children(live_app) if live_app is not None else {}
    foreign: dict[ChildKey, dict[str, Any]] = {}
    for key in sorted(desired.keys() - owned.keys()):
        existing = kube.get(key[0], namespace, key[1])
        if existing is not None and live_app is not None and kube.controller_uid(existing) == meta["uid"]:
            owned[key] = existing  # ours, though without the labels the listing selects
        elif existing is not None:
            foreign[key] = existing
    observed = plan.Observed(timestamps.now(), dict((live_app or {}).get("status") or {}), owned, foreign)
    stored = {} if foreign else _dry_run_children(desired, owned)
    result = preview.preview(desired, observed, stored)
    if isinstance(result, plan.Invalid):
        raise DiffError(*(f"{path}: {message}" for path, message in result.errors))
    return AppDiff(namespace, str(name), live_app is not None, result)


def _dry_run_app(app: Mapping[str, Any]) -> None:
    """The app as the API server judges it: its schema and CEL rules (the live CRD's, whatever version)."""
    try:
        kube.apply(app, dry_run=True)
    except kube.ApiError as error:
        if error.status == 404 and 'namespaces "' in error.message:
            raise DiffError(error.message) from None
        if error.status == 404:
            raise DiffError(
                f"the {api.KIND} CRD ({api.PLURAL}.{api.GROUP}) is not installed in this cluster: "
                "install Maestro, or `maestro crd | kubectl apply -f -`"
            ) from None
        if execute.refused(error):
            raise DiffError(error.message) from None
        raise


def _dry_run_children(
    desired: plan.Desired, owned: Mapping[ChildKey, Mapping[str, Any]]
) -> dict[ChildKey, dict[str, Any]]:
    """Each desired child that is not in place, as the API server would store it; a refusal is the app's error,
    as the operator would make it (ChildRejected)."""
    stored: dict[ChildKey, dict[str, Any]] = {}
    for service in desired.order:
        for child in desired.children[service]:
            if in_place(child, owned.get(key_of(child))):
                continue
            try:
                stored[key_of(child)] = kube.apply(child, dry_run=True)
            except kube.ApiError as error:
                message = execute.rejection(child, error)
                if message is not None:
                    raise DiffError(f"{desired.field(service)}: {message}") from None
                raise
    return stored


# --------------------------------------------------------------------------------------------------- printing

_RED, _GREEN, _CYAN, _BOLD, _RESET = "\033[31m", "\033[32m", "\033[36m", "\033[1m", "\033[0m"


def _coloured(diff: str) -> str:
    lines = []
    for line in diff.splitlines():
        if line.startswith(("---", "+++")):
            lines.append(_BOLD + line + _RESET)
        elif line.startswith("-"):
            lines.append(_RED + line + _RESET)
        elif line.startswith("+"):
            lines.append(_GREEN + line + _RESET)
        elif line.startswith("@@"):
            lines.append(_CYAN + line + _RESET)
        else:
            lines.append(line)
    return "\n".join(lines)


def _reason_text(rollout: preview.Rollout) -> str:
    parts = [
        f"config ({', '.join(rollout.config)})" if reason == "config" and rollout.config else reason
        for reason in rollout.reasons
    ]
    return ", ".join(parts) + ("" if rollout.rolls_pods else " (no new pods)")


def as_text(result: AppDiff, *, colour: bool = False) -> str:
    """The diffs, then the rollout plan, for people."""
    shown = result.preview
    title = f"{api.KIND} {result.namespace}/{result.name}" + ("" if result.exists else " (new)")
    if not shown.changed:
        return f"{title}: no changes\n"
    out: list[str] = []
    for child in shown.children:
        if child.diff:
            out.append(_coloured(child.diff) if colour else child.diff)
    counts = {
        action: sum(child.action == action for child in shown.children)
        for action in ("create", "update", "prune")
    }
    summary = ", ".join(f"{count} to {action}" for action, count in counts.items() if count)
    out.append(f"\n{title}: {summary}")
    out.append("Rollout plan:")
    width = max((len(rollout.service) for rollout in shown.rollouts), default=0)
    for rollout in shown.rollouts:
        out.append(f"  wave {rollout.wave}  {rollout.service:<{width}}  {_reason_text(rollout)}")
    for wait in shown.waits:
        out.append(f"  {wait.service} waits for {wait.dependency} ({wait.why})")
    if shown.prunes:
        out.append(f"  prune: {', '.join(shown.prunes)}")
    out.append("  next pass: " + _next_pass(shown.next_pass))
    return "\n".join(out) + "\n"


def _next_pass(decided: plan.Plan) -> str:
    parts = []
    if decided.writes:
        parts.append("writes " + ", ".join(label(write.child) for write in decided.writes))
    if decided.prunes:
        parts.append("prunes " + ", ".join(label(prune.child) for prune in decided.prunes))
    if decided.waiting:
        held = [f"{service} (for {', '.join(deps)})" for service, deps in decided.waiting.items()]
        parts.append("holds back " + ", ".join(held))
    return "; ".join(parts) or "nothing to write"


def as_json(result: AppDiff) -> dict[str, Any]:
    """One app's diff for machines."""
    shown = result.preview
    decided = shown.next_pass
    return {
        "namespace": result.namespace,
        "name": result.name,
        "exists": result.exists,
        "changed": shown.changed,
        "children": [
            {"kind": c.kind, "name": c.name, "service": c.service, "action": c.action, "diff": c.diff}
            for c in shown.children
        ],
        "plan": {
            "services": [
                {
                    "name": rollout.service,
                    "reasons": list(rollout.reasons),
                    "wave": rollout.wave,
                    "rollsPods": rollout.rolls_pods,
                    "config": list(rollout.config),
                }
                for rollout in shown.rollouts
            ],
            "waits": [{"service": w.service, "for": w.dependency, "why": w.why} for w in shown.waits],
            "prunes": list(shown.prunes),
            "nextPass": {
                "writes": [{"change": w.change, "child": label(w.child)} for w in decided.writes],
                "prunes": [label(p.child) for p in decided.prunes],
                "waiting": {service: list(deps) for service, deps in decided.waiting.items()},
            },
        },
    }
