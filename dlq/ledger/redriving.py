"""What `LedgerStore.redrive` writes, stated once for both stores.

A redriven item starts again: back to `received` with a fresh attempt budget. Its last
error and code belonged to the attempts before the redrive, so they leave the item (what
it shows as its last error is then its new attempts') and stay in the redrive's history
entry, as the error it was redriven from, with the operator who redrove it.

An edited body (`redrive --body-file`) is kept beside the original (`edited_body`): the
item's attempts send it from then on, also after a later plain redrive, until another
edit replaces it. The history records its SHA-256, never the body.
"""

from __future__ import annotations

import hashlib
from typing import Any

from dlq.clock import iso
from dlq.codes import failure_code
from dlq.ledger.changes import Change
from dlq.ledger.model import HISTORY_LIMIT, Attempt, ClaimRefused, LedgerItem
from dlq.ledger.status import REDRIVABLE_STATUSES, Status

#: The item's attributes a redrive removes.
REDRIVE_CLEARS = ("last_error", "last_error_code")


def check_redrivable(current: LedgerItem | None) -> LedgerItem:
    """The item, if it may be redriven: failed or exhausted, and not forgotten (a forgotten
    item has no body left to replay); `ClaimRefused` otherwise."""
    if current is None or current.status not in REDRIVABLE_STATUSES or current.forgotten_at:
        raise ClaimRefused(current)
    return current


def body_digest(body: str) -> str:
    """A body's SHA-256 as the history spells digests (`sha256:<hex>`)."""
    return "sha256:" + hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()


def redriven_history(
    item: LedgerItem,
    *,
    note: str,
    at: str,
    operator: str | None = None,
    edited_body: str | None = None,
) -> list[dict[str, Any]]:
    """The history with the redrive's entry added: its note and operator, the error it
    leaves behind, and the digest of the body it was given (if any)."""
    entry = Attempt(at=at, outcome=note, error=item.last_error, operator=operator).to_item()
    if item.last_error_code:
        entry["error_code"] = failure_code(item.last_error_code)
    if edited_body is not None:
        entry["edited_body_digest"] = body_digest(edited_body)
    return [*(dict(h) for h in item.history), entry][-HISTORY_LIMIT:]


def redrive_change(
    current: LedgerItem,
    *,
    now: float,
    note: str,
    target_override: str | None = None,
    operator: str | None = None,
    edited_body: str | None = None,
) -> Change:
    """The redrive of `current`: `target_override` routes it elsewhere from now on (without
    one, any earlier override is dropped); `edited_body` is what it sends from now on."""
    at = iso(now)
    history = redriven_history(
        current, note=note, at=at, operator=operator, edited_body=edited_body
    )
    sets: dict[str, Any] = {
        "status": Status.RECEIVED.value,
        "attempts": 0,
        "waits": 0,
        "updated_at": at,
        "next_attempt_at": round(now, 3),
        "redriven_at": at,
        "history": history,
    }
    if target_override:
        sets["target_override"] = target_override
    if edited_body is not None:
        sets["edited_body"] = edited_body
    removes = (*REDRIVE_CLEARS, *(() if target_override else ("target_override",)))
    return Change(current, sets, removes=removes, counts=("redrives",))
