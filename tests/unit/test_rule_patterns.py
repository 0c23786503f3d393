"""A rule's event pattern in the RuleBook: read with DescribeRule once per rule per TTL for
the fleet (cached beside its targets, dropped by the same `forget`), and the worker's
check that the rule would have delivered the event at all."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from helpers import genesys_event

from dlq.errors import ConfigurationError, Rejected
from dlq.targets.rules import PATTERN_LOOKUPS_KEY, RuleBook, RuleTargetError

RULE_ARN = "arn:aws:events:us-east-1:123456789012:rule/genesys-prod/crm-sync"
TARGET = "arn:aws:sqs:us-east-1:123456789012:crm"
GENESYS = json.dumps({"source": [{"prefix": "aws.partner/genesys.com"}]})


class DescribingEvents:
    """An EventBridge client that describes one rule (or raises `error`), counting calls."""

    def __init__(self, pattern: str | None = GENESYS, error: Exception | None = None) -> None:
        self.pattern = pattern
        self.error = error
        self.calls: list[dict[str, Any]] = []

    def describe_rule(self, **arguments: Any) -> dict[str, Any]:
        self.calls.append(arguments)
        if self.error is not None:
            raise self.error
        answer = {"Name": "crm-sync", "Arn": RULE_ARN}
        return {**answer, "EventPattern": self.pattern} if self.pattern is not None else answer


def book_of(events: DescribingEvents, cache) -> RuleBook:
    return RuleBook(lambda region: events, cache, ttl_seconds=60)


def body(**fields: Any) -> str:
    return json.dumps(genesys_event(**fields))


def test_an_event_the_pattern_matches_passes(cache):
    events = DescribingEvents()

    book_of(events, cache).check_pattern(RULE_ARN, TARGET, body())

    assert events.calls == [{"Name": "crm-sync", "EventBusName": "genesys-prod"}]


def test_an_event_the_pattern_does_not_match_is_rejected_as_pattern_mismatch(cache):
    events = DescribingEvents(json.dumps({"source": ["com.example.payments"]}))

    with pytest.raises(Rejected) as rejected:
        book_of(events, cache).check_pattern(RULE_ARN, TARGET, body())

    assert rejected.value.code == "PatternMismatch"
    assert RULE_ARN in str(rejected.value) and "sqs:SendMessage" in str(rejected.value)


def test_a_body_that_is_not_json_matches_no_pattern(cache):
    with pytest.raises(Rejected):
        book_of(DescribingEvents(), cache).check_pattern(RULE_ARN, TARGET, "{not json")


def test_a_scheduled_rule_without_a_pattern_delivered_no_event(cache):
    with pytest.raises(Rejected, match="no event pattern") as rejected:
        book_of(DescribingEvents(pattern=None), cache).check_pattern(RULE_ARN, TARGET, body())

    assert rejected.value.code == "PatternMismatch"


def test_a_pattern_it_cannot_evaluate_fails_the_item_with_a_way_out(cache):
    events = DescribingEvents(json.dumps({"source": [{"contains": "genesys"}]}))

    with pytest.raises(RuleTargetError) as failed:
        book_of(events, cache).check_pattern(RULE_ARN, TARGET, body())

    assert not isinstance(failed.value, Rejected)  # failed (redrivable), not rejected
    assert failed.value.code == "PatternUnsupported"
    assert "--target-override" in str(failed.value)


def test_a_rule_gone_is_rule_not_found(cache):
    gone = ClientError({"Error": {"Code": "ResourceNotFoundException"}}, "DescribeRule")

    with pytest.raises(RuleTargetError) as failed:
        book_of(DescribingEvents(error=gone), cache).check_pattern(RULE_ARN, TARGET, body())

    assert failed.value.code == "RuleNotFound"


def test_describe_rule_denied_is_a_configuration_error_naming_the_permission(cache):
    denied = ClientError({"Error": {"Code": "AccessDeniedException"}}, "DescribeRule")

    with pytest.raises(ConfigurationError, match="events:DescribeRule"):
        book_of(DescribingEvents(error=denied), cache).check_pattern(RULE_ARN, TARGET, body())


def test_the_fleet_describes_a_rule_once_for_twenty_events_across_workers(cache, peer_cache):
    events = DescribingEvents()
    workers = [book_of(events, cache), book_of(events, peer_cache)]

    for index in range(20):
        workers[index % 2].check_pattern(RULE_ARN, TARGET, body())

    assert len(events.calls) == 1
    assert int(cache.hget(PATTERN_LOOKUPS_KEY, RULE_ARN)) == 1


def test_forget_drops_the_pattern_with_the_targets(cache):
    events = DescribingEvents()
    book = book_of(events, cache)
    book.check_pattern(RULE_ARN, TARGET, body())

    events.pattern = json.dumps({"source": ["com.example.payments"]})  # an operator's change
    book.forget(RULE_ARN)

    with pytest.raises(Rejected):
        book.check_pattern(RULE_ARN, TARGET, body())
    assert len(events.calls) == 2
