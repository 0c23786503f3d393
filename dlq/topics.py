"""Genesys Cloud events on EventBridge: the `detail` shape, the org and conversation ids.

`source` is `aws.partner/genesys.com/cloud/{orgId}/{suffix}`; `detail` carries
`topicName` (the concrete topic), `version`, `eventBody` and `metadata.CorrelationId`.
Source: Genesys Cloud developer center, "Amazon EventBridge integration" (event format),
and the topic list that `GET /api/v2/notifications/availabletopics` answers.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

GENESYS_SOURCE_PREFIX = "aws.partner/genesys.com/cloud/"


class GenesysMetadata(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    correlation_id: str | None = Field(default=None, alias="CorrelationId")


class GenesysDetail(BaseModel):
    """The `detail` of a Genesys Cloud event on EventBridge."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    topic_name: str = Field(alias="topicName", min_length=1)
    version: str | None = None
    event_body: dict[str, Any] = Field(alias="eventBody")
    metadata: GenesysMetadata | None = None
    timestamp: str | None = None


def genesys_org_of(source: str) -> str | None:
    """The org id in a Genesys partner source (`aws.partner/genesys.com/cloud/{org}/...`)."""
    if not source.startswith(GENESYS_SOURCE_PREFIX):
        return None
    return source[len(GENESYS_SOURCE_PREFIX) :].split("/", 1)[0] or None


def conversation_id_of(detail: GenesysDetail) -> object:
    """Where each topic family keeps its conversation id; None if none.

    - `v2.detail.events.conversation.{id}.*`: `eventBody.conversationId`, else the topic.
    - `v2.conversations.*` and `*.conversations` (queue, user): `eventBody.id`.
    - anything else (presence, queue observations): no conversation.
    """
    topic = detail.topic_name.split(".")
    body = detail.event_body
    if topic[:4] == ["v2", "detail", "events", "conversation"]:
        return body.get("conversationId") or (topic[4] if len(topic) > 4 else None)
    if topic[:2] == ["v2", "conversations"]:
        return body.get("id") or (topic[2] if len(topic) > 2 else None)
    if "conversations" in topic[-2:]:
        return body.get("id")
    return None
