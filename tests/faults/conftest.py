"""Fixtures of the fault cases (the cluster, CRD, namespace and API client come from tests/conftest.py): the
operator as a subprocess that a case may kill, and the figures in pytest's summary."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import operator_process
from tests.e2e.cluster import TestCluster
from tests.e2e.operator_process import OperatorProcess
from tests.faults import figures


@pytest.fixture
def op(
    request: pytest.FixtureRequest, test_cluster: TestCluster, crd: None, namespace: str, tmp_path: Path
) -> Iterator[OperatorProcess]:
    """The operator (`maestro run --namespace <the case's namespace>`), started; a case may kill it."""
    yield from operator_process.running(request, namespace, tmp_path)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if figures.SESSION:
        terminalreporter.section(f"fault-injection figures (also in {figures.FILE})")
        for line in figures.SESSION:
            terminalreporter.write_line(json.dumps(line))
