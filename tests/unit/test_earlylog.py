"""`maestro run` holds the log records of its first listings until kopf's logging is set up."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from maestro.cli.earlylog import EarlyLog


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def root() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield root
    root.handlers[:], root.level = handlers, level


def test_records_before_the_handlers_are_set_up_come_out_once_through_them(root: logging.Logger) -> None:
    early = EarlyLog(logging.INFO)
    log = logging.getLogger("maestro.test")
    log.info("listed %d apps", 3)
    log.debug("below the level: not held")
    log.warning("a warning")
    collect = Collect()
    early.hand_over(lambda: root.addHandler(collect))  # what kopf.configure does
    log.info("after the hand-over")
    assert collect.messages == ["listed 3 apps", "a warning", "after the hand-over"]
    assert early not in root.handlers
