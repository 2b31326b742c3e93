"""`maestro run`: its flags (the operator itself runs in the e2e tests)."""

from __future__ import annotations

from maestro.cli import main as cli
from maestro.cli import run as runner


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


def test_metrics_and_peering_flags() -> None:
    args = cli.build_parser().parse_args(["run"])
    assert (args.metrics_port, args.metrics_bind_address) == (8080, "0.0.0.0")
    assert (args.peering, args.peering_lifetime) == (None, 10)  # standalone unless --peering
    args = cli.build_parser().parse_args(
        ["run", "--metrics-port=0", "--peering=maestro", "--peering-lifetime=5"]
    )
    assert (args.metrics_port, args.peering, args.peering_lifetime) == (0, "maestro", 5)


def test_peering_lifetime_too_short() -> None:
    args = cli.build_parser().parse_args(["run", "--peering=maestro", "--peering-lifetime=1"])
    assert runner.cmd_run(args) == 2
