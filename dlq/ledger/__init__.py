"""The ledger: one item per (event id, rule, target), the truth about every event.

`Ledger` is the DynamoDB table; `MemoryLedger` its in-memory twin for unit tests; both
implement `LedgerStore`, which is what the use cases depend on. The package knows no
Genesys, target or metrics code.

| module | holds |
| --- | --- |
| `status` | statuses, which are final, the claim rule |
| `model` | items, history entries, the errors of a transition (re-exports `status`) |
| `port` | `LedgerStore`, the contract both stores keep (held by the contract tests) |
| `store`, `writes`, `reads` | `Ledger` on DynamoDB (low-level boto3): transitions, writes, reads |
| `moves` | `StatusMoves`: who both stores tell of each status change (the counts kept in Redis) |
| `memory` | `MemoryLedger`, its in-memory twin |
| `forgetting`, `redriving`, `resolving` | what `forget`, `redrive`, `resolve` write, for both |
| `changes` | an operator's change, written only if the item is as it was listed |
| `schema`, `marshal`, `pages` | the table's definition, typed attribute values, paged reads |
"""

from dlq.ledger.memory import MemoryLedger
from dlq.ledger.model import (
    FINAL_STATUSES,
    HISTORY_LIMIT,
    IMMINENT_SECONDS,
    PENDING_STATUSES,
    REDRIVABLE_STATUSES,
    REJECTED_BODY_LIMIT,
    RESOLVABLE_STATUSES,
    Attempt,
    ClaimRefused,
    LedgerItem,
    Receipt,
    StaleClaim,
    Status,
    about_to_change,
    claimable,
)
from dlq.ledger.port import LedgerStore
from dlq.ledger.schema import BY_CONVERSATION_INDEX, BY_STATUS_INDEX, create_table, table_definition
from dlq.ledger.store import Ledger

__all__ = [
    "BY_CONVERSATION_INDEX",
    "BY_STATUS_INDEX",
    "FINAL_STATUSES",
    "HISTORY_LIMIT",
    "IMMINENT_SECONDS",
    "PENDING_STATUSES",
    "REDRIVABLE_STATUSES",
    "REJECTED_BODY_LIMIT",
    "RESOLVABLE_STATUSES",
    "Attempt",
    "ClaimRefused",
    "Ledger",
    "LedgerItem",
    "LedgerStore",
    "MemoryLedger",
    "Receipt",
    "StaleClaim",
    "Status",
    "about_to_change",
    "claimable",
    "create_table",
    "table_definition",
]
