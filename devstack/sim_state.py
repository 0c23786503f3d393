"""The Genesys Cloud simulator's memory: conversations, tokens, rate windows, faults, counters.

Pure state behind one lock, no HTTP: `genesys_sim` translates requests into calls here.
"""

from __future__ import annotations

import dataclasses
import math
import random
import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from devstack.sim_conversations import analytics_view as analytics_view
from devstack.sim_conversations import generate_conversation, named_participant
from devstack.sim_conversations import participant_id as participant_id

#: Counter labels, one per route (the admin client exports the same names).
TOKEN = "POST /oauth/token"
GET_CONVERSATION = "GET /api/v2/conversations/{id}"
PATCH_ATTRIBUTES = "PATCH /api/v2/conversations/{id}/participants/{pid}/attributes"
ANALYTICS_DETAILS = "GET /api/v2/analytics/conversations/details"

#: The permission each route needs (Genesys Cloud API reference); a route missing here
#: is answered whatever the client's roles.
PERMISSIONS = {
    GET_CONVERSATION: "conversation:communication:view",
    ANALYTICS_DETAILS: "analytics:conversationDetail:view",
}


@dataclass
class SimConfig:
    """The simulator's knobs; every one can be changed at run time through /__admin/config."""

    client_id: str = "sim-client-id"
    client_secret: str = "sim-client-secret"
    token_lifetime: float = 86399.0
    rate_limit: int = 300
    rate_window: float = 60.0
    #: What `inin-ratelimit-allowed` says, when it should differ from the enforced
    #: `rate_limit` (a server that advertises less than it enforces, or more).
    advertised_limit: int | None = None
    auto_create: bool = False
    latency_ms: float = 0.0
    error_rate: float = 0.0
    seed: int | None = None
    reject_all: bool = False
    retry_after_http_date: bool = False
    #: Permissions the OAuth client's roles lack: their routes answer 403.
    denied_permissions: list[str] = field(default_factory=list)
    #: The analytics multi-get answers 400 beyond this many ids (the real limit is not
    #: documented; the client halves its batch on a 400).
    analytics_max_ids: int = 100
    #: A conversation shows in analytics only this long after it was created (seeded or
    #: auto-created): the analytics pipeline lags behind the conversations API.
    analytics_lag_seconds: float = 0.0

    def update(self, changes: dict[str, Any]) -> None:
        """Apply known fields from a JSON object; unknown names are an error, not ignored."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = set(changes) - names
        if unknown:
            raise ValueError(f"unknown simulator settings: {sorted(unknown)}")
        for name, value in changes.items():
            setattr(self, name, value)


@dataclass
class Fault:
    """One scripted answer for a conversation, used once before normal behaviour resumes."""

    status: int
    retry_after: float = 2.0
    delay_ms: float = 0.0

    @classmethod
    def parse(cls, raw: int | dict[str, Any]) -> Fault:
        if isinstance(raw, int):
            return cls(status=raw)
        return cls(**raw)


@dataclass
class Window:
    """A token's fixed rate-limit window: opened by its first call, `count` calls so far."""

    start: float
    count: int = 0


@dataclass
class SimState:
    """Everything the simulator remembers; every method takes the one lock."""

    config: SimConfig
    lock: threading.Lock = field(default_factory=threading.Lock)
    conversations: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: When each conversation was created (monotonic), for the analytics lag.
    created: dict[str, float] = field(default_factory=dict)
    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: Single GETs answered 200, per conversation.
    reads: Counter[str] = field(default_factory=Counter)
    deleted: set[str] = field(default_factory=set)
    faults: dict[str, deque[Fault]] = field(default_factory=dict)
    tokens: dict[str, float] = field(default_factory=dict)
    windows: dict[str, Window] = field(default_factory=dict)
    counters: dict[str, Counter[str]] = field(default_factory=dict)
    #: Epoch seconds of the first and the latest call, per endpoint.
    spans: dict[str, list[float]] = field(default_factory=dict)
    tokens_issued: int = 0
    #: Ids asked of the analytics multi-get, over every call answered 200.
    analytics_ids: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self.initial = dataclasses.replace(self.config)
        self.rng.seed(self.config.seed)

    # tokens -----------------------------------------------------------------------------
    def issue_token(self) -> tuple[str, float]:
        with self.lock:
            token = secrets.token_urlsafe(32)
            self.tokens[token] = time.monotonic() + self.config.token_lifetime
            self.tokens_issued += 1
            return token, self.config.token_lifetime

    def token_valid(self, token: str) -> bool:
        with self.lock:
            expiry = self.tokens.get(token)
            return expiry is not None and time.monotonic() < expiry

    def revoke_tokens(self) -> int:
        with self.lock:
            revoked = len(self.tokens)
            self.tokens.clear()
            return revoked

    # rate limiting ----------------------------------------------------------------------
    def count_call(self, token: str) -> tuple[int, int, int]:
        """Count one API call on `token`'s window: (allowed, count, seconds to reset)."""
        with self.lock:
            now = time.monotonic()
            window = self.windows.get(token)
            if window is None or now >= window.start + self.config.rate_window:
                window = self.windows[token] = Window(start=now)
            window.count += 1
            reset = max(math.ceil(window.start + self.config.rate_window - now), 1)
            return self.advertised(), window.count, reset

    def window_of(self, token: str | None) -> tuple[int, int, int]:
        """(allowed, count, reset) without counting, for responses that do not count."""
        with self.lock:
            window = self.windows.get(token) if token else None
            now = time.monotonic()
            if window is None or now >= window.start + self.config.rate_window:
                return self.advertised(), 0, math.ceil(self.config.rate_window)
            reset = max(math.ceil(window.start + self.config.rate_window - now), 1)
            return self.advertised(), window.count, reset

    def advertised(self) -> int:
        """The `inin-ratelimit-allowed` to send: the enforced limit unless told otherwise."""
        advertised = self.config.advertised_limit
        return self.config.rate_limit if advertised is None else advertised

    # faults -----------------------------------------------------------------------------
    def next_fault(self, conversation_id: str) -> Fault | None:
        with self.lock:
            queue = self.faults.get(conversation_id)
            return queue.popleft() if queue else None

    def add_faults(self, conversation_id: str, faults: list[Fault]) -> None:
        with self.lock:
            self.faults.setdefault(conversation_id, deque()).extend(faults)

    def delete(self, conversation_id: str) -> None:
        with self.lock:
            self.deleted.add(conversation_id)

    def random_failure(self) -> int | None:
        with self.lock:
            if self.config.error_rate and self.rng.random() < self.config.error_rate:
                return self.rng.choice((500, 502, 503, 504))
            return None

    # conversations ----------------------------------------------------------------------
    def seed(self, bodies: list[dict[str, Any]], *, age_seconds: float = 0.0) -> None:
        """Store conversations as created `age_seconds` ago (analytics lags behind that)."""
        with self.lock:
            for body in bodies:
                self.conversations[str(body["id"])] = body
                self.created[str(body["id"])] = time.monotonic() - age_seconds
                self.deleted.discard(str(body["id"]))

    def learn(self, named: Iterable[tuple[str, str]]) -> dict[str, int]:
        """Give conversations the participants events name, (conversation id, participant
        id) pairs: a conversation not known yet is created with them (the first its
        customer), one that is known gains those it lacks; a deleted one stays deleted.
        Answers how many conversations were created and participants added."""
        by_conversation: dict[str, list[str]] = {}
        for conversation_id, pid in named:
            ids = by_conversation.setdefault(conversation_id, [])
            if pid not in ids:
                ids.append(pid)
        created = added = 0
        with self.lock:
            for conversation_id, ids in by_conversation.items():
                if conversation_id in self.deleted:
                    continue
                body = self.conversations.get(conversation_id)
                if body is None:
                    body = generate_conversation(conversation_id, named=ids)
                    self.conversations[conversation_id] = body
                    self.created[conversation_id] = time.monotonic()
                    created += 1
                    continue
                known = {p.get("id") for p in body.get("participants", [])}
                for pid in ids:
                    if pid not in known:
                        body.setdefault("participants", []).append(named_participant(pid))
                        added += 1
        return {"created": created, "participants_added": added}

    def conversation(self, conversation_id: str) -> dict[str, Any] | None:
        """The conversation body, generated on first sight when `auto_create` is on."""
        with self.lock:
            return self._conversation(conversation_id)

    def _conversation(self, conversation_id: str) -> dict[str, Any] | None:
        # Under the lock.
        if conversation_id in self.deleted:
            return None
        body = self.conversations.get(conversation_id)
        if body is None and self.config.auto_create:
            body = self.conversations[conversation_id] = generate_conversation(conversation_id)
            self.created[conversation_id] = time.monotonic()
        return body

    def analytics_details(self, conversation_ids: list[str]) -> list[dict[str, Any]]:
        """The analytics view of the conversations it knows: deleted ones, unknown ones and
        ones younger than `analytics_lag_seconds` are absent (absent, not an error)."""
        with self.lock:
            found = []
            for conversation_id in dict.fromkeys(conversation_ids):
                body = self._conversation(conversation_id)
                age = time.monotonic() - self.created.get(conversation_id, 0.0)
                if body is None or age < self.config.analytics_lag_seconds:
                    continue
                found.append(analytics_view(body))
            self.analytics_ids += len(conversation_ids)
            return found

    def patch_attributes(
        self, conversation_id: str, participant_id: str, attrs: dict[str, str]
    ) -> bool:
        """Merge attributes into a participant; False when there is no such participant."""
        body = self.conversation(conversation_id)
        with self.lock:
            participant = next(
                (p for p in (body or {}).get("participants", []) if p.get("id") == participant_id),
                None,
            )
            if participant is None:
                return False
            participant.setdefault("attributes", {}).update(attrs)
            self.history.setdefault(conversation_id, []).append(
                {"time": time.time(), "participantId": participant_id, "attributes": dict(attrs)}
            )
            return True

    # accounting -------------------------------------------------------------------------
    def record(self, endpoint: str, status: int) -> None:
        now = time.time()
        with self.lock:
            self.counters.setdefault(endpoint, Counter())[str(status)] += 1
            self.spans.setdefault(endpoint, [now, now])[1] = now

    def enter(self) -> None:
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def stats(self) -> dict[str, Any]:
        with self.lock:
            statuses: Counter[str] = Counter()
            for counter in self.counters.values():
                statuses.update(counter)
            now = time.monotonic()
            return {
                "endpoints": {name: dict(c) for name, c in self.counters.items()},
                "spans": {name: list(span) for name, span in self.spans.items()},
                "statuses": dict(statuses),
                "requests": sum(statuses.values()),
                "tokens_issued": self.tokens_issued,
                "analytics_ids": self.analytics_ids,
                "tokens_active": sum(1 for expiry in self.tokens.values() if expiry > now),
                "max_in_flight": self.max_in_flight,
            }

    def reset(self) -> None:
        """Back to the state at start: configuration, conversations, tokens, faults, counters."""
        with self.lock:
            self.config.update(dataclasses.asdict(self.initial))
            for store in (self.conversations, self.history, self.faults, self.tokens):
                store.clear()
            self.created.clear()
            self.reads.clear()
            self.windows.clear()
            self.counters.clear()
            self.spans.clear()
            self.deleted.clear()
            self.tokens_issued = 0
            self.analytics_ids = 0
            self.max_in_flight = self.in_flight
            self.rng.seed(self.config.seed)
