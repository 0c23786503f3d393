"""Conversation lookups before redelivery, cached in Redis so a conversation costs one call."""

from __future__ import annotations

import json
from dataclasses import dataclass

import redis

from dlq.errors import GiveUp
from dlq.genesys.client import GenesysClient
from dlq.genesys.errors import GenesysNotFound
from dlq.genesys.limiter import Priority

CACHE_PREFIX = "dlq:conv:"


class ConversationMissing(GiveUp):
    """Genesys no longer has the conversation (404)."""


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
    ) -> None:
        self._client = client
        self._cache = cache
        self._ttl = ttl_seconds
        self._missing_ttl = missing_ttl_seconds

    def cached(self, conversation_id: str) -> KnownConversation | None:
        raw = self._cache.get(CACHE_PREFIX + conversation_id)
        if raw is None:
            return None
        data = json.loads(raw)
        data["participant_ids"] = tuple(data.get("participant_ids") or ())
        return KnownConversation(conversation_id=conversation_id, **data)

    def lookup(
        self, conversation_id: str, *, priority: Priority = Priority.HIGH
    ) -> KnownConversation:
        """The conversation, from the cache or Genesys; a 404 is cached as missing.

        Raises the client's errors otherwise (`RateLimitWait` when the budget says wait).
        """
        known = self.cached(conversation_id)
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

    def _store(self, known: KnownConversation, ttl: int) -> None:
        data = {
            "exists": known.exists,
            "participant_id": known.participant_id,
            "error": known.error,
            "participant_ids": list(known.participant_ids),
        }
        self._cache.set(CACHE_PREFIX + known.conversation_id, json.dumps(data), ex=ttl)
