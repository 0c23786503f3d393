"""One ARN listed more than once by a rule: which listing a DLQ message means, if any.

A DLQ message names the rule and the target's ARN, never the target's id. Listings of
one ARN that differ (input, input path, input transformer, parameters) leave the replay
unable to tell which one missed the event: it sends nothing and says so
(`AmbiguousTarget`). Listings that are alike are one delivery.
"""

from __future__ import annotations

import json
from typing import Any

import fakeredis
import pytest

from dlq.errors import GiveUp
from dlq.ledger import MemoryLedger, Status
from dlq.replay import ReplayOutcome
from dlq.replay.recorded import observed
from dlq.targets.errors import TargetFatal
from dlq.targets.rules import CACHE_PREFIX, RuleBook, RuleTarget, RuleTargetError, listed_target

from .fakes import TARGET_ARN

RULE_ARN = (
    "arn:aws:events:us-east-1:123456789012:rule/aws.partner/genesys.com/cloud/"
    "5b1f0d2e-8c34-4e1a-9a77-2d6c0e9f4b13/crm-sync/conversations-to-crm"
)
LAMBDA_ARN = "arn:aws:lambda:us-east-1:123456789012:function:crm-sync"
OTHER_ARN = "arn:aws:sqs:us-east-1:123456789012:wfm"

#: Pairs of listings of one ARN, each pair differing in one thing `RuleTarget` keeps.
DIFFERING = {
    "two inputs": ({"Input": '{"crm": "a"}'}, {"Input": '{"crm": "b"}'}),
    "an input and none": ({"Input": '{"crm": "a"}'}, {}),
    "an input and an input path": ({"Input": '{"crm": "a"}'}, {"InputPath": "$.detail"}),
    "two input paths": ({"InputPath": "$.detail"}, {"InputPath": "$.detail.eventBody"}),
    "two transformer templates": (
        {"InputTransformer": {"InputPathsMap": {"c": "$.id"}, "InputTemplate": '{"a": <c>}'}},
        {"InputTransformer": {"InputPathsMap": {"c": "$.id"}, "InputTemplate": '{"b": <c>}'}},
    ),
    "two transformer paths": (
        {"InputTransformer": {"InputPathsMap": {"c": "$.id"}, "InputTemplate": "<c>"}},
        {"InputTransformer": {"InputPathsMap": {"c": "$.time"}, "InputTemplate": "<c>"}},
    ),
    "two message groups": (
        {"SqsParameters": {"MessageGroupId": "crm"}},
        {"SqsParameters": {"MessageGroupId": "wfm"}},
    ),
    "two partition key paths": (
        {"KinesisParameters": {"PartitionKeyPath": "$.id"}},
        {"KinesisParameters": {"PartitionKeyPath": "$.detail.eventBody.conversationId"}},
    ),
    "two header values": (
        {"HttpParameters": {"HeaderParameters": {"x-crm": "a"}}},
        {"HttpParameters": {"HeaderParameters": {"x-crm": "b"}}},
    ),
    "http parameters and none": ({"HttpParameters": {"PathParameterValues": ["a"]}}, {}),
}

#: Configurations that a rule may list twice, alike, under two ids.
ALIKE = {
    "nothing": {},
    "an input": {"Input": '{"crm": "a"}'},
    "an input path": {"InputPath": "$.detail"},
    "a transformer": {
        "InputTransformer": {
            "InputPathsMap": {"c": "$.detail.eventBody.conversationId", "t": "$.time"},
            "InputTemplate": '{"conversation": <c>, "at": <t>}',
        }
    },
    "sqs parameters": {"SqsParameters": {"MessageGroupId": "crm"}},
    "http parameters": {
        "HttpParameters": {
            "PathParameterValues": ["a"],
            "HeaderParameters": {"x-crm": "a"},
            "QueryStringParameters": {"q": "1"},
        }
    },
}


def listing(target_id: str, arn: str = LAMBDA_ARN, **configuration: Any) -> RuleTarget:
    """A target as ListTargetsByRule returns it."""
    return RuleTarget.from_target({"Id": target_id, "Arn": arn, **configuration})


def ambiguity(listed: list[RuleTarget], target_arn: str = LAMBDA_ARN) -> RuleTargetError:
    with pytest.raises(RuleTargetError) as refused:
        listed_target(RULE_ARN, target_arn, listed)
    return refused.value


# --- the decision ---------------------------------------------------------------------------


def test_an_arn_listed_once_is_that_target():
    crm = listing("crm", Input='{"crm": "a"}')

    assert listed_target(RULE_ARN, LAMBDA_ARN, [listing("wfm", OTHER_ARN), crm]) is crm


def test_an_arn_the_rule_does_not_list_is_no_target():
    assert listed_target(RULE_ARN, LAMBDA_ARN, [listing("wfm", OTHER_ARN)]) is None
    assert listed_target(RULE_ARN, LAMBDA_ARN, []) is None


@pytest.mark.parametrize("first, second", DIFFERING.values(), ids=DIFFERING.keys())
def test_an_arn_listed_twice_with_different_configurations_is_ambiguous(first, second):
    refused = ambiguity([listing("crm-a", **first), listing("crm-b", **second)])

    assert refused.code == "AmbiguousTarget"
    assert refused.target_arn == LAMBDA_ARN


@pytest.mark.parametrize("configuration", ALIKE.values(), ids=ALIKE.keys())
def test_an_arn_listed_twice_alike_is_the_first_listing(configuration):
    first = listing("crm-a", **configuration)

    chosen = listed_target(RULE_ARN, LAMBDA_ARN, [first, listing("crm-b", **configuration)])

    assert chosen is first


def test_one_differing_listing_among_alike_ones_makes_the_arn_ambiguous():
    alike = {"Input": '{"crm": "a"}'}
    listed = [listing("a", **alike), listing("b", **alike), listing("c", Input='{"crm": "c"}')]

    assert ambiguity(listed).code == "AmbiguousTarget"


def test_other_arns_listed_differently_do_not_make_a_target_ambiguous():
    crm = listing("crm", Input='{"crm": "a"}')
    listed = [listing("wfm-a", OTHER_ARN, Input="1"), crm, listing("wfm-b", OTHER_ARN, Input="2")]

    assert listed_target(RULE_ARN, LAMBDA_ARN, listed) is crm
    assert ambiguity(listed, OTHER_ARN).code == "AmbiguousTarget"


def test_target_ids_alone_do_not_make_listings_differ():
    assert listing("crm-a", Input="1").delivers_like(listing("crm-b", Input="1"))
    assert not listing("crm-a", Input="1").delivers_like(listing("crm-a", Input="2"))


@pytest.mark.parametrize("configuration", ALIKE.values(), ids=ALIKE.keys())
def test_a_listing_read_back_from_the_fleet_cache_is_alike_to_the_original(configuration):
    original = listing("crm", **configuration)

    assert RuleTarget.from_target(original.to_dict()).delivers_like(original)


# --- what the refusal says ------------------------------------------------------------------


def test_an_ambiguous_target_is_a_fatal_rule_target_error():
    refused = ambiguity([listing("crm-a", Input="1"), listing("crm-b", Input="2")])

    assert isinstance(refused, TargetFatal) and isinstance(refused, GiveUp)


def test_the_refusal_names_the_rule_the_listings_and_both_fixes():
    message = str(ambiguity([listing("crm-a", Input="1"), listing("crm-b", Input="2")]))

    assert RULE_ARN in message and LAMBDA_ARN in message
    assert "crm-a, crm-b" in message
    assert "nothing was redelivered" in message
    assert f"dlq-replay redrive --error-code AmbiguousTarget --target-arn {LAMBDA_ARN}" in message
    assert f"--target-override {LAMBDA_ARN}" in message
    assert "its own ARN" in message and "Lambda alias" in message


def test_the_whole_refusal_fits_in_the_ledgers_last_error():
    # The ledger keeps 1,000 characters of `last_error`: the fix must not be cut off.
    message = str(ambiguity([listing("crm-a", Input="1"), listing("crm-b", Input="2")]))

    assert len(message) <= 1000


# --- the rule book and the ledger -----------------------------------------------------------


class ListingEvents:
    """An EventBridge client that lists one rule's targets and counts the calls."""

    def __init__(self, targets: list[dict[str, Any]]) -> None:
        self.targets = targets
        self.calls = 0

    def list_targets_by_rule(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        return {"Targets": self.targets}


def ambiguous_rule_book(cache: fakeredis.FakeRedis) -> tuple[RuleBook, ListingEvents]:
    events = ListingEvents(
        [
            {"Id": "crm-a", "Arn": LAMBDA_ARN, "Input": '{"crm": "a"}'},
            {"Id": "crm-b", "Arn": LAMBDA_ARN, "Input": '{"crm": "b"}'},
        ]
    )
    return RuleBook(lambda region: events, cache, ttl_seconds=60), events


def test_the_rule_book_refuses_an_ambiguous_target_from_a_fresh_listing(cache):
    book, _ = ambiguous_rule_book(cache)

    with pytest.raises(RuleTargetError) as refused:
        book.target(RULE_ARN, LAMBDA_ARN)

    assert refused.value.code == "AmbiguousTarget"


def test_another_worker_refuses_it_from_the_fleet_cache_too(cache, peer_cache):
    book, events = ambiguous_rule_book(cache)
    with pytest.raises(RuleTargetError):
        book.target(RULE_ARN, LAMBDA_ARN)
    other_worker, _ = ambiguous_rule_book(peer_cache)

    with pytest.raises(RuleTargetError) as refused:
        other_worker.target(RULE_ARN, LAMBDA_ARN)

    assert refused.value.code == "AmbiguousTarget"
    assert events.calls == 1  # the second worker read the listing the first one cached
    assert len(json.loads(cache.get(CACHE_PREFIX + RULE_ARN))) == 2


def test_an_ambiguous_item_ends_failed_with_its_code_kept_by_the_ledger(
    make_replayer, receive, ledger: MemoryLedger, target
):
    key = receive()
    listed = [listing("crm-a", TARGET_ARN, Input="1"), listing("crm-b", TARGET_ARN, Input="2")]
    target.fail_with(ambiguity(listed, TARGET_ARN))

    outcome = make_replayer().replay(key)

    item = ledger.get(key)
    assert outcome is ReplayOutcome.FAILED
    assert item.status is Status.FAILED
    assert item.last_error_code == "AmbiguousTarget"
    assert "--target-override" in (item.last_error or "")
    assert item is not None
    assert observed(item).failure_code == "AmbiguousTarget"  # what `status` counts by
    assert target.delivered == []
