"""The conversations the Genesys simulator makes up: realistic bodies with stable ids, and
how analytics shows them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

_PARTICIPANT_NS = uuid.UUID("0c7f2d1e-5b4a-4e3c-9a8b-7d6e5f4a3b2c")


def participant_id(conversation_id: str, role: str) -> str:
    """The id a generated conversation gives its participant of `role` (customer, agent...)."""
    return str(uuid.uuid5(_PARTICIPANT_NS, f"{conversation_id}:{role}"))


def generate_conversation(
    conversation_id: str, *, now: datetime | None = None, named: Sequence[str] = ()
) -> dict[str, Any]:
    """A realistic ended voice conversation (customer, acd, agent) with stable participant ids.

    `named`: participant ids events named; the first is the customer, the others join.
    """
    end = now or datetime.now(UTC)
    start = end - timedelta(minutes=6, seconds=36)

    def iso(moment: datetime) -> str:
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def pid(role: str) -> str:
        return participant_id(conversation_id, role)

    queue_id = str(uuid.uuid5(_PARTICIPANT_NS, "queue:Support"))
    body: dict[str, Any] = {
        "id": conversation_id,
        "startTime": iso(start),
        "endTime": iso(end),
        "address": "tel:+13175550100",
        "participants": [
            {
                "id": pid("customer"),
                "purpose": "customer",
                "participantType": "External",
                "name": "Sim Caller",
                "startTime": iso(start),
                "endTime": iso(end),
                "ani": "tel:+13175550199",
                "dnis": "tel:+13175550100",
                "attributes": {},
                "calls": [{"id": pid("call"), "state": "disconnected", "direction": "inbound"}],
            },
            {
                "id": pid("acd"),
                "purpose": "acd",
                "queueId": queue_id,
                "queueName": "Support",
                "attributes": {},
            },
            {
                "id": pid("agent"),
                "purpose": "agent",
                "userId": str(uuid.uuid5(_PARTICIPANT_NS, f"{conversation_id}:user")),
                "queueId": queue_id,
                "wrapup": {"code": str(uuid.uuid5(_PARTICIPANT_NS, "wrapup")), "name": "Resolved"},
                "attributes": {},
            },
        ],
        "recordingState": "none",
        "divisions": [],
        "selfUri": f"/api/v2/conversations/{conversation_id}",
    }
    participants: list[dict[str, Any]] = body["participants"]
    if named:
        participants[0]["id"] = named[0]
    participants.extend(named_participant(pid) for pid in named[1:])
    return body


def named_participant(participant_id: str) -> dict[str, Any]:
    """A participant an event named that the conversation did not have (its role unknown)."""
    return {
        "id": participant_id,
        "purpose": "external",
        "participantType": "External",
        "attributes": {},
    }


def analytics_view(body: dict[str, Any]) -> dict[str, Any]:
    """A conversation as `GET /api/v2/analytics/conversations/details` shows it: the
    conversation's `conversationId`, start and end, and its participants by
    `participantId` and `purpose`, each with its sessions (no attributes: the endpoint is
    "WithoutAttributes")."""
    participants = []
    for participant in body.get("participants", []):
        media = [
            {"sessionId": session.get("id"), "mediaType": kind.rstrip("s")}
            for kind in ("calls", "callbacks", "chats", "emails", "messages")
            for session in participant.get(kind, [])
        ]
        entry = {
            "participantId": participant["id"],
            "purpose": participant.get("purpose"),
            "sessions": media,
        }
        if participant.get("name"):
            entry["participantName"] = participant["name"]
        if participant.get("userId"):
            entry["userId"] = participant["userId"]
        participants.append(entry)
    view: dict[str, Any] = {
        "conversationId": body["id"],
        "conversationStart": body.get("startTime"),
        "participants": participants,
    }
    if body.get("endTime"):
        view["conversationEnd"] = body["endTime"]
    return view
