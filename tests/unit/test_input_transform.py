"""`render`: what EventBridge would have sent to a target, from the event in its DLQ.

The `test_guide_example_*` tests are the examples of the User Guide's input-transformation
page (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html):
its EC2 event, its `InputPathsMap`, each template and the output it prints. The
`test_guide_silent_*` tests pin what `dlq.targets.transform` decided where the guide says
nothing.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from dlq.errors import GiveUp
from dlq.targets.transform import (
    InputTransformationFailed,
    InputTransformer,
    Rendered,
    TargetInput,
    render,
)

# The guide's example event, its InputPathsMap, and the rule its outputs name.
EC2_EVENT: dict[str, Any] = {
    "version": "0",
    "id": "7bf73129-1428-4cd3-a780-95db273d1602",
    "detail-type": "EC2 Instance State-change Notification",
    "source": "aws.ec2",
    "account": "123456789012",
    "time": "2015-11-11T21:29:54Z",
    "region": "us-east-1",
    "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"],
    "detail": {"instance-id": "i-0123456789", "state": "RUNNING"},
}
EC2_BODY = json.dumps(EC2_EVENT, separators=(",", ":"))
EC2_PATHS = {
    "timestamp": "$.time",
    "instance": "$.detail.instance-id",
    "state": "$.detail.state",
    "resource": "$.resources[0]",
}
GUIDE_RULE_ARN = "arn:aws:events:us-east-2:123456789012:rule/example"

# A Genesys Cloud event on its partner bus (from fixtures/genesys-conversation-end-event.json).
GENESYS_BUS = "aws.partner/genesys.com/cloud/5b1f0d2e-8c34-4e1a-9a77-2d6c0e9f4b13/crm-sync"
GENESYS_EVENT: dict[str, Any] = {
    "version": "0",
    "id": "e2c6f0a8-4b1d-4c9e-8f3a-5d7b9e1c2a40",
    "detail-type": "v2.detail.events.conversation.{id}.customer.end",
    "source": GENESYS_BUS,
    "account": "111122223333",
    "time": "2026-11-20T14:09:47Z",
    "region": "us-east-1",
    "resources": [],
    "detail": {
        "topicName": (
            "v2.detail.events.conversation.7d3e9a41-2b6c-4f80-9c15-6a0b8e2f1d94.customer.end"
        ),
        "version": "2",
        "eventBody": {
            "eventTime": 1795702187020,
            "conversationId": "7d3e9a41-2b6c-4f80-9c15-6a0b8e2f1d94",
            "participantId": "c41a7e02-93d5-4b6f-8e21-0f5d9c3b7a68",
            "mediaType": "VOICE",
            "direction": "INBOUND",
            "ani": "tel:+13175550199",
            "dnis": "tel:+13175550100",
            "disconnectType": "CLIENT",
        },
        "metadata": {"CorrelationId": "9c0e4b7a-2d5f-4a13-8e6b-1f3d5a7c9e20"},
        "timestamp": "2026-11-20T14:09:47.020Z",
    },
}
GENESYS_RULE_ARN = f"arn:aws:events:us-east-1:111122223333:rule/{GENESYS_BUS}/conversation-end"


def transform(
    template: str,
    paths: dict[str, str] | None = None,
    *,
    body: str = EC2_BODY,
    rule_arn: str = GUIDE_RULE_ARN,
) -> str:
    """The payload for `template` (and the guide's paths map unless told otherwise)."""
    target = TargetInput(
        transformer=InputTransformer(EC2_PATHS if paths is None else paths, template)
    )
    rendered = render(target, body, rule_arn=rule_arn)
    assert rendered.transformed
    return rendered.payload


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# --- The guide's examples


def test_guide_example_simple_string():
    assert transform('"instance <instance> is in <state>"') == (
        '"instance i-0123456789 is in RUNNING"'
    )


def test_guide_example_string_with_escaped_quotes():
    assert transform('"instance \\"<instance>\\" is in <state>"') == (
        '"instance \\"i-0123456789\\" is in RUNNING"'
    )


def test_guide_example_string_with_escaped_quotes_as_the_aws_cli_stores_it():
    """The guide's note: the CLI drops the backslashes, and the quotes arrive bare."""
    assert transform('"instance "<instance>" is in <state>"') == (
        '"instance "i-0123456789" is in RUNNING"'
    )


def test_guide_example_simple_json():
    template = '{\n  "instance" : <instance>,\n  "state": <state>\n}'

    assert transform(template) == '{\n  "instance" : "i-0123456789",\n  "state": "RUNNING"\n}'


def test_guide_example_json_with_strings_and_variables():
    template = (
        "{\n"
        ' "instance" : <instance>,\n'
        ' "state": "<state>",\n'
        ' "instanceStatus": "instance \\"<instance>\\" is in <state>"\n'
        "}"
    )

    assert transform(template) == (
        "{\n"
        ' "instance" : "i-0123456789",\n'
        ' "state": "RUNNING",\n'
        ' "instanceStatus": "instance \\"i-0123456789\\" is in RUNNING"\n'
        "}"
    )


def test_guide_example_json_with_a_mix_of_variables_and_static_information():
    """The guide prints this output re-indented (the array over five lines); the JSON is
    the same, and the template's own layout is kept (see the next test)."""
    template = (
        '{\n  "instance" : <instance>,\n  "state": [ 9, <state>, true ],\n'
        '  "Transformed" : "Yes"\n}\n'
    )
    printed = (
        '{\n  "instance" : "i-0123456789",\n  "state": [\n    9,\n    "RUNNING",\n'
        '    true\n  ],\n  "Transformed" : "Yes"\n}'
    )

    assert json.loads(transform(template)) == json.loads(printed)


def test_json_template_keeps_its_own_layout():
    assert transform('{ "state": [ 9, <state>, true ] }') == '{ "state": [ 9, "RUNNING", true ] }'


def test_guide_example_including_reserved_variables_in_json():
    """The guide elides `originalEvent` ("... // commented for brevity"): it is the event."""
    template = (
        '{\n  "instance" : <instance>,\n  "state": <state>,\n'
        '  "ruleArn" : <aws.events.rule-arn>,\n  "ruleName" : <aws.events.rule-name>,\n'
        '  "originalEvent" : <aws.events.event.json>\n}'
    )

    assert json.loads(transform(template)) == {
        "instance": "i-0123456789",
        "state": "RUNNING",
        "ruleArn": "arn:aws:events:us-east-2:123456789012:rule/example",
        "ruleName": "example",
        "originalEvent": EC2_EVENT,
    }


def test_guide_example_including_reserved_variables_in_a_string():
    assert transform('"<aws.events.rule-name> triggered"') == '"example triggered"'


def test_guide_example_amazon_cloudwatch_log_group():
    """The guide prints `{"timestamp" : 2015-11-11T21:29:54Z, "message": "instance
    "i-0123456789" is in RUNNING}`: not JSON (no quotes around the time, the message's
    closing quote lost), but the log entry as CloudWatch Logs shows it. The payload follows
    the rules of the other examples: a bare string variable gets its quotes, the template's
    escaped quotes stay escaped."""
    template = (
        '{\n  "timestamp" : <timestamp>,\n  "message": "instance \\"<instance>\\" is in <state>"\n}'
    )

    assert transform(template) == (
        '{\n  "timestamp" : "2015-11-11T21:29:54Z",\n'
        '  "message": "instance \\"i-0123456789\\" is in RUNNING"\n}'
    )


def test_api_reference_example_json_with_variables_in_quotes_and_out():
    """API_InputTransformer's example: `{"myInstance": <instance>,"myStatus": ...}`."""
    paths = {"instance": "$.detail.instance", "status": "$.detail.status"}
    event = {**EC2_EVENT, "detail": {"instance": "i-0123456789", "status": "running"}}
    template = '{"myInstance": <instance>,"myStatus": "<instance> is in state \\"<status>\\""}'

    assert transform(template, paths, body=compact(event)) == (
        '{"myInstance": "i-0123456789","myStatus": "i-0123456789 is in state \\"running\\""}'
    )


# --- Input and InputPath


def test_input_constant_is_sent_as_given():
    constant = '{ "action": "resync",  "full": true }'

    rendered = render(TargetInput(input=constant), EC2_BODY, rule_arn=GUIDE_RULE_ARN)

    assert rendered == Rendered(constant, transformed=True)


def test_input_path_to_a_nested_object_sends_it_as_compact_json():
    rendered = render(TargetInput(input_path="$.detail"), EC2_BODY, rule_arn=GUIDE_RULE_ARN)

    assert rendered == Rendered('{"instance-id":"i-0123456789","state":"RUNNING"}', True)


def test_input_path_to_an_array_element_sends_it_as_a_json_string():
    rendered = render(TargetInput(input_path="$.resources[0]"), EC2_BODY, rule_arn=GUIDE_RULE_ARN)

    assert rendered.payload == '"arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"'


def test_input_path_keeps_numbers_and_text_as_written():
    body = (
        '{"id":"1","source":"s","detail-type":"t","detail":{"price":1.50,"big":1e3,"name":"Zoë"}}'
    )

    rendered = render(TargetInput(input_path="$.detail"), body, rule_arn=GUIDE_RULE_ARN)

    assert rendered.payload == '{"price":1.50,"big":1e3,"name":"Zoë"}'


def test_guide_silent_input_path_that_selects_nothing_fails():
    with pytest.raises(InputTransformationFailed, match=r"InputPath '\$\.detail\.missing'"):
        render(TargetInput(input_path="$.detail.missing"), EC2_BODY, rule_arn=GUIDE_RULE_ARN)


# --- Bodies that are sent unchanged


def test_no_configuration_sends_the_body_byte_for_byte():
    body = '{ "id" : "1", "source":"s", "detail-type":"t", "detail":{"n": 1.0, "x":"\\u00e9"} }\n'

    rendered = render(TargetInput(), body, rule_arn=GUIDE_RULE_ARN)

    assert rendered == Rendered(body, transformed=False)


def test_body_that_is_not_json_is_sent_unchanged():
    body = "conversation 7d3e9a41 ended"

    rendered = render(TargetInput(input_path="$.detail"), body, rule_arn=GUIDE_RULE_ARN)

    assert rendered == Rendered(body, transformed=False)


def test_json_body_without_the_envelope_keys_is_sent_unchanged():
    body = '{"id": "1", "source": "s", "detail": {}}'

    rendered = render(TargetInput(input='{"constant": 1}'), body, rule_arn=GUIDE_RULE_ARN)

    assert rendered == Rendered(body, transformed=False)


def test_json_body_that_is_not_an_object_is_sent_unchanged():
    body = '["id", "source", "detail-type", "detail"]'

    rendered = render(TargetInput(input_path="$[0]"), body, rule_arn=GUIDE_RULE_ARN)

    assert rendered == Rendered(body, transformed=False)


# --- Predefined variables


def test_rule_arn_variable_is_the_rule_arn():
    assert transform('{"r": <aws.events.rule-arn>}') == f'{{"r": "{GUIDE_RULE_ARN}"}}'


def test_rule_name_variable_on_the_default_bus():
    assert transform('"<aws.events.rule-name>"') == '"example"'


def test_rule_name_variable_on_a_custom_bus_is_the_part_after_the_bus_name():
    arn = "arn:aws:events:eu-west-1:123456789012:rule/orders-bus/order-shipped"

    assert transform('"<aws.events.rule-name>"', rule_arn=arn) == '"order-shipped"'


def test_rule_name_variable_with_a_rule_arn_that_is_not_one_fails():
    with pytest.raises(InputTransformationFailed, match="not a rule ARN"):
        transform('"<aws.events.rule-name>"', rule_arn="arn:aws:sqs:us-east-1:1:queue")


def test_event_variable_is_the_event_without_detail_as_compact_json():
    without_detail = {k: v for k, v in EC2_EVENT.items() if k != "detail"}

    assert transform('{"e": <aws.events.event>}') == '{"e": ' + compact(without_detail) + "}"


def test_event_json_variable_is_the_full_event_as_compact_json():
    assert transform('{"e": <aws.events.event.json>}') == '{"e": ' + compact(EC2_EVENT) + "}"


def test_ingestion_time_variable_is_the_events_own_time():
    assert transform('{"t": <aws.events.event.ingestion-time>}') == (
        '{"t": "2015-11-11T21:29:54Z"}'
    )


# --- Substitution


def test_object_value_outside_a_string_is_inserted_as_compact_json():
    assert transform('{"d": <d>}', {"d": "$.detail"}) == (
        '{"d": {"instance-id":"i-0123456789","state":"RUNNING"}}'
    )


def test_number_value_outside_a_string_is_inserted_bare():
    body = compact({**EC2_EVENT, "detail": {"count": 3}})

    assert transform('{"n": <n>}', {"n": "$.detail.count"}, body=body) == '{"n": 3}'


def test_value_with_a_quote_outside_a_string_is_escaped_as_a_json_string():
    body = compact({**EC2_EVENT, "detail": {"note": 'say "hi"'}})

    assert transform('{"n": <n>}', {"n": "$.detail.note"}, body=body) == ('{"n": "say \\"hi\\""}')


def test_value_with_a_quote_inside_a_string_is_not_escaped():
    """Guide, common issues: "EventBridge doesn't escape values extracted by Input Path"."""
    body = compact({**EC2_EVENT, "detail": {"note": 'say "hi"'}})

    assert transform('"note: <n>"', {"n": "$.detail.note"}, body=body) == '"note: say "hi""'


def test_missing_path_inside_a_string_leaves_nothing():
    """Guide: the variable "isn't created and won't appear in the output"."""
    assert transform('"state <gone>."', {"gone": "$.detail.gone"}) == '"state ."'


def test_guide_silent_missing_path_outside_a_string_becomes_null():
    assert transform('{"gone": <gone>}', {"gone": "$.detail.gone"}) == '{"gone": null}'


def test_guide_silent_undefined_placeholder_is_left_as_written():
    assert transform('"a <b> c <state>"') == '"a <b> c RUNNING"'


def test_guide_silent_wildcard_selects_a_list_of_the_matches():
    assert transform('{"all": <all>}', {"all": "$.detail.*"}) == (
        '{"all": ["i-0123456789","RUNNING"]}'
    )


def test_guide_silent_path_outside_the_supported_syntax_fails():
    with pytest.raises(InputTransformationFailed, match="variable 'bad'"):
        transform('{"b": <bad>}', {"bad": "$['detail']"})


# --- Configurations EventBridge refuses


def test_more_than_100_variables_fails_naming_the_rule_and_the_fix():
    paths = {f"v{n}": "$.id" for n in range(101)}

    with pytest.raises(InputTransformationFailed) as caught:
        transform('"<v0>"', paths)

    message = str(caught.value)
    assert GUIDE_RULE_ARN in message
    assert "101 variables" in message
    assert "at most 100" in message
    assert "Fix:" in message


def test_exactly_100_variables_are_allowed():
    paths = {f"v{n}": "$.id" for n in range(100)}

    assert transform('"<v99>"', paths) == '"7bf73129-1428-4cd3-a780-95db273d1602"'


def test_variable_named_with_the_reserved_aws_prefix_fails():
    with pytest.raises(InputTransformationFailed, match=r"aws\.mine.*reserved"):
        transform('"<aws.mine>"', {"aws.mine": "$.id"})


def test_more_than_one_kind_of_input_fails():
    target = TargetInput(input="{}", input_path="$.detail")

    with pytest.raises(InputTransformationFailed, match="Input and InputPath"):
        render(target, EC2_BODY, rule_arn=GUIDE_RULE_ARN)


def test_failure_is_a_give_up_and_never_holds_the_event_body():
    body = compact({**EC2_EVENT, "detail": {"ani": "tel:+13175550199"}})

    with pytest.raises(GiveUp) as caught:
        render(TargetInput(input_path="$.detail.gone"), body, rule_arn=GUIDE_RULE_ARN)

    assert "+13175550199" not in str(caught.value)


# --- TargetInput and Rendered


def test_from_target_and_to_dict_round_trip_a_list_targets_by_rule_target():
    target = {
        "Id": "webhook",
        "Arn": "arn:aws:events:us-east-1:111122223333:api-destination/crm/0a1b2c3d",
        "RoleArn": "arn:aws:iam::111122223333:role/eventbridge-invoke",
        "DeadLetterConfig": {"Arn": "arn:aws:sqs:us-east-1:111122223333:crm-dlq"},
        "InputTransformer": {
            "InputPathsMap": {"conversationId": "$.detail.eventBody.conversationId"},
            "InputTemplate": '{"conversationId": <conversationId>}',
        },
    }

    target_input = TargetInput.from_target(target)

    assert target_input.to_dict() == {"InputTransformer": target["InputTransformer"]}
    assert TargetInput.from_target(target_input.to_dict()) == target_input


def test_from_target_without_input_keys_is_not_configured():
    target_input = TargetInput.from_target({"Id": "q", "Arn": "arn:aws:sqs:us-east-1:1:q"})

    assert not target_input.configured
    assert target_input.to_dict() == {}


def test_from_target_reads_input_path():
    assert TargetInput.from_target({"InputPath": "$.detail"}) == TargetInput(input_path="$.detail")


def test_from_target_without_an_input_template_fails():
    with pytest.raises(InputTransformationFailed, match="target webhook"):
        TargetInput.from_target({"Id": "webhook", "InputTransformer": {"InputPathsMap": {}}})


def test_equal_configurations_are_equal_and_hash_alike():
    first = TargetInput(transformer=InputTransformer({"a": "$.id"}, '"<a>"'))
    second = TargetInput(transformer=InputTransformer({"a": "$.id"}, '"<a>"'))

    assert first == second
    assert hash(first) == hash(second)


def test_digest_is_sha256_of_the_utf8_payload():
    payload = '"Zoë"'

    assert Rendered(payload, transformed=True).digest == (
        "sha256:" + hashlib.sha256(payload.encode("utf-8")).hexdigest()
    )


# --- A Genesys event to a webhook


def test_genesys_conversation_end_event_to_a_webhook_body():
    paths = {
        "conversationId": "$.detail.eventBody.conversationId",
        "eventType": "$.detail-type",
    }
    template = (
        '{"conversationId": <conversationId>, "eventType": <eventType>, '
        '"rule": <aws.events.rule-name>, "summary": "Conversation <conversationId> ended"}'
    )

    payload = transform(template, paths, body=compact(GENESYS_EVENT), rule_arn=GENESYS_RULE_ARN)

    assert payload == (
        '{"conversationId": "7d3e9a41-2b6c-4f80-9c15-6a0b8e2f1d94", '
        '"eventType": "v2.detail.events.conversation.{id}.customer.end", '
        '"rule": "conversation-end", '
        '"summary": "Conversation 7d3e9a41-2b6c-4f80-9c15-6a0b8e2f1d94 ended"}'
    )
