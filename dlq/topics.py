"""Genesys Cloud events on EventBridge: the `detail` shape, the org and conversation ids.

`source` is `aws.partner/genesys.com/cloud/{orgId}/{suffix}`; `detail` carries
`topicName` (the concrete topic), `version`, `eventBody` and `metadata.CorrelationId`.
Source: Genesys Cloud developer center, "Amazon EventBridge integration" (event format),
and the topic list that `GET /api/v2/notifications/availabletopics` answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

GENESYS_SOURCE_PREFIX = "aws.partner/genesys.com/cloud/"

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

#: The media words of `v2.users.{id}.conversations.{media}` and
#: `v2.routing.queues.{id}.conversations.{media}` (compared in lower case).
MEDIA = frozenset(
    {
        "callbacks",
        "calls",
        "chats",
        "cobrowsesessions",
        "emails",
        "messages",
        "screenshares",
        "socialexpressions",
        "videos",
    }
)


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


class NotAConversationId(ValueError):
    """A place that names an event's conversation holds something that is not an id."""


def genesys_org_of(source: str) -> str | None:
    """The org id in a Genesys partner source (`aws.partner/genesys.com/cloud/{org}/...`)."""
    if not source.startswith(GENESYS_SOURCE_PREFIX):
        return None
    return source[len(GENESYS_SOURCE_PREFIX) :].split("/", 1)[0] or None


@dataclass(frozen=True, slots=True)
class TopicFamily:
    """Where the topics of one family keep the conversation they are about.

    `pattern` is the topic, word by word: a literal word, `{id}` (any word), `{uuid}` (a
    word that is an id, to tell a family from one with a name there), `{word}` (a word
    that is not an id), `{media}` (one of `MEDIA`), and a final `*` for any further
    words. `slot` is where the topic carries the conversation id (None: it does not);
    `fields` are the `eventBody` fields that name the conversation, in the order tried
    (`a.b` reads `b` inside `a`).
    """

    pattern: tuple[str, ...]
    slot: int | None
    fields: tuple[str, ...]

    def matches(self, words: list[str]) -> bool:
        open_ended = self.pattern[-1] == "*"
        pattern = self.pattern[:-1] if open_ended else self.pattern
        if len(words) < len(pattern) or (not open_ended and len(words) != len(pattern)):
            return False
        return all(_word_matches(p, w) for p, w in zip(pattern, words, strict=False))


def _family(pattern: str, slot: int | None, *fields: str) -> TopicFamily:
    return TopicFamily(tuple(pattern.split(".")), slot, fields)


# Source: the topic -> payload model list the official SDKs are generated from
# (`notificationMappings.json` of MyPureCloud/platform-client-sdk-javascript 259.0.0,
# built from `GET /api/v2/notifications/availabletopics?expand=schema`), and those models'
# fields (`build/index.d.ts`: e.g. `ConversationMessageEventTopicMessageConversation.id`,
# `QueueConversationEventTopicConversation.id`, `TranscriptionTopicTranscriptionMessage.
# conversationId`, `RecordingEventRecording.conversationId` beside the recording's `id`).
# First match wins, so a narrower pattern comes before a wider one.
FAMILIES: tuple[TopicFamily, ...] = (
    # Analytics detail events (AcdEndEvent, CustomerEndEvent...): eventBody.conversationId.
    _family("v2.detail.events.conversation.{id}.*", 4, "conversationId"),
    # .transcription, .agentchecklist, .suggestions.*: eventBody.conversationId.
    _family("v2.conversations.{uuid}.*", 2, "conversationId"),
    # The conversation after a media word. Not in today's list: the guest chat API's
    # `v2.conversations.chats.{id}.messages` and `.members` are of this shape; there
    # eventBody.id is the message or the member, the conversation eventBody.conversation.id.
    _family("v2.conversations.{word}.{id}.*", 3, "conversationId", "conversation.id"),
    _family("v2.analytics.conversation.{id}.*", 3, "conversationId"),
    # .empathy, .sentiment, .topics; and `conversations.{id}.categories`.
    _family("v2.speechandtextanalytics.conversation.{id}.*", 3, "conversationId"),
    _family("v2.speechandtextanalytics.conversations.{id}.*", 3, "conversationId"),
    # Unverified what this topic's id names: only the body is trusted.
    _family("v2.bot.conversation.{id}.conversations.summaries", None, "conversationId"),
    # `.recordings` and `.recordings.{id}`: the user, then the conversation; eventBody.id
    # is the recording.
    _family("v2.users.{id}.conversations.{uuid}.*", 4, "conversationId"),
    # A summary preview session, not a conversation.
    _family("v2.users.{id}.conversations.summaries.settings.preview", None),
    _family("v2.users.{id}.conversations.summaries", None, "conversationId"),
    _family("v2.users.{id}.conversations.inbound.typing.event", None, "conversationId"),
    _family("v2.workflows.{id}.conversations.inbound.typing.event", None, "conversationId"),
    # The topic's id is the user or the queue; the body is the conversation itself.
    _family("v2.users.{id}.conversations", None, "id"),
    _family("v2.users.{id}.conversations.{media}", None, "id"),
    _family("v2.routing.queues.{id}.conversations", None, "id"),
    _family("v2.routing.queues.{id}.conversations.{media}", None, "id"),
)


def family_of(topic_name: str) -> TopicFamily | None:
    """The family of a concrete topic; None for topics that name no conversation (user
    presence, queue observations, operational events...)."""
    words = topic_name.split(".")
    return next((f for f in FAMILIES if f.matches(words)), None)


def conversation_id_of(detail: GenesysDetail) -> str | None:
    """The conversation an event is about, as a lower-case UUID; None if it names none.

    The concrete topic is read first where its family carries the id there, the body's
    fields otherwise. Raises `NotAConversationId` when a place the family reads names
    something else (a crafted path, the `{id}` placeholder...) and no id is left: a body
    field that names the conversation must be an id even when the topic carries one.
    """
    family = family_of(detail.topic_name)
    if family is None:
        return None
    named: list[str] = []
    for field in family.fields:
        value = _field(detail.event_body, field)
        if value is not None and value != "":
            if not _is_uuid(value):
                raise NotAConversationId(
                    f"conversation id {str(value)[:80]!r} (eventBody.{field}) is not a UUID"
                )
            named.append(str(value))
    if family.slot is not None:
        word = detail.topic_name.split(".")[family.slot]
        if _is_uuid(word):
            return word.lower()
        if not named:
            raise NotAConversationId(
                f"conversation id {word[:80]!r} (word {family.slot + 1} of the topic) is not a UUID"
            )
    return named[0].lower() if named else None


def _word_matches(pattern: str, word: str) -> bool:
    if pattern == "{id}":
        return True  # even a malformed one: the slot's check says what is wrong with it
    if pattern == "{uuid}":
        return _is_uuid(word)
    if pattern == "{word}":
        return bool(word) and not _is_uuid(word)
    if pattern == "{media}":
        return word.lower() in MEDIA
    return word.lower() == pattern.lower()


def _field(body: dict[str, Any], path: str) -> object:
    value: object = body
    for name in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(name)
    return value


def _is_uuid(value: object) -> bool:
    return isinstance(value, str) and _UUID.fullmatch(value) is not None
