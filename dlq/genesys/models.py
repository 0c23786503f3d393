"""What the Genesys Cloud API answers, as pydantic models at the border."""

from __future__ import annotations

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
        for purpose in ("customer", "external"):
            for participant in self.participants:
                if participant.purpose == purpose:
                    return participant.id
        return None
