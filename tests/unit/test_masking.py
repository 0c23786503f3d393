"""`dlq.masking`: the fields an operator names are masked wherever the paths find them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers import FIXTURES

from dlq.errors import ConfigurationError
from dlq.masking import (
    DEFAULT_MASKED_FIELDS,
    MASK,
    MaskPathError,
    compile_mask_path,
    mask_body,
    mask_document,
)
from dlq.settings import Settings, load_settings

DEFAULTS = tuple(compile_mask_path(path) for path in DEFAULT_MASKED_FIELDS)


def masked(document: Any, *paths: str) -> Any:
    return mask_document(document, [compile_mask_path(path) for path in paths])


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def test_a_member_path_masks_that_member_only() -> None:
    document = {"detail": {"eventBody": {"ani": "tel:+13175550199", "direction": "INBOUND"}}}

    assert masked(document, "$.detail.eventBody.ani") == {
        "detail": {"eventBody": {"ani": MASK, "direction": "INBOUND"}}
    }


def test_a_bare_name_is_found_at_any_depth() -> None:
    document = {"name": "Zoë", "participants": [{"name": "Agent"}, {"peer": {"name": "Jane"}}]}

    assert masked(document, "name") == {
        "name": MASK,
        "participants": [{"name": MASK}, {"peer": {"name": MASK}}],
    }


def test_descendants_then_a_child_masks_only_that_child() -> None:
    document = {"channel": {"from": {"id": "+13175550199", "idType": "Phone"}, "id": "chan-1"}}

    assert masked(document, "from.id") == {
        "channel": {"from": {"id": MASK, "idType": "Phone"}, "id": "chan-1"}
    }


def test_wildcards_and_indices_select_array_elements() -> None:
    document = {"participants": [{"address": "a"}, {"address": "b"}, {"address": "c"}]}

    assert masked(document, "$.participants[1].address") == {
        "participants": [{"address": "a"}, {"address": MASK}, {"address": "c"}]
    }
    assert masked(document, "$.participants[*].address") == {
        "participants": [{"address": MASK}] * 3
    }
    assert masked(document, "$.participants.*.address") == {"participants": [{"address": MASK}] * 3}


def test_bracketed_names_reach_members_dot_notation_cannot() -> None:
    document = {"detail-type": "x", "a.b": "secret"}

    assert masked(document, "$['a.b']") == {"detail-type": "x", "a.b": MASK}


def test_objects_and_numbers_are_masked_whole_and_null_stays_null() -> None:
    document = {"fromAddress": {"email": "z@example.com", "name": "Zoë"}, "phone": 5551, "x": None}

    assert masked(document, "fromAddress", "phone", "x") == {
        "fromAddress": MASK,
        "phone": MASK,
        "x": None,
    }


def test_masking_copies_and_leaves_the_document_alone() -> None:
    document = {"ani": "tel:+13175550199"}

    masked(document, "ani")

    assert document == {"ani": "tel:+13175550199"}


def test_a_path_that_matches_nothing_changes_nothing() -> None:
    document = {"detail": {"eventBody": {"conversationId": "c-1"}}}

    assert masked(document, "ani", "$.detail.eventBody.dnis", "$.nothing[3]") == document


@pytest.mark.parametrize("path", ["", "$", "$.a[", "$.a..", "$.a b", "$[x]", "$.a['b]"])
def test_a_path_outside_the_syntax_is_refused_naming_it(path: str) -> None:
    with pytest.raises(MaskPathError):
        compile_mask_path(path)


def test_a_bad_path_in_the_setting_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REPLAY_MASKED_FIELDS", "ani,$.a[")
    with pytest.raises(ConfigurationError) as refused:
        load_settings(_env_file=None)
    assert str(refused.value).startswith("REPLAY_MASKED_FIELDS is invalid: '$.a[': unsupported")


def test_the_setting_takes_names_separated_by_commas_or_a_json_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REPLAY_MASKED_FIELDS", "ani, $.detail.eventBody.body")
    assert Settings(_env_file=None).replay_masked_fields == ["ani", "$.detail.eventBody.body"]
    monkeypatch.setenv("REPLAY_MASKED_FIELDS", '["dnis", "from.id"]')
    assert Settings(_env_file=None).replay_masked_fields == ["dnis", "from.id"]


def test_the_setting_defaults_to_the_genesys_fields() -> None:
    assert Settings(_env_file=None).replay_masked_fields == list(DEFAULT_MASKED_FIELDS)


#: What the Genesys fixtures carry about the customer, and where.
CUSTOMER_DATA = {
    "genesys-conversation-end-event.json": ["tel:+13175550199", "tel:+13175550100"],
    "genesys-get-conversation.json": ["tel:+13175550199", "tel:+13175550100", "Jane Caller"],
    "genesys-user-message-conversation-event.json": ["+13175550199", "Zoë Ørsted"],
    "genesys-typing-event.json": ["+13175550199", "Zoë"],
    "genesys-chat-message-event.json": ["My order never arrived."],
    "genesys-transcription-event.json": ["my order never arrived"],
    "genesys-conversation-summary-event.json": ["Customer reports an order that never arrived."],
}


@pytest.mark.parametrize("name", sorted(CUSTOMER_DATA))
def test_the_defaults_mask_the_phone_numbers_names_and_texts_of_genesys_events(name: str) -> None:
    text = (FIXTURES / name).read_text()
    for value in CUSTOMER_DATA[name]:
        assert value in text  # the fixture does carry it

    shown = mask_body(text, DEFAULTS)

    assert shown is not None
    for value in CUSTOMER_DATA[name]:
        assert value not in shown, value


def test_the_defaults_keep_what_an_operator_needs_to_find_the_event() -> None:
    event = fixture("genesys-conversation-end-event.json")

    shown = json.loads(mask_body(json.dumps(event), DEFAULTS) or "")

    assert shown["id"] == event["id"]
    assert shown["detail-type"] == event["detail-type"]
    body = shown["detail"]["eventBody"]
    assert body["conversationId"] == event["detail"]["eventBody"]["conversationId"]
    assert body["participantId"] == event["detail"]["eventBody"]["participantId"]
    assert (body["ani"], body["dnis"]) == (MASK, MASK)


def test_a_body_that_is_not_json_cannot_be_masked() -> None:
    assert mask_body("{not json", DEFAULTS) is None
