"""Rule-aware routing against real parts: moto's EventBridge (rules and targets as a user
has them, created first), SQS, Kinesis and Secrets Manager over HTTP, the test Redis, and
a local HTTP sink standing in for an API destination's endpoint.

A rule's target is read with ListTargetsByRule; what it is sent is what EventBridge would
have sent (its input transformation and its parameters). Input transformation itself is
unit-tested in tests/unit/test_input_transform.py; here only its wiring is.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import logging
import os
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
from botocore.exceptions import ClientError
from helpers import eventually, genesys_event

from devstack.moto_server import MotoServer
from dlq.aws import aws_client
from dlq.errors import ConfigurationError, GiveUp
from dlq.settings import Settings
from dlq.targets import Redeliverer, TargetForbidden, UnsupportedTarget
from dlq.targets.rules import (
    CACHE_PREFIX,
    FILL_PREFIX,
    LOOKUPS_KEY,
    RuleBook,
    RuleRef,
    RuleTargetError,
)

#: moto's default account and the settings' region.
ACCOUNT = "123456789012"
REGION = "us-east-1"
PATTERN = json.dumps({"source": [{"prefix": "aws.partner/genesys.com"}]})


@pytest.fixture()
def settings(moto_server: MotoServer, make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(aws_region=REGION)


@pytest.fixture()
def redeliverer(settings: Settings, redis_client) -> Redeliverer:
    return Redeliverer(settings, cache=redis_client)


# --- pre-existing resources, as a user has them ---------------------------------------------


def client(service: str, settings: Settings) -> Any:
    """The test's own boto3 client of `service` on the moto server, built once."""
    return _client(service, settings.aws_region, os.environ["AWS_ENDPOINT_URL"])


@functools.cache
def _client(service: str, region: str, endpoint: str) -> Any:
    return aws_client(service, Settings(_env_file=None, aws_region=region))


def new_queue(settings: Settings, name: str) -> tuple[str, str]:
    """A queue's URL and ARN."""
    attributes = {"FifoQueue": "true"} if name.endswith(".fifo") else {}
    url = client("sqs", settings).create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return url, f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"


def receive_all(settings: Settings, url: str) -> list[dict[str, Any]]:
    """Every message on the queue (received, so hidden from the next call)."""
    sqs = client("sqs", settings)
    messages: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            MessageSystemAttributeNames=["All"],
        ).get("Messages", [])
        if not batch:
            return messages
        messages.extend(batch)


def new_bus(settings: Settings, unique: str) -> str:
    name = f"genesys-{unique}"
    client("events", settings).create_event_bus(Name=name)
    return name


def new_rule(settings: Settings, bus: str, name: str, targets: list[dict[str, Any]]) -> str:
    """A rule on `bus` with `targets` (put 10 at a time, as PutTargets allows); its ARN."""
    events = client("events", settings)
    rule_arn = str(events.put_rule(Name=name, EventBusName=bus, EventPattern=PATTERN)["RuleArn"])
    for start in range(0, len(targets), 10):
        answer = events.put_targets(
            Rule=name, EventBusName=bus, Targets=targets[start : start + 10]
        )
        assert answer["FailedEntryCount"] == 0, answer["FailedEntries"]
    return rule_arn


def new_stream(settings: Settings, name: str) -> str:
    kinesis = client("kinesis", settings)
    kinesis.create_stream(StreamName=name, ShardCount=1)
    summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    return str(summary["StreamARN"])


def read_record(settings: Settings, stream_arn: str, detail: str) -> dict[str, Any]:
    """The one record of the stream, from the shard a delivery's detail names."""
    kinesis = client("kinesis", settings)
    iterator = kinesis.get_shard_iterator(
        StreamName=stream_arn.rsplit("/", 1)[-1],
        ShardId=detail.split("/")[0],
        ShardIteratorType="TRIM_HORIZON",
    )["ShardIterator"]
    [record] = kinesis.get_records(ShardIterator=iterator)["Records"]
    return dict(record)


def lookups(redis_client, rule_arn: str) -> int:
    """How many times the fleet called ListTargetsByRule for `rule_arn`."""
    return int(redis_client.hget(LOOKUPS_KEY, rule_arn) or 0)


def event_body(**fields: Any) -> tuple[dict[str, Any], str]:
    """A Genesys event and its DLQ body."""
    event = genesys_event(**fields)
    return event, json.dumps(event)


def redeliver(redeliverer: Redeliverer, event: dict[str, Any], body: str, **routing: Any):
    return redeliverer.redeliver(
        event_id=event["id"],
        body=body,
        conversation_id=event["detail"]["eventBody"]["conversationId"],
        **routing,
    )


# --- the payload EventBridge would have sent ------------------------------------------------


def test_an_input_transformer_target_receives_exactly_the_transformed_payload(
    settings, redeliverer, unique
):
    url, queue = new_queue(settings, f"crm-{unique}")
    template = (
        '{"rule": <aws.events.rule-name>, "conversation": <conversation>, "note": "ended: <topic>"}'
    )
    rule_arn = new_rule(
        settings,
        new_bus(settings, unique),
        f"crm-sync-{unique}",
        [
            {
                "Id": "crm",
                "Arn": queue,
                "InputTransformer": {
                    "InputPathsMap": {
                        "conversation": "$.detail.eventBody.conversationId",
                        "topic": "$.detail.topicName",
                    },
                    "InputTemplate": template,
                },
            }
        ],
    )
    event, body = event_body()
    conversation = event["detail"]["eventBody"]["conversationId"]
    expected = (
        f'{{"rule": "crm-sync-{unique}", "conversation": "{conversation}", '
        f'"note": "ended: {event["detail"]["topicName"]}"}}'
    )

    delivery = redeliver(redeliverer, event, body, target_arn=queue, rule_arn=rule_arn)

    assert [m["Body"] for m in receive_all(settings, url)] == [expected]
    assert delivery.transformed is True
    assert delivery.digest == "sha256:" + hashlib.sha256(expected.encode()).hexdigest()
    assert delivery.route == "rule"
    assert (delivery.target_arn, delivery.delivered_to, delivery.kind) == (queue, queue, "sqs")


def test_a_constant_input_target_receives_the_constant(settings, redeliverer, unique):
    url, queue = new_queue(settings, f"crm-{unique}")
    constant = '{"replayed": true, "by": "dlq-replay"}'
    rule_arn = new_rule(
        settings,
        new_bus(settings, unique),
        f"crm-sync-{unique}",
        [{"Id": "crm", "Arn": queue, "Input": constant}],
    )
    event, body = event_body()

    delivery = redeliver(redeliverer, event, body, target_arn=queue, rule_arn=rule_arn)

    assert [m["Body"] for m in receive_all(settings, url)] == [constant]
    assert delivery.transformed is True


def test_an_input_path_target_receives_the_selected_part(settings, redeliverer, unique):
    url, queue = new_queue(settings, f"crm-{unique}")
    rule_arn = new_rule(
        settings,
        new_bus(settings, unique),
        f"crm-sync-{unique}",
        [{"Id": "crm", "Arn": queue, "InputPath": "$.detail.eventBody"}],
    )
    event, body = event_body()
    selected = json.dumps(event["detail"]["eventBody"], separators=(",", ":"))

    delivery = redeliver(redeliverer, event, body, target_arn=queue, rule_arn=rule_arn)

    assert [m["Body"] for m in receive_all(settings, url)] == [selected]
    assert delivery.transformed is True


def test_a_target_without_transformation_receives_the_body_byte_for_byte(
    settings, redeliverer, unique
):
    url, queue = new_queue(settings, f"crm-{unique}")
    rule_arn = new_rule(
        settings, new_bus(settings, unique), f"crm-sync-{unique}", [{"Id": "crm", "Arn": queue}]
    )
    event = genesys_event()
    event["detail"]["eventBody"]["name"] = "Zoë Ørsted 東京 🎧"
    body = "  " + json.dumps(event, indent=1, ensure_ascii=False).replace("\n", "\r\n") + "\t\n"

    delivery = redeliver(redeliverer, event, body, target_arn=queue, rule_arn=rule_arn)

    assert [m["Body"] for m in receive_all(settings, url)] == [body]
    assert delivery.transformed is False
    assert delivery.digest == "sha256:" + hashlib.sha256(body.encode()).hexdigest()
    assert delivery.route == "rule"


def test_a_fifo_target_gets_its_sqs_parameters_message_group(settings, redeliverer, unique):
    url, queue = new_queue(settings, f"crm-{unique}.fifo")
    rule_arn = new_rule(
        settings,
        new_bus(settings, unique),
        f"crm-sync-{unique}",
        [{"Id": "crm", "Arn": queue, "SqsParameters": {"MessageGroupId": "crm-sync"}}],
    )
    event, body = event_body()

    redeliver(redeliverer, event, body, target_arn=queue, rule_arn=rule_arn)

    [message] = receive_all(settings, url)
    assert message["Attributes"]["MessageGroupId"] == "crm-sync"  # not the conversation id
    assert message["Body"] == body


def test_a_kinesis_target_is_keyed_by_its_partition_key_path(settings, redeliverer, unique):
    stream = new_stream(settings, f"crm-{unique}")
    rule_arn = new_rule(
        settings,
        new_bus(settings, unique),
        f"crm-sync-{unique}",
        [
            {
                "Id": "stream",
                "Arn": stream,
                "KinesisParameters": {"PartitionKeyPath": "$.detail.eventBody.conversationId"},
            }
        ],
    )
    event, body = event_body()

    delivery = redeliver(redeliverer, event, body, target_arn=stream, rule_arn=rule_arn)

    record = read_record(settings, stream, delivery.detail)
    assert record["PartitionKey"] == event["detail"]["eventBody"]["conversationId"]
    assert record["Data"] == body.encode()


def test_a_kinesis_target_without_partition_key_path_is_keyed_by_the_event_id(
    settings, redeliverer, unique
):
    stream = new_stream(settings, f"crm-{unique}")
    rule_arn = new_rule(
        settings, new_bus(settings, unique), f"crm-sync-{unique}", [{"Id": "s", "Arn": stream}]
    )
    event, body = event_body()

    delivery = redeliver(redeliverer, event, body, target_arn=stream, rule_arn=rule_arn)

    assert read_record(settings, stream, delivery.detail)["PartitionKey"] == event["id"]


# --- the rule's check ---------------------------------------------------------------------


def test_a_target_arn_the_rule_does_not_list_is_refused_and_nothing_is_sent(
    settings, redeliverer, unique
):
    listed_url, listed = new_queue(settings, f"crm-{unique}")
    other_url, other = new_queue(settings, f"elsewhere-{unique}")
    rule_arn = new_rule(
        settings, new_bus(settings, unique), f"crm-sync-{unique}", [{"Id": "crm", "Arn": listed}]
    )
    event, body = event_body()

    with pytest.raises(RuleTargetError) as refused:
        redeliver(redeliverer, event, body, target_arn=other, rule_arn=rule_arn)

    assert refused.value.code == "NotARuleTarget"
    assert isinstance(refused.value, GiveUp)
    assert refused.value.target_arn == other
    assert rule_arn in str(refused.value) and "REPLAY_TARGET_OVERRIDES" in str(refused.value)
    assert receive_all(settings, other_url) == []
    assert receive_all(settings, listed_url) == []


def test_a_rule_that_no_longer_exists_is_refused_as_rule_not_found(settings, redeliverer, unique):
    url, queue = new_queue(settings, f"crm-{unique}")
    bus = new_bus(settings, unique)
    name = f"crm-sync-{unique}"
    rule_arn = new_rule(settings, bus, name, [{"Id": "crm", "Arn": queue}])
    events = client("events", settings)
    events.remove_targets(Rule=name, EventBusName=bus, Ids=["crm"])
    events.delete_rule(Name=name, EventBusName=bus)
    event, body = event_body()

    with pytest.raises(RuleTargetError) as refused:
        redeliver(redeliverer, event, body, target_arn=queue, rule_arn=rule_arn)

    assert refused.value.code == "RuleNotFound"
    assert isinstance(refused.value, GiveUp)
    assert receive_all(settings, url) == []


def test_a_backlog_for_a_gone_rule_costs_one_lookup(settings, redeliverer, redis_client, unique):
    _, queue = new_queue(settings, f"crm-{unique}")
    rule_arn = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{new_bus(settings, unique)}/gone-{unique}"

    for _ in range(5):
        event, body = event_body()
        with pytest.raises(RuleTargetError, match="no longer exists"):
            redeliver(redeliverer, event, body, target_arn=queue, rule_arn=rule_arn)

    assert lookups(redis_client, rule_arn) == 1


def test_a_message_without_rule_arn_is_refused_as_no_rule(settings, redeliverer, unique):
    url, queue = new_queue(settings, f"crm-{unique}")
    event, body = event_body()

    with pytest.raises(RuleTargetError) as refused:
        redeliver(redeliverer, event, body, target_arn=queue, rule_arn="")

    assert refused.value.code == "NoRule"
    assert isinstance(refused.value, GiveUp)
    assert receive_all(settings, url) == []


def test_checking_the_rule_without_redis_is_a_configuration_error(settings, unique):
    _, queue = new_queue(settings, f"crm-{unique}")
    rule_arn = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/crm-sync-{unique}"

    with pytest.raises(ConfigurationError, match="REDIS_URL"):
        Redeliverer(settings).redeliver(
            target_arn=queue, rule_arn=rule_arn, event_id="e-1", body="{}"
        )


# --- one lookup per rule for the fleet ----------------------------------------------------


def two_rules(settings: Settings, unique: str) -> list[tuple[str, str, str]]:
    """Two rules with one queue each: (rule ARN, queue URL, queue ARN)."""
    bus = new_bus(settings, unique)
    out = []
    for name in ("crm", "wfm"):
        url, queue = new_queue(settings, f"{name}-{unique}")
        out.append(
            (new_rule(settings, bus, f"{name}-{unique}", [{"Id": name, "Arn": queue}]), url, queue)
        )
    return out


def test_one_redeliverer_looks_each_rule_up_once_for_twenty_events(
    settings, redeliverer, redis_client, unique
):
    rules = two_rules(settings, unique)

    for index in range(20):
        rule_arn, _, queue = rules[index % 2]
        event, body = event_body()
        redeliver(redeliverer, event, body, target_arn=queue, rule_arn=rule_arn)

    assert [lookups(redis_client, rule_arn) for rule_arn, _, _ in rules] == [1, 1]
    assert [len(receive_all(settings, url)) for _, url, _ in rules] == [10, 10]


def test_two_workers_sharing_redis_look_each_rule_up_once_for_twenty_events(
    settings, redis_client, redis_url, unique
):
    rules = two_rules(settings, unique)
    # Two workers: each its own Redeliverer, boto3 clients and Redis connection.
    workers = [Redeliverer(settings, cache=redis.Redis.from_url(redis_url)) for _ in range(2)]

    for index in range(20):
        rule_arn, _, queue = rules[index % 2]
        event, body = event_body()
        redeliver(workers[(index // 2) % 2], event, body, target_arn=queue, rule_arn=rule_arn)

    assert [lookups(redis_client, rule_arn) for rule_arn, _, _ in rules] == [1, 1]
    assert [len(receive_all(settings, url)) for _, url, _ in rules] == [10, 10]


def test_a_worker_whose_miss_another_worker_filled_meanwhile_does_not_look_up_again(
    settings, redis_client, redis_url, unique
):
    # Seen with 4 workers x 4 threads on one rule: now and then 2 lookups, not 1. This is
    # that interleaving made certain: worker B misses the cache, then worker A's whole
    # lookup runs (fill claimed, listing cached, claim released), then B claims the fill.
    url, queue = new_queue(settings, f"crm-{unique}")
    rule_arn = new_rule(
        settings, new_bus(settings, unique), f"crm-sync-{unique}", [{"Id": "crm", "Arn": queue}]
    )
    worker_a = Redeliverer(settings, cache=redis.Redis.from_url(redis_url))
    interleaved: list[str] = []

    class ClaimsLate(redis.Redis):
        """Worker B's Redis: worker A fills the rule just before B's claim reaches Redis."""

        def set(self, name, value, *args, **kwargs):  # type: ignore[override]
            if kwargs.get("nx") and str(name).startswith(FILL_PREFIX) and not interleaved:
                interleaved.append(str(name))
                assert worker_a.rules is not None
                worker_a.rules.targets(rule_arn)
            return super().set(name, value, *args, **kwargs)

    worker_b = Redeliverer(settings, cache=ClaimsLate.from_url(redis_url))
    event, body = event_body()

    redeliver(worker_b, event, body, target_arn=queue, rule_arn=rule_arn)

    assert interleaved == [FILL_PREFIX + rule_arn]  # the interleaving happened
    assert [m["Body"] for m in receive_all(settings, url)] == [body]
    assert lookups(redis_client, rule_arn) == 1


def test_a_target_read_from_the_fleet_cache_is_sent_as_the_rule_says(
    settings, redis_client, redis_url, unique
):
    url, queue = new_queue(settings, f"crm-{unique}.fifo")
    rule_arn = new_rule(
        settings,
        new_bus(settings, unique),
        f"crm-sync-{unique}",
        [
            {
                "Id": "crm",
                "Arn": queue,
                "SqsParameters": {"MessageGroupId": "crm-sync"},
                "InputTransformer": {
                    "InputPathsMap": {"conversation": "$.detail.eventBody.conversationId"},
                    "InputTemplate": '{"conversation": <conversation>}',
                },
            }
        ],
    )
    first, second = (Redeliverer(settings, cache=redis.Redis.from_url(redis_url)) for _ in range(2))
    events = [event_body() for _ in range(2)]

    redeliver(first, *events[0], target_arn=queue, rule_arn=rule_arn)
    delivery = redeliver(second, *events[1], target_arn=queue, rule_arn=rule_arn)  # from Redis

    assert lookups(redis_client, rule_arn) == 1
    messages = receive_all(settings, url)
    assert [m["Body"] for m in messages] == [
        f'{{"conversation": "{event["detail"]["eventBody"]["conversationId"]}"}}'
        for event, _ in events
    ]
    assert [m["Attributes"]["MessageGroupId"] for m in messages] == ["crm-sync", "crm-sync"]
    assert delivery.transformed is True


def test_a_rules_new_target_is_seen_once_its_cached_listing_expires(
    settings, make_settings, redis_client, unique
):
    _, first = new_queue(settings, f"crm-{unique}")
    url, added = new_queue(settings, f"wfm-{unique}")
    bus, name = new_bus(settings, unique), f"crm-sync-{unique}"
    rule_arn = new_rule(settings, bus, name, [{"Id": "crm", "Arn": first}])
    redeliverer = Redeliverer(
        make_settings(aws_region=REGION, replay_rule_cache_seconds=1), cache=redis_client
    )
    event, body = event_body()
    with pytest.raises(RuleTargetError, match="is not a target"):
        redeliver(redeliverer, event, body, target_arn=added, rule_arn=rule_arn)
    client("events", settings).put_targets(
        Rule=name, EventBusName=bus, Targets=[{"Id": "wfm", "Arn": added}]
    )
    with pytest.raises(RuleTargetError, match="is not a target"):  # still the cached listing
        redeliver(redeliverer, event, body, target_arn=added, rule_arn=rule_arn)

    eventually(
        lambda: redis_client.get(CACHE_PREFIX + rule_arn) is None,
        timeout=5,
        what="the cached listing expires",
    )
    redeliver(redeliverer, event, body, target_arn=added, rule_arn=rule_arn)

    assert [m["Body"] for m in receive_all(settings, url)] == [body]
    assert lookups(redis_client, rule_arn) == 2


def test_one_event_under_two_rules_sharing_a_target_is_delivered_once_per_rule(
    settings, redeliverer, unique
):
    url, queue = new_queue(settings, f"crm-{unique}.fifo")
    bus = new_bus(settings, unique)
    target = {"Id": "crm", "Arn": queue, "SqsParameters": {"MessageGroupId": "crm"}}
    rule_arns = [new_rule(settings, bus, f"{name}-{unique}", [target]) for name in ("ended", "all")]
    event, body = event_body()

    deliveries = [
        redeliver(redeliverer, event, body, target_arn=queue, rule_arn=rule_arn)
        for rule_arn in rule_arns * 2  # each rule twice: the repeat is the same delivery
    ]

    messages = receive_all(settings, url)
    assert [m["Body"] for m in messages] == [body, body]
    dedup_ids = {m["Attributes"]["MessageDeduplicationId"] for m in messages}
    assert len(dedup_ids) == 2
    assert [d.route for d in deliveries] == ["rule"] * 4


# --- routes without the rule's check --------------------------------------------------------


def test_a_trusted_target_arn_that_no_rule_lists_is_delivered_unchanged(
    settings, make_settings, redis_client, unique
):
    url, queue = new_queue(settings, f"crm-{unique}")
    _, listed = new_queue(settings, f"listed-{unique}")
    rule_arn = new_rule(
        settings,
        new_bus(settings, unique),
        f"crm-sync-{unique}",
        [{"Id": "listed", "Arn": listed, "Input": '{"constant": true}'}],
    )
    trusting = Redeliverer(
        make_settings(aws_region=REGION, replay_trust_target_arn=True), cache=redis_client
    )
    event, body = event_body()

    delivery = redeliver(trusting, event, body, target_arn=queue, rule_arn=rule_arn)

    assert [m["Body"] for m in receive_all(settings, url)] == [body]
    assert delivery.route == "trusted"
    assert delivery.transformed is False
    assert lookups(redis_client, rule_arn) == 0


def test_an_override_argument_routes_elsewhere_without_the_rules_check(
    settings, redeliverer, redis_client, unique
):
    missed_url, missed = new_queue(settings, f"old-{unique}")
    url, other = new_queue(settings, f"new-{unique}")
    rule_arn = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/crm-sync-{unique}"  # no such rule
    event, body = event_body()

    delivery = redeliver(
        redeliverer, event, body, target_arn=missed, rule_arn=rule_arn, override=other
    )

    assert [m["Body"] for m in receive_all(settings, url)] == [body]
    assert receive_all(settings, missed_url) == []
    assert (delivery.target_arn, delivery.delivered_to, delivery.route) == (
        missed,
        other,
        "override",
    )
    assert delivery.transformed is False
    assert lookups(redis_client, rule_arn) == 0


def test_an_override_setting_routes_elsewhere_without_the_rules_check(
    settings, make_settings, redis_client, unique
):
    missed_url, missed = new_queue(settings, f"old-{unique}")
    url, other = new_queue(settings, f"new-{unique}")
    _, listed = new_queue(settings, f"listed-{unique}")
    rule_arn = new_rule(
        settings, new_bus(settings, unique), f"crm-sync-{unique}", [{"Id": "l", "Arn": listed}]
    )
    redeliverer = Redeliverer(
        make_settings(aws_region=REGION, replay_target_overrides={missed: other}),
        cache=redis_client,
    )
    event, body = event_body()

    delivery = redeliver(redeliverer, event, body, target_arn=missed, rule_arn=rule_arn)

    assert [m["Body"] for m in receive_all(settings, url)] == [body]
    assert receive_all(settings, missed_url) == []
    assert (delivery.delivered_to, delivery.route) == (other, "override")
    assert lookups(redis_client, rule_arn) == 0


# --- API destinations -----------------------------------------------------------------------


@dataclass
class Sink:
    """A local HTTP endpoint that records every request and answers `status`."""

    status: int = 200
    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""


@pytest.fixture()
def sink() -> Iterator[Sink]:
    script = Sink()

    class Handler(BaseHTTPRequestHandler):
        def answer(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            script.requests.append(
                (self.command, self.path, dict(self.headers), self.rfile.read(length))
            )
            self.send_response(script.status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        do_PUT = do_POST = answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    script.url = f"http://127.0.0.1:{server.server_port}"
    yield script
    server.shutdown()
    server.server_close()


def new_destination(
    settings: Settings, sink: Sink, unique: str, *, auth: str, parameters: dict[str, Any]
) -> str:
    """A connection and an API destination (PUT to the sink's `/hooks/*`); its ARN."""
    events = client("events", settings)
    connection = events.create_connection(
        Name=f"crm-{unique}", AuthorizationType=auth, AuthParameters=parameters
    )["ConnectionArn"]
    return str(
        events.create_api_destination(
            Name=f"crm-{unique}",
            ConnectionArn=connection,
            InvocationEndpoint=f"{sink.url}/hooks/*",
            HttpMethod="PUT",
            InvocationRateLimitPerSecond=5,
        )["ApiDestinationArn"]
    )


def destination_rule(settings: Settings, unique: str, destination: str) -> str:
    return new_rule(
        settings,
        new_bus(settings, unique),
        f"crm-sync-{unique}",
        [
            {
                "Id": "crm",
                "Arn": destination,
                "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/invoke-api-destination",
                "InputTransformer": {
                    "InputPathsMap": {"conversation": "$.detail.eventBody.conversationId"},
                    "InputTemplate": '{"conversation": <conversation>}',
                },
                "HttpParameters": {
                    "PathParameterValues": ["crm"],
                    "HeaderParameters": {"X-Team": "crm-sync"},
                    "QueryStringParameters": {"source": "genesys"},
                },
            }
        ],
    )


def api_key(secret: str) -> dict[str, Any]:
    return {"ApiKeyAuthParameters": {"ApiKeyName": "x-api-key", "ApiKeyValue": secret}}


@pytest.fixture()
def quiet_sdk_loggers() -> Iterator[None]:
    """The SDK's own loggers at WARNING, as `dlq.logs.configure_logging` sets them in every
    process: botocore's DEBUG lines print response bodies (GetSecretValue's too)."""
    saved = {name: logging.getLogger(name).level for name in ("botocore", "boto3", "urllib3")}
    for name in saved:
        logging.getLogger(name).setLevel(logging.WARNING)
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def records_text(caplog: pytest.LogCaptureFixture) -> str:
    """Every captured record's message, arguments and extra fields, as text."""
    return (
        "\n".join(f"{record.getMessage()} {record.__dict__!r}" for record in caplog.records)
        + caplog.text
    )


def test_an_api_destination_gets_the_transformed_put_with_its_key_and_parameters(
    settings, redeliverer, sink, unique
):
    secret = f"key-{uuid.uuid4().hex}"
    destination = new_destination(
        settings, sink, unique, auth="API_KEY", parameters=api_key(secret)
    )
    rule_arn = destination_rule(settings, unique, destination)
    event, body = event_body()

    delivery = redeliver(redeliverer, event, body, target_arn=destination, rule_arn=rule_arn)

    [(method, path, headers, payload)] = sink.requests
    assert method == "PUT"
    assert urlsplit(path).path == "/hooks/crm"
    assert parse_qs(urlsplit(path).query) == {"source": ["genesys"]}
    conversation = event["detail"]["eventBody"]["conversationId"]
    assert payload == f'{{"conversation": "{conversation}"}}'.encode()
    assert headers["x-api-key"] == secret
    assert headers["X-Team"] == "crm-sync"
    assert (delivery.kind, delivery.route, delivery.transformed) == (
        "api-destination",
        "rule",
        True,
    )


def test_an_api_keys_secret_appears_in_no_log_record_nor_receipt(
    settings, redeliverer, sink, unique, caplog, quiet_sdk_loggers
):
    secret = f"key-{uuid.uuid4().hex}"
    destination = new_destination(
        settings, sink, unique, auth="API_KEY", parameters=api_key(secret)
    )
    rule_arn = destination_rule(settings, unique, destination)
    event, body = event_body()
    caplog.set_level(logging.DEBUG)

    delivery = redeliver(redeliverer, event, body, target_arn=destination, rule_arn=rule_arn)

    assert sink.requests[0][2]["x-api-key"] == secret  # it was sent: the check below can fail
    assert secret not in records_text(caplog)
    assert secret not in repr(delivery)
    assert secret not in repr(
        redeliverer.connections.credentials(
            redeliverer.connections.destination(destination).connection_arn
        )
    )


def test_an_api_keys_secret_appears_in_no_error_of_a_refused_call(
    settings, redeliverer, sink, unique, caplog, quiet_sdk_loggers
):
    sink.status = 401
    secret = f"key-{uuid.uuid4().hex}"
    destination = new_destination(
        settings, sink, unique, auth="API_KEY", parameters=api_key(secret)
    )
    rule_arn = destination_rule(settings, unique, destination)
    event, body = event_body()
    caplog.set_level(logging.DEBUG)

    with pytest.raises(TargetForbidden) as refused:
        redeliver(redeliverer, event, body, target_arn=destination, rule_arn=rule_arn)

    assert sink.requests[0][2]["x-api-key"] == secret
    told = "".join(traceback.format_exception(refused.value))
    assert secret not in told + repr(refused.value) + repr(refused.value.__dict__)
    assert secret not in records_text(caplog)


def test_a_basic_auth_connection_sends_basic_authorization(settings, redeliverer, sink, unique):
    password = f"pw-{uuid.uuid4().hex}"
    destination = new_destination(
        settings,
        sink,
        unique,
        auth="BASIC",
        parameters={"BasicAuthParameters": {"Username": "crm-sync", "Password": password}},
    )
    rule_arn = destination_rule(settings, unique, destination)
    event, body = event_body()

    redeliver(redeliverer, event, body, target_arn=destination, rule_arn=rule_arn)

    [(_, _, headers, _)] = sink.requests
    expected = base64.b64encode(f"crm-sync:{password}".encode()).decode()
    assert headers["Authorization"] == f"Basic {expected}"


# --- targets that cannot be replayed, and EventBridge refusing us ---------------------------


def test_an_event_bus_target_of_a_rule_is_refused_without_the_opt_in(settings, redeliverer, unique):
    events = client("events", settings)
    target_bus = events.create_event_bus(Name=f"x-{unique}")["EventBusArn"]
    rule_arn = new_rule(
        settings,
        new_bus(settings, unique),
        f"forward-{unique}",
        [{"Id": "bus", "Arn": target_bus, "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/put-events"}],
    )
    event, body = event_body()

    with pytest.raises(UnsupportedTarget, match="REPLAY_EVENT_BUS_SOURCE") as refused:
        redeliver(redeliverer, event, body, target_arn=target_bus, rule_arn=rule_arn)

    assert refused.value.code == "EventBusNotReplayable"
    assert isinstance(refused.value, GiveUp)


class Events:
    """An EventBridge client double: `list_targets_by_rule` answers `pages` in turn, or
    raises `error`; every call's arguments are kept."""

    def __init__(
        self, *, pages: list[dict[str, Any]] | None = None, error: Exception | None = None
    ):
        self.pages = pages or []
        self.error = error
        self.calls: list[dict[str, Any]] = []

    def list_targets_by_rule(self, **arguments: Any) -> dict[str, Any]:
        self.calls.append(arguments)
        if self.error is not None:
            raise self.error
        return self.pages[len(self.calls) - 1]


def test_access_denied_on_list_targets_by_rule_is_a_configuration_error(redis_client, unique):
    denied = ClientError(
        {"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}},
        "ListTargetsByRule",
    )
    events = Events(error=denied)
    book = RuleBook(lambda region: events, redis_client)
    rule_arn = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/crm-sync-{unique}"
    queue = f"arn:aws:sqs:{REGION}:{ACCOUNT}:crm-{unique}"

    for _ in range(2):  # a denial is not cached: the next message asks again
        with pytest.raises(ConfigurationError, match="events:ListTargetsByRule"):
            book.target(rule_arn, queue)

    assert len(events.calls) == 2
    assert redis_client.get(CACHE_PREFIX + rule_arn) is None
    assert redis_client.get(FILL_PREFIX + rule_arn) is None


def test_a_target_on_the_second_page_of_a_rules_listing_is_found(
    settings, redeliverer, redis_client, unique
):
    # moto answers ListTargetsByRule 50 targets a page (and, unlike EventBridge, allows
    # more than 5 targets a rule), so 55 targets make two pages.
    url, queue = new_queue(settings, f"crm-{unique}")
    targets = [
        {"Id": f"t{index}", "Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:other-{index}-{unique}"}
        for index in range(54)
    ]
    rule_arn = new_rule(
        settings,
        new_bus(settings, unique),
        f"crm-sync-{unique}",
        [*targets, {"Id": "crm", "Arn": queue, "Input": '{"page": 2}'}],
    )
    event, body = event_body()

    redeliver(redeliverer, event, body, target_arn=queue, rule_arn=rule_arn)

    assert [m["Body"] for m in receive_all(settings, url)] == ['{"page": 2}']
    assert lookups(redis_client, rule_arn) == 1


def test_a_rules_listing_follows_next_token_to_the_last_page(redis_client, unique):
    first = f"arn:aws:sqs:{REGION}:{ACCOUNT}:crm-{unique}"
    second = f"arn:aws:sqs:{REGION}:{ACCOUNT}:wfm-{unique}"
    events = Events(
        pages=[
            {"Targets": [{"Id": "crm", "Arn": first}], "NextToken": "page-2"},
            {"Targets": [{"Id": "wfm", "Arn": second, "Input": "{}"}]},
        ]
    )
    book = RuleBook(lambda region: events, redis_client)
    rule_arn = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/genesys-{unique}/crm-sync"

    found = book.target(rule_arn, second)

    assert (found.arn, found.target_id, found.input.input) == (second, "wfm", "{}")
    assert events.calls == [
        {"Rule": "crm-sync", "EventBusName": f"genesys-{unique}"},
        {"Rule": "crm-sync", "EventBusName": f"genesys-{unique}", "NextToken": "page-2"},
    ]
    assert [t.arn for t in book.targets(rule_arn) or []] == [first, second]
    assert lookups(redis_client, rule_arn) == 1


# --- which rule an ARN names ------------------------------------------------------------------


def test_a_partner_bus_rule_arn_names_the_partner_bus_and_the_rule():
    org = "5b1f0d2e-8c34-4e1a-9a77-2d6c0e9f4b13"
    bus = f"aws.partner/genesys.com/cloud/{org}/crm"

    rule = RuleRef.parse(f"arn:aws:events:eu-west-1:{ACCOUNT}:rule/{bus}/crm-sync")

    assert rule is not None
    assert (rule.region, rule.bus, rule.name) == ("eu-west-1", bus, "crm-sync")


def test_a_default_bus_rule_arn_names_the_default_bus():
    rule = RuleRef.parse(f"arn:aws:events:{REGION}:{ACCOUNT}:rule/crm-sync")

    assert rule is not None
    assert (rule.bus, rule.name) == ("default", "crm-sync")


@pytest.mark.parametrize(
    "arn",
    [
        "",
        "crm-sync",
        f"arn:aws:sqs:{REGION}:{ACCOUNT}:crm",
        f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default",
        f"arn:aws:events:{REGION}:{ACCOUNT}:rule/",
        f"arn:aws:events:{REGION}:{ACCOUNT}:rule/bus/",
    ],
)
def test_an_arn_that_names_no_rule_parses_to_none(arn):
    assert RuleRef.parse(arn) is None
