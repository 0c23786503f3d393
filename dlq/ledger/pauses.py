"""Paused targets, kept in the ledger table: the truth that survives losing Redis.

One reserved item holds every pause (`PAUSES_KEY`): its route holds a tab, which
`key_part` never lets through, so no event's (event id, route) key can ever be it. It has
no `status` and no `conversation_id`, so neither index lists it; `scan` and
`items_for_event` skip it (`is_reserved`). Writes are read-modify-write, conditional on
the version read: operators' pauses are rare, and two at once must not lose one.

A pause keeps who paused, why, since when and until when (`--for`); a resumed or lapsed
pause moves to the target's `past` intervals, which an item's age budget skips
(`paused_seconds`): a paused item spends neither attempts nor age.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from botocore.exceptions import ClientError

from dlq.ledger import marshal
from dlq.ledger.model import expiry

#: The ledger key of the pauses' item (event id, route); see the module's docstring.
PAUSES_KEY = ("pause#", "#\tpauses")
#: Past intervals kept per target: enough for any age budget's worth of pauses.
PAST_LIMIT = 50


def is_reserved(item: Mapping[str, Any]) -> bool:
    """Whether a stored item is one of the table's reserved items, not an event's."""
    return "\t" in str(item.get("route", ""))


@dataclass(frozen=True, slots=True)
class Pause:
    """One target's pause, as an operator made it."""

    target_arn: str
    since: float
    reason: str
    operator: str
    #: When `--for` ends it (epoch seconds); None: until `resume`.
    until: float | None = None

    def in_effect(self, now: float) -> bool:
        return self.until is None or now < self.until

    def ended(self, now: float) -> float:
        return now if self.until is None else min(self.until, now)


@dataclass(frozen=True, slots=True)
class PauseBook:
    """Every pause, current and past: what the ledger item and its Redis copy hold."""

    current: Mapping[str, Pause] = field(default_factory=dict)
    #: target -> ((since, ended), ...), oldest first.
    past: Mapping[str, tuple[tuple[float, float], ...]] = field(default_factory=dict)
    version: int = 0

    def active(self, target_arn: str, now: float) -> Pause | None:
        pause = self.current.get(target_arn)
        return pause if pause is not None and pause.in_effect(now) else None

    def in_effect(self, now: float) -> list[Pause]:
        return sorted((p for p in self.current.values() if p.in_effect(now)), key=_since)

    def paused_seconds(self, target_arn: str, *, start: float, now: float) -> float:
        """How long the target was paused between `start` and `now`: what an item's age
        budget does not count."""
        spans = list(self.past.get(target_arn, ()))
        pause = self.current.get(target_arn)
        if pause is not None:
            spans.append((pause.since, pause.ended(now)))
        return sum(max(0.0, min(end, now) - max(begin, start)) for begin, end in spans)

    def paused(self, pause: Pause, *, now: float) -> PauseBook:
        """With `pause` in effect (a pause already there ends now, kept as past)."""
        book = self.resumed(pause.target_arn, now=now)
        return replace(book, current={**book.current, pause.target_arn: pause})

    def resumed(self, target_arn: str, *, now: float) -> PauseBook:
        """Without the target's pause (kept as a past interval); lapsed pauses move too."""
        current = dict(self.current)
        past = {target: list(spans) for target, spans in self.past.items()}
        for target, pause in list(current.items()):
            if target == target_arn or not pause.in_effect(now):
                del current[target]
                past.setdefault(target, []).append((pause.since, pause.ended(now)))
        return PauseBook(
            current,
            {target: tuple(spans[-PAST_LIMIT:]) for target, spans in past.items()},
            self.version,
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "current": {t: asdict(p) for t, p in self.current.items()},
                "past": {t: [list(s) for s in spans] for t, spans in self.past.items()},
                "version": self.version,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> PauseBook:
        data = json.loads(text)
        return cls(
            {t: Pause(**p) for t, p in data.get("current", {}).items()},
            {
                t: tuple((float(a), float(b)) for a, b in spans)
                for t, spans in data.get("past", {}).items()
            },
            int(data.get("version", 0)),
        )


class PauseConflict(Exception):
    """Another operator changed the pauses between this one's read and write: read again."""


class LedgerPauses:
    """The pauses' item in the ledger table, through a low-level boto3 DynamoDB client."""

    def __init__(self, client: Any, table: str, *, ttl_days: int = 90) -> None:
        self._client = client
        self.table = table
        self._ttl_days = ttl_days

    def read(self) -> PauseBook:
        response = self._client.get_item(
            TableName=self.table, Key=marshal.key(*PAUSES_KEY), ConsistentRead=True
        )
        item = response.get("Item")
        if not item:
            return PauseBook()
        return PauseBook.from_json(str(marshal.plain(item)["book"]))

    def write(self, book: PauseBook, *, now: float) -> PauseBook:
        """Store `book` if the item is still at the version `book` was read at."""
        stored = replace(book, version=book.version + 1)
        event_id, route = PAUSES_KEY
        condition = "attribute_not_exists(event_id)" if book.version == 0 else "version = :read"
        try:
            self._client.put_item(
                TableName=self.table,
                Item=marshal.typed(
                    {
                        "event_id": event_id,
                        "route": route,
                        "book": stored.to_json(),
                        "version": stored.version,
                        "expires_at": expiry(now, self._ttl_days),
                    }
                ),
                ConditionExpression=condition,
                **(
                    {"ExpressionAttributeValues": marshal.values(read=book.version)}
                    if book.version
                    else {}
                ),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise PauseConflict("the pauses changed meanwhile") from None
            raise
        return stored


class MemoryPauses:
    """The pauses' item in memory: `LedgerPauses`'s twin for tests."""

    def __init__(self) -> None:
        self._book = PauseBook()

    def read(self) -> PauseBook:
        return self._book

    def write(self, book: PauseBook, *, now: float) -> PauseBook:
        if book.version != self._book.version:
            raise PauseConflict("the pauses changed meanwhile")
        self._book = replace(book, version=book.version + 1)
        return self._book


def _since(pause: Pause) -> float:
    return pause.since
