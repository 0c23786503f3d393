"""Conversation lookups before redelivery, cached in Redis so a conversation costs one call.

Two ways fill the cache: `prefetch` verifies up to `GENESYS_VERIFY_BATCH` conversations
per call (the analytics multi-get) ahead of their redelivery, and `lookup` falls back to
the single GET for whatever the prefetch did not cover. Only the single GET's 404 marks
a conversation missing: analytics may lag behind, or a division may hide a conversation
from it, so an id it leaves out is left to the single GET.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import redis

from dlq.clock import SYSTEM_CLOCK, Clock
from dlq.errors import BudgetWait, GiveUp
from dlq.genesys.client import GenesysClient
from dlq.genesys.errors import BatchRefused, GenesysNotFound
from dlq.genesys.models import AnalyticsConversation
from dlq.genesys.pending import PendingVerifications
from dlq.ratelimit import Priority

log = logging.getLogger(__name__)

CACHE_PREFIX = "dlq:conv:"
#: The batch size the fleet learnt from a 400 (below `GENESYS_VERIFY_BATCH`), for a day:
#: then one more 400 teaches it again, should Genesys have raised its limit meanwhile.
BATCH_SIZE_KEY = "dlq:verify:batch"
BATCH_SIZE_TTL_SECONDS = 86400
#: A replay waiting for the prefetch looks again at most this often.
PREFETCH_POLL_SECONDS = 2.0
#: How often a replay blocked on an imminent batch looks for its answer.
BLOCK_POLL_SECONDS = 0.1


class ConversationMissing(GiveUp):
    """Genesys no longer has the conversation (404)."""


class PrefetchPending(BudgetWait):
    """The conversation is about to be verified in a batch: come back instead of spending a
    call of its own (no attempt is spent; after `GENESYS_VERIFY_WAIT_SECONDS` the single
    GET goes ahead whatever happened to the batch)."""


@dataclass(frozen=True, slots=True)
class PrefetchReport:
    """What one `prefetch` did: ids verified, ids analytics left out, calls made."""

    found: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    already_known: int = 0
    calls: int = 0


@dataclass(frozen=True, slots=True)
class KnownConversation:
    """What the replay keeps of a conversation: whether it exists and whom to annotate."""

    conversation_id: str
    exists: bool
    participant_id: str | None
    error: str | None = None
    #: Every participant of the conversation: an event's participantId is trusted only
    #: when it is one of these.
    participant_ids: tuple[str, ...] = ()

    def has_participant(self, participant_id: str) -> bool:
        return participant_id in self.participant_ids


class ConversationDirectory:
    """Looks conversations up in Genesys through a Redis cache shared by every worker."""

    def __init__(
        self,
        client: GenesysClient,
        cache: redis.Redis,
        *,
        ttl_seconds: int = 3600,
        missing_ttl_seconds: int = 600,
        pending: PendingVerifications | None = None,
        verify_batch: int = 100,
        verify_wait_seconds: float = 15.0,
        block_seconds: float = 1.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """`pending`, the fleet's to-verify list, lets a replay wait for the batch that is
        about to verify its conversation, at most `verify_wait_seconds` after the
        conversation was marked: up to `block_seconds` in the caller's thread (a batch
        usually answers sooner, and a task sent back to the queue costs a broker round
        trip), then by `PrefetchPending`. `verify_batch`: ids per multi-get call at most."""
        self._client = client
        self._cache = cache
        self._ttl = ttl_seconds
        self._missing_ttl = missing_ttl_seconds
        self._pending = pending
        self._verify_batch = verify_batch
        self._verify_wait = verify_wait_seconds
        self._block = block_seconds
        self._clock = clock

    def cached(self, conversation_id: str) -> KnownConversation | None:
        raw = self._cache.get(CACHE_PREFIX + conversation_id)
        if raw is None:
            return None
        data = json.loads(raw)
        data["participant_ids"] = tuple(data.get("participant_ids") or ())
        return KnownConversation(conversation_id=conversation_id, **data)

    def forget(self, conversation_id: str) -> None:
        """Drop what the fleet knows of a conversation (a 404 kept for minutes, a
        verification), so the next lookup asks Genesys: after an operator's redrive."""
        self._cache.delete(CACHE_PREFIX + conversation_id)

    def lookup(
        self,
        conversation_id: str,
        *,
        priority: Priority = Priority.HIGH,
        await_prefetch: bool = False,
    ) -> KnownConversation:
        """The conversation, from the cache or Genesys; a 404 is cached as missing.

        With `await_prefetch` (the replay's path), a conversation waiting in the
        to-verify list for less than `verify_wait_seconds` raises `PrefetchPending`
        instead of a call of its own. Raises the client's errors otherwise
        (`RateLimitWait` when the budget says wait).
        """
        known = self.cached(conversation_id)
        if known is None and await_prefetch:
            known = self._await_prefetch(conversation_id)
        if known is not None:
            return known
        try:
            conversation = self._client.get_conversation(conversation_id, priority=priority)
        except GenesysNotFound as exc:
            known = KnownConversation(conversation_id, False, None, error=str(exc)[:300])
            self._store(known, self._missing_ttl)
            return known
        known = KnownConversation(
            conversation_id,
            True,
            conversation.customer_participant_id(),
            participant_ids=tuple(p.id for p in conversation.participants),
        )
        self._store(known, self._ttl)
        return known

    def _await_prefetch(self, conversation_id: str) -> KnownConversation | None:
        """What the batch found, when it answers within `block_seconds`; None when the
        conversation is not waiting for one (or waited too long): its own GET goes ahead."""
        if self._pending is None:
            return None
        deadline = time.monotonic() + self._block
        while True:
            added = self._pending.added_at(conversation_id)
            if added is None:
                # Verified meanwhile, or left out of the batch (its own GET goes ahead).
                return self.cached(conversation_id)
            remaining = added + self._verify_wait - self._clock.now()
            if remaining <= 0:
                return None  # the batch is late (or its task lost): the single GET goes ahead
            if time.monotonic() + BLOCK_POLL_SECONDS > deadline:
                break
            time.sleep(BLOCK_POLL_SECONDS)
            known = self.cached(conversation_id)
            if known is not None:
                return known
        wait = min(remaining, PREFETCH_POLL_SECONDS) + random.uniform(0.0, 0.5)
        raise PrefetchPending(
            f"conversation {conversation_id} is about to be verified in a batch; "
            f"looking again in {wait:.1f} s (at most GENESYS_VERIFY_WAIT_SECONDS, then a "
            "lookup of its own)",
            retry_after=wait,
        )

    def batch_size(self) -> int:
        """Ids per multi-get call: `GENESYS_VERIFY_BATCH`, or the smaller size the fleet
        learnt from a 400."""
        learnt = self._cache.get(BATCH_SIZE_KEY)
        if learnt is None:
            return self._verify_batch
        try:
            return max(1, min(self._verify_batch, int(learnt)))
        except ValueError:
            return self._verify_batch

    def _learn_batch_size(self, size: int) -> None:
        size = max(1, size)
        if size < self.batch_size():
            self._cache.set(BATCH_SIZE_KEY, str(size), ex=BATCH_SIZE_TTL_SECONDS)
            log.warning(
                f"the analytics multi-get refused a batch; asking for {size} ids per call "
                "from now on (the fleet shares this size for a day)",
                extra={"count": size},
            )

    def prefetch(
        self, conversation_ids: Iterable[str], *, priority: Priority = Priority.HIGH
    ) -> PrefetchReport:
        """Verify conversations in batches (the analytics multi-get) into the cache that
        `lookup` reads. Ids already cached cost nothing; ids analytics leaves out are not
        cached at all (left to the single GET). On a 400 the batch is halved, the smaller
        size remembered for the fleet, and the same ids asked again in halves.

        Raises the client's errors (`RateLimitWait` when the budget says wait); the
        batches verified before that stay cached.
        """
        wanted = list(dict.fromkeys(conversation_ids))
        if not wanted:
            return PrefetchReport()
        cached = self._cache.mget([CACHE_PREFIX + i for i in wanted])
        todo = [i for i, raw in zip(wanted, cached, strict=True) if raw is None]
        already_known = len(wanted) - len(todo)
        found: list[str] = []
        absent: list[str] = []
        calls = 0
        size = self.batch_size()
        while todo:
            chunk, rest = todo[:size], todo[size:]
            try:
                calls += 1
                answered = self._client.get_conversation_details(chunk, priority=priority)
            except BatchRefused as refused:
                if len(chunk) == 1:
                    # Not the batch's size: something about this id; its own GET will tell.
                    log.warning(
                        f"the analytics multi-get refused a single id; left to its own lookup: "
                        f"{refused}",
                        extra={"conversation_id": chunk[0]},
                    )
                    absent.extend(chunk)
                    todo = rest
                    continue
                size = max(1, len(chunk) // 2)
                self._learn_batch_size(size)
                continue
            verified = set(self._store_details(chunk, answered))
            found.extend(i for i in chunk if i in verified)
            absent.extend(i for i in chunk if i not in verified)
            todo = rest
        return PrefetchReport(tuple(found), tuple(absent), already_known, calls)

    def _store_details(
        self, asked: Sequence[str], answered: Iterable[AnalyticsConversation]
    ) -> list[str]:
        wanted = set(asked)
        stored: list[str] = []
        pipe = self._cache.pipeline(transaction=False)
        for conversation in answered:
            if conversation.conversation_id not in wanted:
                continue  # never cache what was not asked for
            known = KnownConversation(
                conversation.conversation_id,
                True,
                conversation.customer_participant_id(),
                participant_ids=tuple(p.participant_id for p in conversation.participants),
            )
            pipe.set(CACHE_PREFIX + known.conversation_id, self._encode(known), ex=self._ttl)
            stored.append(known.conversation_id)
        pipe.execute()
        return stored

    def _store(self, known: KnownConversation, ttl: int) -> None:
        self._cache.set(CACHE_PREFIX + known.conversation_id, self._encode(known), ex=ttl)

    @staticmethod
    def _encode(known: KnownConversation) -> str:
        data = {
            "exists": known.exists,
            "participant_id": known.participant_id,
            "error": known.error,
            "participant_ids": list(known.participant_ids),
        }
        return json.dumps(data)
