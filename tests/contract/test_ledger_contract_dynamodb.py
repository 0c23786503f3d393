"""The ledger contract (`ledger_contract.py`) held against the DynamoDB `Ledger` on moto's
server, the reference the in-memory twin is held to in tests/unit."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dlq.settings import Settings

# The contract's tests and fixtures, collected here against this module's `backend`.
from .ledger_contract import *  # noqa: F403
from .ledger_contract import Backend, dynamodb_backend
from .ledger_contract_moves import *  # noqa: F403
from .ledger_contract_operators import *  # noqa: F403


@pytest.fixture()
def backend(moto_server, make_settings: Callable[..., Settings], unique: str) -> Backend:
    return dynamodb_backend(make_settings(), f"contract-{unique}")
