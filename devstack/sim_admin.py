"""A typed client of the Genesys simulator's `/__admin/` endpoints (tests, demo, benchmarks)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import requests

from devstack.sim_state import ANALYTICS_DETAILS, GET_CONVERSATION, PATCH_ATTRIBUTES, TOKEN

__all__ = [
    "ANALYTICS_DETAILS",
    "GET_CONVERSATION",
    "PATCH_ATTRIBUTES",
    "TOKEN",
    "SimAdmin",
    "SimStats",
]


@dataclass(frozen=True)
class SimStats:
    """What the simulator counted since start or the last reset.

    `endpoints` maps a route label (`TOKEN`, `GET_CONVERSATION`, `PATCH_ATTRIBUTES`,
    `ANALYTICS_DETAILS`) to {"status": count}; `statuses` sums every route by status;
    `analytics_ids` counts the ids the analytics multi-get was asked for (answered 200);
    `spans` maps a route label to the epoch seconds of its first and latest call.
    """

    endpoints: dict[str, dict[str, int]]
    statuses: dict[str, int]
    requests: int
    tokens_issued: int
    tokens_active: int
    max_in_flight: int
    analytics_ids: int = 0
    spans: dict[str, list[float]] = field(default_factory=dict)

    def count(self, endpoint: str, status: int | None = None) -> int:
        """Calls to `endpoint`, all or with one status."""
        counts = self.endpoints.get(endpoint, {})
        return sum(counts.values()) if status is None else counts.get(str(status), 0)

    def status(self, status: int) -> int:
        """Answers with `status` across every route."""
        return self.statuses.get(str(status), 0)

    def span(self, *endpoints: str) -> tuple[float, float] | None:
        """Epoch seconds of the first and the latest call to any of `endpoints`."""
        spans = [self.spans[e] for e in endpoints if e in self.spans]
        if not spans:
            return None
        return min(first for first, _ in spans), max(last for _, last in spans)


class SimAdmin:
    """Seeds, faults, counters and resets of a running simulator, over HTTP."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._session = requests.Session()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self._session.request(
            method, f"{self.base_url}/__admin/{path}", json=body, timeout=self._timeout
        )
        response.raise_for_status()
        return response.json()

    def seed(self, *conversation_ids: str, age_seconds: float = 0.0) -> list[dict[str, Any]]:
        """Create realistic conversations (customer, acd, agent) for these ids; their bodies.

        `age_seconds`: as created that long ago (what the analytics lag counts from).
        """
        body = {"ids": list(conversation_ids), "age_seconds": age_seconds}
        bodies: list[dict[str, Any]] = self._call("POST", "conversations", body)["conversations"]
        return bodies

    def seed_bodies(self, bodies: Iterable[dict[str, Any]]) -> None:
        """Store full conversation bodies as given (e.g. the fixture)."""
        self._call("POST", "conversations", {"conversations": list(bodies)})

    def learn_events(self, events: Iterable[Any]) -> dict[str, int]:
        """Give conversations the participants these events name (creating the conversations
        not known yet): EventBridge events, DLQ messages or their bodies, as JSON or text."""
        learned: dict[str, int] = self._call("POST", "events", {"events": list(events)})
        return learned

    def script(self, conversation_id: str, faults: Iterable[int | dict[str, Any]]) -> None:
        """Queue answers for a conversation before normal behaviour, e.g. [503, 503].

        A fault is a status or {"status": 429, "retry_after": 3, "delay_ms": 0}.
        """
        self._call("POST", "faults", {"conversations": {conversation_id: list(faults)}})

    def delete(self, *conversation_ids: str) -> None:
        """Answer 404 for these conversations from now on (a deleted conversation)."""
        self._call("POST", "faults", {"deleted": list(conversation_ids)})

    def configure(self, **settings: Any) -> dict[str, Any]:
        """Change `SimConfig` fields now: latency_ms, error_rate, reject_all, rate_limit..."""
        config: dict[str, Any] = self._call("POST", "config", settings)
        return config

    def revoke_tokens(self) -> int:
        """Invalidate every issued token (the next API call with one answers 401)."""
        revoked: int = self._call("POST", "tokens/revoke")["revoked"]
        return revoked

    def stats(self) -> SimStats:
        return SimStats(**self._call("GET", "stats"))

    def conversation(self, conversation_id: str) -> dict[str, Any]:
        """The stored conversation body, current attributes included."""
        body: dict[str, Any] = self._call("GET", f"conversations/{conversation_id}")["conversation"]
        return body

    def attribute_history(self, conversation_id: str) -> list[dict[str, Any]]:
        """Every attribute PATCH the conversation received: {time, participantId, attributes}."""
        history: list[dict[str, Any]] = self._call("GET", f"conversations/{conversation_id}")[
            "history"
        ]
        return history

    def reads(self, conversation_id: str) -> int:
        """How many single GETs of the conversation were answered 200."""
        reads: int = self._call("GET", f"conversations/{conversation_id}")["reads"]
        return reads

    def attributes(self, conversation_id: str, participant_id: str) -> dict[str, str]:
        """A participant's current attributes."""
        for participant in self.conversation(conversation_id)["participants"]:
            if participant["id"] == participant_id:
                attributes: dict[str, str] = participant.get("attributes", {})
                return attributes
        raise KeyError(participant_id)

    def reset(self) -> None:
        """Forget everything: conversations, tokens, faults, counters, run-time settings."""
        self._call("POST", "reset")

    def close(self) -> None:
        self._session.close()
