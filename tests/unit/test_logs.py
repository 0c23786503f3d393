"""`configure_logging`: which of Celery's per-task lines a worker writes at each level."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from dlq.logs import configure_logging

RECEIVED = "celery.worker.strategy"  # Celery's "Task ... received" line
SUCCEEDED = "celery.app.trace"  # its "Task ... succeeded in" line, with the result


@pytest.fixture(autouse=True)
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logging.getLogger(RECEIVED).level)
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])
    logging.getLogger(RECEIVED).setLevel(saved[2])


def test_at_info_a_task_logs_its_outcome_and_succeeded_line_but_not_received():
    configure_logging(level="INFO", stream=io.StringIO())

    assert not logging.getLogger(RECEIVED).isEnabledFor(logging.INFO)
    assert logging.getLogger(SUCCEEDED).isEnabledFor(logging.INFO)
    assert logging.getLogger("dlq.replay").isEnabledFor(logging.INFO)


def test_at_debug_the_received_line_is_back():
    configure_logging(level="DEBUG", stream=io.StringIO())

    assert logging.getLogger(RECEIVED).isEnabledFor(logging.INFO)
    assert logging.getLogger(RECEIVED).isEnabledFor(logging.DEBUG)


def test_warnings_of_the_received_logger_still_show_at_info():
    configure_logging(level="INFO", stream=io.StringIO())

    assert logging.getLogger(RECEIVED).isEnabledFor(logging.WARNING)
