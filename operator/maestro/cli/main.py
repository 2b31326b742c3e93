"""The `maestro` command line: `render`, `validate` and `crd` (offline), `run` (the operator), `--version`.

Each subcommand is one `add_<name>` function that registers its subparser and sets `handler`, a function
from the parsed arguments to an exit code; adding `maestro run` means adding one more such pair. Errors in
the user's input are printed as one line each and exit 1: never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import yaml

import maestro
from maestro import render
from maestro.api import crd
from maestro.api import models as api
from maestro.cli import completion, history, status
from maestro.cli import diff as differ
from maestro.cli import run as runner

Handler = Callable[[argparse.Namespace], int]


class InputError(Exception):
    """The input file cannot be read or is not a MicroserviceApp; the message is for humans."""


def load_apps(path: str) -> list[dict[str, Any]]:
    """The MicroserviceApp documents of a YAML file (`-` for stdin); objects of other API groups are skipped."""
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as stream:
                text = stream.read()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(f"{path}: not valid YAML{line}: {problem}") from None
    apps: list[dict[str, Any]] = []
    for index, doc in enumerate(documents):
        where = f"{path}: document {index + 1}"
        if not isinstance(doc, Mapping):
            raise InputError(f"{where}: not an object")
        if is_other_object(doc):
            continue  # the app's ConfigMaps and Secrets, as `kubectl apply -f` takes them along
        if doc.get("apiVersion") != api.API_VERSION or doc.get("kind") != api.KIND:
            raise InputError(
                f"{where}: expected apiVersion {api.API_VERSION} and kind {api.KIND}, "
                f"got {doc.get('apiVersion')!r} and {doc.get('kind')!r}"
            )
        apps.append(dict(doc))
    if not apps:
        raise InputError(f"{path}: no MicroserviceApp in the file")
    return apps


def is_other_object(doc: Mapping[str, Any]) -> bool:
    """A Kubernetes object of another API group; a maestro.dev document of the wrong kind or version is an error."""
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str) or not api_version or not kind:
        return False
    return api_version.split("/")[0] != api.API_VERSION.split("/")[0]


def app_errors(app: Mapping[str, Any]) -> list[str]:
    """Every problem of one app as `field.path: message` lines (empty when valid)."""
    metadata = app.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    if not isinstance(name, str) or not name:
        return ["metadata.name: required value"]
    try:
        api.validate_app(name, app.get("spec"))
    except api.SpecError as exc:
        return exc.lines()
    return []


def _dump_all(objects: Sequence[Mapping[str, Any]]) -> str:
    return yaml.safe_dump_all([dict(obj) for obj in objects], sort_keys=False, explicit_start=True, width=110)


# ---------------------------------------------------------------------------------------------- subcommands


def cmd_render(args: argparse.Namespace) -> int:
    apps = load_apps(args.file)
    children: list[dict[str, Any]] = []
    failed = False
    for app in apps:
        errors = app_errors(app)
        if errors:
            failed = True
            name = (app.get("metadata") or {}).get("name", "?")
            for line in errors:
                print(f"{args.file}: {name}: {line}", file=sys.stderr)
            continue
        children += render.render_app(app)
    if failed:
        return 1
    sys.stdout.write(_dump_all(children))
    return 0


def _add_file_command(subparsers: Any, name: str, handler: Any, help: str, description: str) -> None:
    """A subcommand that reads apps from `-f FILE` (or stdin)."""
    parser = subparsers.add_parser(name, help=help, description=description)
    parser.add_argument("-f", "--file", required=True, help="a YAML file of MicroserviceApps, or - for stdin")
    parser.set_defaults(handler=handler)


def add_render(subparsers: Any) -> None:
    _add_file_command(
        subparsers,
        "render",
        cmd_render,
        help="print the children of an app as YAML (for kubectl apply -f -)",
        description="Print every Deployment, Service, HorizontalPodAutoscaler and PodDisruptionBudget of the "
        "apps in a file, as multi-document YAML. Without metadata.uid no ownerReferences are written.",
    )


def cmd_validate(args: argparse.Namespace) -> int:
    apps = load_apps(args.file)
    failed = False
    for app in apps:
        errors = app_errors(app)
        name = (app.get("metadata") or {}).get("name", "?")
        if errors:
            failed = True
            prefix = f"{name}: " if len(apps) > 1 else ""
            for line in errors:
                print(prefix + line, file=sys.stderr)
        else:
            print(f"{name}: valid")
    return 1 if failed else 0


def add_validate(subparsers: Any) -> None:
    _add_file_command(
        subparsers,
        "validate",
        cmd_validate,
        help="check apps as the API server and the operator would",
        description="Check the apps in a file: schema, the CRD's rules, dependencies and child name lengths. "
        "Exit 0 when all are valid; else exit 1 with one `field.path: message` line per error.",
    )


def cmd_crd(args: argparse.Namespace) -> int:
    sys.stdout.write(crd.crd_yaml())
    return 0


def add_crd(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "crd", help="print the MicroserviceApp CRD", description="Print the CustomResourceDefinition as YAML."
    )
    parser.set_defaults(handler=cmd_crd)


# Subcommands in help order; `run` (the operator) registers itself here with its own add_run.
SUBCOMMANDS: list[Callable[[Any], None]] = [
    add_render,
    add_validate,
    add_crd,
    differ.add_diff,
    status.add_status,
    history.add_history,
    history.add_rollback,
    runner.add_run,
    completion.add_completion,
]


def program_name(argv0: str) -> str:
    """`kubectl maestro` when run as the kubectl plugin (kubectl runs the executable `kubectl-maestro` on PATH),
    else `maestro`: what usage and error lines call the program."""
    return "kubectl maestro" if os.path.basename(argv0).startswith("kubectl-maestro") else "maestro"


def build_parser(prog: str = "maestro") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Maestro: run a microservice app from one resource."
    )
    parser.add_argument("--version", action="version", version=f"maestro {maestro.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(program_name(sys.argv[0]))
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return handler(args)
    except InputError as exc:
        print(f"maestro: {exc}", file=sys.stderr)
        return 1
    except api.SpecError as exc:  # defensive: handlers report these themselves
        for line in exc.lines():
            print(line, file=sys.stderr)
        return 1
    except BrokenPipeError:  # `maestro render ... | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
