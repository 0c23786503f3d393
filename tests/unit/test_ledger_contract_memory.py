"""The ledger contract (tests/contract/ledger_contract.py) held against `MemoryLedger`, so
`make unit` keeps the in-memory twin to the contract DynamoDB passes in tests/contract."""

from __future__ import annotations

import pytest

# The contract's tests and fixtures, collected here against this module's `backend`.
from contract.ledger_contract import *  # noqa: F403
from contract.ledger_contract import Backend, memory_backend
from contract.ledger_contract_moves import *  # noqa: F403
from contract.ledger_contract_operators import *  # noqa: F403


@pytest.fixture()
def backend() -> Backend:
    return memory_backend()
