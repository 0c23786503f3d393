"""What the end-to-end modules that start workers as processes share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.stack import DevStack


@pytest.fixture()
def launcher(tmp_path: Path) -> Iterator[DevStack]:
    """Starts workers (and Flower) as child processes, logs in tmp_path; stops every one
    of them after the test."""
    stack = DevStack(tmp_path)
    try:
        yield stack
    finally:
        stack.stop()
