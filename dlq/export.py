"""The export use case: the items a filter chooses, as CSV or JSON lines, one page at a time.

Rows are made from items as the ledger's paginated queries yield them (`dlq.redrive.
select`, a generator over `LedgerStore.by_status`): nothing collects the items, so an
export of a million items holds one page of them at a time. No body and no error text is
exported: ids, status, codes, counts, times, and who did what (the history's operator
entries, compact).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

from dlq.ledger import LedgerItem

#: The columns, in order (CSV's header; JSON lines' keys).
COLUMNS = (
    "event_id",
    "conversation_id",
    "rule_arn",
    "target_arn",
    "status",
    "last_error_code",
    "attempts",
    "received_at",
    "updated_at",
    "operator_actions",
)
FORMATS = ("csv", "jsonl")
#: A spreadsheet reads a cell beginning with these as a formula: such a cell is quoted.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def operator_actions(item: LedgerItem) -> list[dict[str, str]]:
    """The item's history entries an operator made: when, what, who."""
    return [
        {"at": str(h.get("at", "")), "action": str(h.get("outcome", "")), "by": str(h["operator"])}
        for h in item.history
        if h.get("operator")
    ]


def row(item: LedgerItem) -> dict[str, Any]:
    """One item's row (JSON values; CSV writes them as text)."""
    return {
        "event_id": item.event_id,
        "conversation_id": item.conversation_id,
        "rule_arn": item.rule_arn,
        "target_arn": item.target_arn,
        "status": item.status.value,
        "last_error_code": item.last_error_code,
        "attempts": item.attempts,
        "received_at": item.received_at,
        "updated_at": item.updated_at,
        "operator_actions": operator_actions(item),
    }


def compact(actions: list[dict[str, str]]) -> str:
    """Operator actions in one cell: `<at> <action> by <who>`, `; ` between them."""
    return "; ".join(f"{a['at']} {a['action']} by {a['by']}" for a in actions)


def export(items: Iterable[LedgerItem], out: TextIO, *, format: str = "csv") -> int:
    """Write `items` to `out` as they come; how many were written."""
    if format not in FORMATS:
        raise ValueError(f"format is one of {FORMATS}, not {format!r}")
    if format == "jsonl":
        return _count(out.write(json.dumps(row(i), ensure_ascii=False) + "\n") for i in items)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    return _count(writer.writerow(_csv_cells(row(i))) for i in items)


def _csv_cells(values: dict[str, Any]) -> list[str]:
    cells = []
    for name in COLUMNS:
        value = values[name]
        text = compact(value) if name == "operator_actions" else "" if value is None else str(value)
        cells.append("'" + text if text.startswith(_FORMULA_STARTS) else text)
    return cells


def _count(written: Iterator[object]) -> int:
    count = 0
    for _ in written:
        count += 1
    return count
