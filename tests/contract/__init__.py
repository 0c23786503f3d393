"""The ledger contract: one set of tests every `LedgerStore` must pass.

`ledger_contract.py` holds the tests once; `test_ledger_contract_dynamodb.py` holds them
against the DynamoDB `Ledger` on moto's server, and `tests/unit/test_ledger_contract_memory.py`
against `MemoryLedger`, so `make unit` keeps the in-memory twin honest without a server.

A package, as every folder here is: see tests/unit/__init__.py.
"""
