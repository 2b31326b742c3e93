"""The log records of `maestro run` before kopf's logging is set up: the start's listings begin before kopf
is imported (cli/run.py), and what they log meanwhile must come out in kopf's format, not be lost."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from logging.handlers import MemoryHandler


class EarlyLog(MemoryHandler):
    """Holds every record at `level` or above from now until `hand_over`."""

    def __init__(self, level: int) -> None:
        # No target and no size to flush at: it holds everything until `hand_over` (a start logs a few lines).
        super().__init__(capacity=sys.maxsize, flushLevel=logging.CRITICAL + 1)
        logging.getLogger().addHandler(self)
        logging.getLogger().setLevel(level)

    def hand_over(self, configure: Callable[[], None]) -> None:
        """Stop holding, set up the handlers (`configure`: kopf.configure), then log the records held through
        them. A record logged during `configure` itself goes to Python's last-resort handler (warnings and
        errors only): a window of microseconds, as kopf is imported already."""
        logging.getLogger().removeHandler(self)
        configure()
        with self.lock:  # type: ignore[union-attr]  # set by Handler.__init__
            held, self.buffer = self.buffer, []
        for record in held:
            logging.getLogger(record.name).handle(record)
        self.close()
