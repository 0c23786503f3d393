"""An operator's change to an item, stated once for both stores (`Ledger`, `MemoryLedger`).

Redrive, resolve and forget each read an item, decide what to write, and write it only
if the item is still as they read it: the same status and `updated_at`, not forgotten
(and, for resolve, held by no live lease). A `Change` is that decision as data: each store
applies it in one conditional write, DynamoDB by `expression`, the twin by `holds`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dlq.ledger.model import LedgerItem


@dataclass(frozen=True, slots=True)
class Change:
    """What to write to an item `listed` as it was, if it still is."""

    listed: LedgerItem
    sets: Mapping[str, Any]
    removes: tuple[str, ...] = ()
    #: Counters one is added to (absent counts as 0).
    counts: tuple[str, ...] = ()
    #: Refused while a lease runs past this moment (epoch seconds): an attempt under way.
    no_live_lease_at: float | None = None
    #: Written even when the item was forgotten since (resolve: nothing is sent).
    forgotten_too: bool = False

    def holds(self, item: Mapping[str, Any]) -> bool:
        """Whether the stored attributes `item` still allow the change (the twin's check)."""
        lease = item.get("lease_until")
        return (
            item.get("status") == self.listed.status
            and item.get("updated_at") == self.listed.updated_at
            and (self.forgotten_too or "forgotten_at" not in item)
            and (
                self.no_live_lease_at is None
                or lease is None
                or float(lease) < self.no_live_lease_at
            )
        )

    def apply(self, item: dict[str, Any]) -> None:
        """Write the change to the stored attributes `item` (the twin's write)."""
        item.update(self.sets)
        for name in self.counts:
            item[name] = int(item.get(name, 0)) + 1
        for name in self.removes:
            item.pop(name, None)

    def expression(self) -> tuple[str, str, dict[str, str], dict[str, Any]]:
        """DynamoDB's UpdateExpression, ConditionExpression, names and values of the change."""
        names = {"#s": "status"}
        listed = self.listed
        values: dict[str, Any] = {"old": listed.status.value, "old_updated": listed.updated_at}
        sets = []
        for n, (name, value) in enumerate(self.sets.items()):
            names[f"#n{n}"] = name
            values[f"v{n}"] = value
            sets.append(f"#n{n} = :v{n}")
        update = f"SET {', '.join(sets)}"
        if self.counts:
            values["one"] = 1
            adds = []
            for n, name in enumerate(self.counts):
                names[f"#c{n}"] = name
                adds.append(f"#c{n} :one")
            update += f" ADD {', '.join(adds)}"
        if self.removes:
            removes = []
            for n, name in enumerate(self.removes):
                names[f"#r{n}"] = name
                removes.append(f"#r{n}")
            update += f" REMOVE {', '.join(removes)}"
        condition = "#s = :old AND updated_at = :old_updated"
        if not self.forgotten_too:
            condition += " AND attribute_not_exists(forgotten_at)"
        if self.no_live_lease_at is not None:
            condition += " AND (attribute_not_exists(lease_until) OR lease_until < :lease_now)"
            values["lease_now"] = self.no_live_lease_at
        return update, condition, names, values
