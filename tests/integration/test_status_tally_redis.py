"""The status counts' contract (tests/contract/tally_contract.py) on a real redis-server."""

from __future__ import annotations

import pytest
import redis

# The contract's tests and fixtures, collected here against the session's Redis.
from contract.tally_contract import *  # noqa: F403


@pytest.fixture()
def tally_client(redis_client: redis.Redis) -> redis.Redis:
    return redis_client
