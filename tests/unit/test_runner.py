"""`maestro run`: its flags (the operator itself runs in the e2e tests)."""

from __future__ import annotations

from maestro import cli, runner


def test_run_flags() -> None:
    args = cli.build_parser().parse_args(["run", "-n", "a", "--namespace", "b", "--log-format", "json", "-v"])
    assert args.handler is runner.cmd_run
    assert args.namespace == ["a", "b"]
    assert (args.log_format, args.verbose, args.all_namespaces) == ("json", True, False)


def test_run_defaults_to_all_namespaces_and_text_logs() -> None:
    args = cli.build_parser().parse_args(["run"])
    assert (args.namespace, args.log_format, args.verbose) == (None, "text", False)


def test_namespace_and_all_namespaces_conflict() -> None:
    args = cli.build_parser().parse_args(["run", "-n", "a", "-A"])
    assert runner.cmd_run(args) == 2
