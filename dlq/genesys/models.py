"""What the Genesys Cloud API answers, as pydantic models at the border."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class _Border(BaseModel):
    """Camel-case JSON in, snake-case attributes out; unknown fields kept, not refused."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)


class Participant(_Border):
    """One participant of a conversation (customer, acd, agent, external...)."""

    id: str
    purpose: str | None = None
    name: str | None = None
    user_id: str | None = Field(default=None, alias="userId")
    queue_id: str | None = Field(default=None, alias="queueId")
    start_time: datetime | None = Field(default=None, alias="startTime")
    end_time: datetime | None = Field(default=None, alias="endTime")
    attributes: dict[str, str] = Field(default_factory=dict)


class Conversation(_Border):
    """`GET /api/v2/conversations/{id}`: the parts the replay needs, the rest kept as extras."""

    id: str
    start_time: datetime | None = Field(default=None, alias="startTime")
    end_time: datetime | None = Field(default=None, alias="endTime")
    participants: list[Participant] = Field(default_factory=list)

    @property
    def ended(self) -> bool:
        """Whether Genesys reports an end time (a conversation still live has none)."""
        return self.end_time is not None

    def participant(self, participant_id: str) -> Participant | None:
        """The participant with this id, or None."""
        return next((p for p in self.participants if p.id == participant_id), None)

    def customer_participant_id(self) -> str | None:
        """Where tracking attributes go: the customer, else an external party, else None."""
        return tracking_participant((p.id, p.purpose) for p in self.participants)


def tracking_participant(participants: Iterable[tuple[str, str | None]]) -> str | None:
    """The participant tracking annotates, of (id, purpose) pairs: the customer, else an
    external party, else None. The one rule, for the single GET and the batch read."""
    listed = list(participants)
    for purpose in ("customer", "external"):
        for participant_id, their_purpose in listed:
            if their_purpose == purpose:
                return participant_id
    return None


class AnalyticsParticipant(_Border):
    """One participant as the analytics conversation details show it."""

    participant_id: str = Field(alias="participantId")
    purpose: str | None = None
    participant_name: str | None = Field(default=None, alias="participantName")
    sessions: list[dict[str, object]] = Field(default_factory=list)


class AnalyticsConversation(_Border):
    """One conversation of `GET /api/v2/analytics/conversations/details?id=...`."""

    conversation_id: str = Field(alias="conversationId")
    conversation_start: datetime | None = Field(default=None, alias="conversationStart")
    conversation_end: datetime | None = Field(default=None, alias="conversationEnd")
    participants: list[AnalyticsParticipant] = Field(default_factory=list)

    def customer_participant_id(self) -> str | None:
        """Where tracking attributes go, by the same rule as `Conversation`'s."""
        return tracking_participant((p.participant_id, p.purpose) for p in self.participants)


class ConversationDetails(_Border):
    """The multi-get's answer; unknown ids are simply absent (Genesys leaves out empty lists)."""

    conversations: list[AnalyticsConversation] = Field(default_factory=list)
