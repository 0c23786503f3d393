"""What the Genesys client makes of a 200 whose body is not what the endpoint promises.

Bodies are parsed and validated in one pass (`model_validate_json`); whatever fails,
JSON or shape, is one `GenesysBadResponse` that names the endpoint and the correlation
id, never a pydantic or json error.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from requests.structures import CaseInsensitiveDict

from dlq.genesys.client import GenesysClient
from dlq.genesys.errors import GenesysBadResponse
from dlq.genesys.transport import MockTransport, Request, Response
from dlq.settings import Settings

from .fakes import StaticTokens

CONVERSATION = "7c5a4a33-3a41-4c3b-8b71-2f0c7b7d9e10"
BAD_BODIES = [b"", b"<html>busy</html>", b'{"id": 42', b"[]", json.dumps({"name": "x"}).encode()]


def client_answering(settings: Settings, body: bytes) -> GenesysClient:
    def answer(request: Request) -> Response:
        headers = {"Content-Type": "application/json", "inin-correlation-id": "corr-1"}
        return Response(200, CaseInsensitiveDict(headers), body)

    return GenesysClient(
        settings, tokens=StaticTokens(), limiter=None, transport=MockTransport(answer)
    )


@pytest.mark.parametrize("body", BAD_BODIES)
def test_a_conversation_body_that_is_not_one_is_a_bad_response(
    settings: Settings, body: bytes
) -> None:
    with pytest.raises(GenesysBadResponse) as caught:
        client_answering(settings, body).get_conversation(CONVERSATION)
    assert "is not a conversation" in str(caught.value)
    assert "corr-1" in str(caught.value) and caught.value.status == 200


@pytest.mark.parametrize("body", [*BAD_BODIES[:3], b'{"conversations": [{"x": 1}]}'])
def test_a_details_body_that_is_not_details_is_a_bad_response(
    settings: Settings, body: bytes
) -> None:
    with pytest.raises(GenesysBadResponse) as caught:
        client_answering(settings, body).get_conversation_details([CONVERSATION])
    assert "is not conversation details" in str(caught.value)
    assert "corr-1" in str(caught.value)


def test_well_formed_answers_are_read_with_their_extras_kept(settings: Settings) -> None:
    details: dict[str, Any] = {
        "conversations": [
            {
                "conversationId": CONVERSATION,
                "conversationStart": "2026-12-07T10:00:00.000Z",
                "participants": [
                    {"participantId": "p-1", "purpose": "customer", "sessions": [{"a": 1}]},
                    {"participantId": "p-2", "purpose": "agent"},
                ],
                "divisionIds": ["d-1"],
            }
        ]
    }
    [found] = client_answering(settings, json.dumps(details).encode()).get_conversation_details(
        [CONVERSATION]
    )
    assert found.conversation_id == CONVERSATION
    assert found.customer_participant_id() == "p-1"
    assert found.conversation_start is not None and found.conversation_start.year == 2026
    assert found.model_extra == {"divisionIds": ["d-1"]}
