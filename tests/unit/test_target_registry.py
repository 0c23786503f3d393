"""Which kind of target an ARN names: the registry, without any AWS call."""

from __future__ import annotations

import pytest

from dlq.targets import KINDS, UnsupportedTarget, kind_named, kind_of

ARNS = {
    "lambda": "arn:aws:lambda:us-east-1:123456789012:function:crm-sync",
    "sqs": "arn:aws:sqs:us-east-1:123456789012:crm-events",
    "sns": "arn:aws:sns:us-east-1:123456789012:crm-topic",
    "states": "arn:aws:states:us-east-1:123456789012:stateMachine:crm-flow",
    "kinesis": "arn:aws:kinesis:us-east-1:123456789012:stream/crm",
    "firehose": "arn:aws:firehose:us-east-1:123456789012:deliverystream/crm",
    "events": "arn:aws:events:us-east-1:123456789012:event-bus/crm",
    "api-destination": "arn:aws:events:us-east-1:123456789012:api-destination/crm/abc",
}


@pytest.mark.parametrize(("name", "arn"), sorted(ARNS.items()))
def test_each_aws_kind_is_recognised_by_its_arn(name: str, arn: str) -> None:
    assert kind_of(arn).name == name


def test_every_registered_kind_but_http_is_recognised_by_an_arn() -> None:
    assert set(KINDS) - {"http"} == set(ARNS)


def test_an_arn_listed_as_an_http_target_is_an_http_endpoint() -> None:
    arn = "arn:aws:events:us-east-1:123456789012:api-destination/crm/abc"
    assert kind_of(arn, http_targets={arn}).name == "http"


@pytest.mark.parametrize(
    "arn",
    [
        "not-an-arn",
        "arn:aws:dynamodb:us-east-1:123456789012:table/ledger",
        "arn:aws:lambda:us-east-1:123456789012:layer:shared",
        "arn:aws:events:us-east-1:123456789012:rule/crm",
    ],
)
def test_anything_else_is_unsupported_with_the_way_out(arn: str) -> None:
    with pytest.raises(UnsupportedTarget, match="REPLAY_TARGET_OVERRIDES"):
        kind_of(arn)


def test_an_unknown_kind_name_fails_loudly() -> None:
    with pytest.raises(LookupError, match="known kinds: lambda, sqs"):
        kind_named("carrier-pigeon")
    assert kind_named("sqs") is KINDS["sqs"]
