"""Which conversation a Genesys event is about, family by family of topics.

The families and their payload fields are Genesys's own: the topic -> payload model list
the official SDKs are generated from (`notificationMappings.json`, built from
`GET /api/v2/notifications/availabletopics`) and those models. Each test starts from a
realistic fixture of its family; the conversation of every new fixture is `CONVERSATION`,
the user `USER`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dlq.topics import GenesysDetail, NotAConversationId, conversation_id_of

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

#: The conversation of the fixtures added with these tests.
CONVERSATION = "3b8e1f6a-9c2d-4e7b-a514-6d0f2c8e9a37"
#: The conversation of the end event and the queue event fixtures.
END_CONVERSATION = "7d3e9a41-2b6c-4f80-9c15-6a0b8e2f1d94"
USER = "6d8f0a2c-4e1b-4c3d-9f5a-7b9d1f3a5c81"
QUEUE = "2e4a6c8e-0b1d-4f3a-8c5e-7a9b1d3f5e70"
MESSAGE = "9e4c2a80-7b1d-4f35-b6e8-0a2c4e6f8b13"


def detail_of(name: str, **changes: Any) -> dict[str, Any]:
    """The `detail` of a fixture event, with `topicName` or eventBody fields changed
    (`None` removes a field)."""
    detail: dict[str, Any] = json.loads((FIXTURES / name).read_text())["detail"]
    if "topicName" in changes:
        detail["topicName"] = changes.pop("topicName")
    for field, value in changes.items():
        if value is None:
            detail["eventBody"].pop(field, None)
        else:
            detail["eventBody"][field] = value
    return detail


def conversation(detail: dict[str, Any]) -> str | None:
    return conversation_id_of(GenesysDetail.model_validate(detail))


# --- the topic carries the conversation ----------------------------------------------------


@pytest.mark.parametrize("body_names_it", [True, False])
def test_an_analytics_detail_event_names_its_conversation_in_the_topic(body_names_it):
    changes = {} if body_names_it else {"conversationId": None}
    detail = detail_of("genesys-conversation-end-event.json", **changes)

    assert conversation(detail) == END_CONVERSATION


@pytest.mark.parametrize(
    "suffix", ["transcription", "agentchecklist", "suggestions.knowledge.article"]
)
@pytest.mark.parametrize("body_names_it", [True, False])
def test_a_conversation_topic_names_its_conversation_right_after_conversations(
    suffix, body_names_it
):
    detail = detail_of(
        "genesys-transcription-event.json",
        topicName=f"v2.conversations.{CONVERSATION}.{suffix}",
        **({} if body_names_it else {"conversationId": None}),
    )

    assert conversation(detail) == CONVERSATION


@pytest.mark.parametrize("media", ["messages", "chats", "emails", "calls", "callbacks"])
@pytest.mark.parametrize("body_id", [MESSAGE, None], ids=["message-id-in-body", "no-id-in-body"])
def test_a_media_conversation_topic_names_its_conversation_after_the_media_word(media, body_id):
    # eventBody.id is the message here, and without it the media word was taken.
    detail = detail_of(
        "genesys-chat-message-event.json",
        topicName=f"v2.conversations.{media}.{CONVERSATION}.messages",
        id=body_id,
        conversation=None,
    )

    assert conversation(detail) == CONVERSATION


def test_a_media_conversation_topic_without_the_id_falls_back_to_the_bodys_conversation():
    detail = detail_of(
        "genesys-chat-message-event.json", topicName="v2.conversations.chats.{id}.messages"
    )

    assert conversation(detail) == CONVERSATION


def test_a_media_conversation_event_naming_no_conversation_is_refused_not_read_from_its_id():
    detail = detail_of(
        "genesys-chat-message-event.json",
        topicName="v2.conversations.messages.{id}.messages",
        conversation=None,
    )

    with pytest.raises(NotAConversationId, match="not a UUID"):
        conversation(detail)


@pytest.mark.parametrize("body_names_it", [True, False])
def test_conversation_metrics_name_their_conversation_in_the_topic(body_names_it):
    changes = {} if body_names_it else {"conversationId": None}
    detail = detail_of("genesys-conversation-metrics-event.json", **changes)

    assert conversation(detail) == CONVERSATION


@pytest.mark.parametrize(
    "topic",
    [
        f"v2.speechandtextanalytics.conversation.{CONVERSATION}.sentiment",
        f"v2.speechandtextanalytics.conversation.{CONVERSATION}.empathy",
        f"v2.speechandtextanalytics.conversation.{CONVERSATION}.topics",
        f"v2.speechandtextanalytics.conversations.{CONVERSATION}.categories",
    ],
)
@pytest.mark.parametrize("body_names_it", [True, False])
def test_speech_and_text_analytics_topics_name_their_conversation(topic, body_names_it):
    detail = detail_of(
        "genesys-sentiment-event.json",
        topicName=topic,
        **({} if body_names_it else {"conversationId": None}),
    )

    assert conversation(detail) == CONVERSATION


@pytest.mark.parametrize("recording_id", [None, "2b4d6f8a-0c2e-4a5b-8d7f-1b3d5f7a9c24"])
@pytest.mark.parametrize("body_names_it", [True, False])
def test_a_users_recording_topic_names_the_conversation_after_the_user(recording_id, body_names_it):
    topic = f"v2.users.{USER}.conversations.{CONVERSATION}.recordings"
    detail = detail_of(
        "genesys-user-recording-event.json",
        topicName=topic if recording_id is None else f"{topic}.{recording_id}",
        **({} if body_names_it else {"conversationId": None}),
    )

    assert conversation(detail) == CONVERSATION  # neither the user nor the recording


# --- the body is the conversation -----------------------------------------------------------


@pytest.mark.parametrize(
    "suffix", ["", ".messages", ".calls", ".callbacks", ".chats", ".emails", ".cobrowseSessions"]
)
def test_a_users_conversation_topic_names_the_conversation_in_the_body_not_the_user(suffix):
    detail = detail_of(
        "genesys-user-message-conversation-event.json",
        topicName=f"v2.users.{USER}.conversations{suffix}",
    )

    assert conversation(detail) == CONVERSATION


def test_a_users_conversation_event_without_a_body_id_names_no_conversation():
    detail = detail_of("genesys-user-message-conversation-event.json", id=None)

    assert conversation(detail) is None  # and never the user of the topic


@pytest.mark.parametrize("suffix", ["", ".messages", ".calls", ".emails", ".socialexpressions"])
def test_a_queue_conversation_topic_names_the_conversation_in_the_body_not_the_queue(suffix):
    detail = detail_of(
        "genesys-queue-conversation-event.json",
        topicName=f"v2.routing.queues.{QUEUE}.conversations{suffix}",
    )

    assert conversation(detail) == END_CONVERSATION


def test_a_queue_conversation_event_without_a_body_id_names_no_conversation():
    detail = detail_of("genesys-queue-conversation-event.json", id=None)

    assert conversation(detail) is None  # and never the queue of the topic


@pytest.mark.parametrize(
    ("name", "topic"),
    [
        ("genesys-conversation-summary-event.json", f"v2.users.{USER}.conversations.summaries"),
        (
            "genesys-conversation-summary-event.json",
            f"v2.bot.conversation.{USER}.conversations.summaries",
        ),
        ("genesys-typing-event.json", f"v2.users.{USER}.conversations.inbound.typing.event"),
        ("genesys-typing-event.json", f"v2.workflows.{USER}.conversations.inbound.typing.event"),
    ],
)
def test_summaries_and_typing_events_name_their_conversation_in_the_body(name, topic):
    assert conversation(detail_of(name, topicName=topic)) == CONVERSATION
    assert conversation(detail_of(name, topicName=topic, conversationId=None)) is None


# --- no conversation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "topic"),
    [
        ("genesys-user-presence-event.json", None),
        ("genesys-queue-observations-event.json", None),
        ("genesys-operational-event.json", None),
        ("genesys-user-message-conversation-event.json", f"v2.users.{USER}.conversationsummary"),
        (
            "genesys-conversation-summary-event.json",
            f"v2.users.{USER}.conversations.summaries.settings.preview",
        ),
    ],
)
def test_topics_that_name_no_conversation_answer_none(name, topic):
    detail = detail_of(name) if topic is None else detail_of(name, topicName=topic)

    assert conversation(detail) is None


# --- what counts as an id -------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["../../users/me", "messages", "x" * 36, 7])
def test_a_body_field_that_names_the_conversation_must_be_an_id_even_beside_the_topics(bad):
    detail = detail_of("genesys-transcription-event.json", conversationId=bad)

    with pytest.raises(NotAConversationId, match=r"eventBody\.conversationId"):
        conversation(detail)


def test_a_topic_slot_that_is_not_an_id_is_refused_when_the_body_names_nothing():
    detail = detail_of(
        "genesys-conversation-end-event.json",
        topicName="v2.detail.events.conversation.{id}.customer.end",
        conversationId=None,
    )

    with pytest.raises(NotAConversationId, match="of the topic"):
        conversation(detail)


def test_the_topic_is_preferred_to_a_body_naming_another_conversation():
    other = "00000000-0000-4000-8000-000000000001"
    detail = detail_of("genesys-conversation-metrics-event.json", conversationId=other)

    assert conversation(detail) == CONVERSATION


def test_the_conversation_id_is_the_canonical_lower_case_form():
    detail = detail_of(
        "genesys-transcription-event.json",
        topicName=f"v2.conversations.{CONVERSATION.upper()}.transcription",
        conversationId=None,
    )

    assert conversation(detail) == CONVERSATION
