"""Redelivery to each kind of target, against moto's server and small local HTTP servers."""

from __future__ import annotations

import io
import json
import pickle
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ReadTimeoutError

from devstack.moto_server import MotoServer
from devstack.process import free_port
from dlq.aws import aws_client, target_client
from dlq.errors import GiveUp, RetryLater
from dlq.settings import Settings
from dlq.targets import (
    Redeliverer,
    TargetFailed,
    TargetForbidden,
    TargetMissing,
    TargetRejected,
    TargetThrottled,
    TargetUnavailable,
    UnsupportedTarget,
    classify,
    execution_name,
    target_kind,
)

#: moto's default account and the settings' region.
ACCOUNT = "123456789012"
REGION = "us-east-1"

#: A body with what a careless round trip would change: odd whitespace, escapes, non-ASCII.
ODD_BODY = (
    '{"version":"0", "id":"%s",\t"detail-type":"v2.detail.events.conversation.{id}.customer.end",'
    '\r\n  "source":"aws.partner/genesys.com/cloud/org/crm",  "time":"2026-11-20T14:09:47Z",'
    '"resources":[],"detail":{"topicName":"t","eventBody":{"name":"Zoë Ørsted 東京 🎧",'
    '"note":"a\\u00e9\\"b\\\\c"}},   "account":"111122223333"}  \n'
)


def odd_body(event_id: str) -> str:
    return ODD_BODY % event_id


@pytest.fixture()
def settings(moto_server: MotoServer, make_settings: Callable[..., Settings]) -> Settings:
    # These tests are about each kind's send; routing by the rule is test_routing.py's.
    return make_settings(aws_region=REGION, replay_trust_target_arn=True)


@pytest.fixture()
def redeliverer(settings: Settings) -> Redeliverer:
    return Redeliverer(settings)


def client(service: str, settings: Settings, region: str = REGION) -> Any:
    return aws_client(service, settings.model_copy(update={"aws_region": region}))


def new_queue(settings: Settings, name: str, region: str = REGION) -> tuple[str, str]:
    """A queue's URL and ARN."""
    sqs = client("sqs", settings, region)
    attributes = {"FifoQueue": "true"} if name.endswith(".fifo") else {}
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return url, f"arn:aws:sqs:{region}:{ACCOUNT}:{name}"


def receive_all(settings: Settings, url: str, region: str = REGION) -> list[dict[str, Any]]:
    response = client("sqs", settings, region).receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=0,
        MessageSystemAttributeNames=["All"],
    )
    return list(response.get("Messages", []))


# --- SQS ---------------------------------------------------------------------------------


def test_a_standard_queue_receives_the_body_byte_for_byte(settings, redeliverer, unique):
    url, arn = new_queue(settings, f"crm-{unique}")
    event_id = str(uuid.uuid4())

    delivery = redeliverer.redeliver(target_arn=arn, event_id=event_id, body=odd_body(event_id))

    [message] = receive_all(settings, url)
    assert message["Body"] == odd_body(event_id)
    assert (delivery.target_arn, delivery.delivered_to, delivery.kind) == (arn, arn, "sqs")
    assert delivery.detail == message["MessageId"]


def test_a_fifo_queue_gets_the_conversation_as_group_and_a_deduplication_id(
    settings, redeliverer, unique
):
    url, arn = new_queue(settings, f"crm-{unique}.fifo")
    event_id, conversation_id = str(uuid.uuid4()), str(uuid.uuid4())

    redeliverer.redeliver(
        target_arn=arn, event_id=event_id, body=odd_body(event_id), conversation_id=conversation_id
    )

    [message] = receive_all(settings, url)
    assert message["Body"] == odd_body(event_id)
    assert message["Attributes"]["MessageGroupId"] == conversation_id
    assert len(message["Attributes"]["MessageDeduplicationId"]) == 64


def test_a_fifo_queue_without_a_conversation_groups_by_event_id(settings, redeliverer, unique):
    url, arn = new_queue(settings, f"presence-{unique}.fifo")
    event_id = str(uuid.uuid4())

    redeliverer.redeliver(target_arn=arn, event_id=event_id, body="{}")

    [message] = receive_all(settings, url)
    assert message["Attributes"]["MessageGroupId"] == event_id


def test_redelivering_twice_to_a_fifo_queue_leaves_one_message(settings, redeliverer, unique):
    url, arn = new_queue(settings, f"crm-{unique}.fifo")
    event_id = str(uuid.uuid4())

    for _ in range(2):
        redeliverer.redeliver(target_arn=arn, event_id=event_id, body=odd_body(event_id))

    assert len(receive_all(settings, url)) == 1


def test_a_queue_in_another_region_is_reached_there(settings, redeliverer, unique):
    url, arn = new_queue(settings, f"crm-{unique}", region="eu-west-1")

    redeliverer.redeliver(target_arn=arn, event_id="e-1", body='{"a": 1}')

    assert [m["Body"] for m in receive_all(settings, url, region="eu-west-1")] == ['{"a": 1}']


def test_a_missing_queue_gives_up_as_target_missing(redeliverer, unique):
    arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:gone-{unique}"

    with pytest.raises(TargetMissing) as caught:
        redeliverer.redeliver(target_arn=arn, event_id="e-1", body="{}")

    assert isinstance(caught.value, GiveUp)
    assert caught.value.target_arn == arn
    assert "NonExistentQueue" in caught.value.code or "QueueDoesNotExist" in caught.value.code
    assert "REPLAY_TARGET_OVERRIDES" in str(caught.value)


def test_an_override_routes_the_event_to_the_other_queue(settings, make_settings, unique):
    _, missed = new_queue(settings, f"old-{unique}")
    url, other = new_queue(settings, f"new-{unique}")
    redeliverer = Redeliverer(
        make_settings(aws_region=REGION, replay_target_overrides={missed: other})
    )

    delivery = redeliverer.redeliver(target_arn=missed, event_id="e-1", body='{"x": 1}')

    assert (delivery.target_arn, delivery.delivered_to) == (missed, other)
    assert [m["Body"] for m in receive_all(settings, url)] == ['{"x": 1}']


# --- SNS ---------------------------------------------------------------------------------


def test_a_topic_delivers_the_body_to_its_raw_queue_subscriber(settings, redeliverer, unique):
    url, queue_arn = new_queue(settings, f"sub-{unique}")
    sns = client("sns", settings)
    topic_arn = sns.create_topic(Name=f"crm-{unique}")["TopicArn"]
    sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    event_id = str(uuid.uuid4())

    delivery = redeliverer.redeliver(
        target_arn=topic_arn, event_id=event_id, body=odd_body(event_id)
    )

    assert delivery.kind == "sns"
    assert [m["Body"] for m in receive_all(settings, url)] == [odd_body(event_id)]


def test_a_fifo_topic_gets_group_and_deduplication_ids(settings, redeliverer, unique):
    url, queue_arn = new_queue(settings, f"sub-{unique}.fifo")
    sns = client("sns", settings)
    topic = sns.create_topic(Name=f"crm-{unique}.fifo", Attributes={"FifoTopic": "true"})
    topic_arn = topic["TopicArn"]
    sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"RawMessageDelivery": "true"},
    )

    redeliverer.redeliver(target_arn=topic_arn, event_id="e-1", body="{}", conversation_id="c-1")

    [message] = receive_all(settings, url)
    assert message["Attributes"]["MessageGroupId"] == "c-1"


# --- Step Functions ----------------------------------------------------------------------


def new_state_machine(
    settings: Settings, name: str, machine_type: str = "STANDARD"
) -> tuple[Any, str]:
    sfn = client("stepfunctions", settings)
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
    arn = sfn.create_state_machine(
        name=name,
        definition=json.dumps(definition),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/sfn",
        type=machine_type,
    )["stateMachineArn"]
    return sfn, arn


def test_a_state_machine_starts_one_execution_for_two_redeliveries(settings, redeliverer, unique):
    sfn, arn = new_state_machine(settings, f"crm-{unique}")
    event_id = str(uuid.uuid4())

    first = redeliverer.redeliver(target_arn=arn, event_id=event_id, body=odd_body(event_id))
    second = redeliverer.redeliver(target_arn=arn, event_id=event_id, body=odd_body(event_id))

    [execution] = sfn.list_executions(stateMachineArn=arn)["executions"]
    assert execution["name"] == event_id
    assert first.detail == execution["executionArn"]
    assert second.detail is not None and second.detail.startswith(execution["executionArn"])
    described = sfn.describe_execution(executionArn=execution["executionArn"])
    assert described["input"] == odd_body(event_id)


def test_an_execution_that_already_ran_counts_as_delivered(settings, redeliverer, unique):
    sfn, arn = new_state_machine(settings, f"crm-{unique}")
    first = redeliverer.redeliver(target_arn=arn, event_id="e-1", body="{}")
    sfn.stop_execution(executionArn=first.detail)

    again = redeliverer.redeliver(target_arn=arn, event_id="e-1", body="{}")

    assert again.detail == f"{first.detail} (already started)"
    assert len(sfn.list_executions(stateMachineArn=arn)["executions"]) == 1


def test_an_express_machine_gets_a_new_execution_per_attempt(settings, redeliverer, unique):
    # EXPRESS machines reuse names at once, so "already exists" proves nothing there: the
    # ledger alone guards against a second start, and each attempt is a real start.
    sfn, arn = new_state_machine(settings, f"crm-{unique}", "EXPRESS")

    first = redeliverer.redeliver(target_arn=arn, event_id="e-1", body="{}")
    second = redeliverer.redeliver(target_arn=arn, event_id="e-1", body="{}")

    assert first.detail != second.detail
    assert "already started" not in (second.detail or "")
    names = {e["name"] for e in sfn.list_executions(stateMachineArn=arn)["executions"]}
    assert len(names) == 2 and all(name.startswith("e-1-") for name in names)


def test_a_machines_type_is_read_once_per_process(settings, unique):
    calls: list[str] = []

    def counting_factory(service: str, region: str) -> Any:
        built = target_client(service, settings.model_copy(update={"aws_region": region}))
        built.meta.events.register(
            "before-call.sfn.DescribeStateMachine", lambda **_: calls.append("describe")
        )
        return built

    _, arn = new_state_machine(settings, f"crm-{unique}")
    redeliverer = Redeliverer(settings, client_factory=counting_factory)

    for n in range(3):
        redeliverer.redeliver(target_arn=arn, event_id=f"e-{n}", body="{}")

    assert calls == ["describe"]


@pytest.mark.parametrize(
    ("event_id", "expected"),
    [
        ("0b0c4f8e-6f0e-4f55-9a8c-1f7a7a1e2b3c", "0b0c4f8e-6f0e-4f55-9a8c-1f7a7a1e2b3c"),
        ("a:b", "a-b-"),
        ("x" * 81, "x" * 63 + "-"),
    ],
)
def test_an_execution_name_is_the_event_id_made_valid(event_id, expected):
    name = execution_name(event_id)

    assert name.startswith(expected)
    assert len(name) <= 80
    assert name == execution_name(event_id)


# --- Kinesis and Firehose ----------------------------------------------------------------


def test_a_kinesis_stream_receives_the_body_as_one_record_keyed_by_the_event_id(
    settings, redeliverer, unique
):
    kinesis = client("kinesis", settings)
    name = f"crm-{unique}"
    kinesis.create_stream(StreamName=name, ShardCount=1)
    arn = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]

    delivery = redeliverer.redeliver(
        target_arn=arn, event_id="e-1", body=odd_body("e-1"), conversation_id="c-1"
    )

    shard_id = delivery.detail.split("/")[0]
    iterator = kinesis.get_shard_iterator(
        StreamName=name, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    [record] = kinesis.get_records(ShardIterator=iterator)["Records"]
    assert record["Data"] == odd_body("e-1").encode()
    # EventBridge's default partition key is the event id (PutTargets, KinesisParameters).
    assert record["PartitionKey"] == "e-1"


def test_a_firehose_stream_gets_the_body_as_eventbridge_sends_it(settings, redeliverer, unique):
    s3 = client("s3", settings)
    bucket = f"lake-{unique}"
    s3.create_bucket(Bucket=bucket)
    name = f"crm-{unique}"
    arn = client("firehose", settings).create_delivery_stream(
        DeliveryStreamName=name,
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": f"arn:aws:iam::{ACCOUNT}:role/firehose",
            "BucketARN": f"arn:aws:s3:::{bucket}",
        },
    )["DeliveryStreamARN"]

    redeliverer.redeliver(target_arn=arn, event_id="e-1", body=odd_body("e-1"))

    [item] = s3.list_objects_v2(Bucket=bucket)["Contents"]
    data = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
    assert data == odd_body("e-1").encode()  # no delimiter added, as EventBridge


# --- EventBridge bus ---------------------------------------------------------------------


@pytest.fixture()
def opted_in(settings: Settings) -> Redeliverer:
    """A Redeliverer whose operator opted in to re-sourcing events put on a bus."""
    return Redeliverer(settings.model_copy(update={"replay_event_bus_source": "dlq-replay.test"}))


def test_an_event_bus_target_is_refused_without_the_opt_in(settings, redeliverer, unique):
    bus_arn = client("events", settings).create_event_bus(Name=f"replay-{unique}")["EventBusArn"]

    with pytest.raises(UnsupportedTarget, match="REPLAY_EVENT_BUS_SOURCE") as refused:
        redeliverer.redeliver(target_arn=bus_arn, event_id="e-1", body=odd_body("e-1"))

    assert refused.value.code == "EventBusNotReplayable"
    assert isinstance(refused.value, GiveUp)


def test_an_event_bus_gets_the_event_under_the_replay_source(settings, opted_in, unique):
    redeliverer = opted_in
    source = redeliverer.options.event_bus_source
    url, queue_arn = new_queue(settings, f"bus-sub-{unique}")
    events = client("events", settings)
    bus_arn = events.create_event_bus(Name=f"replay-{unique}")["EventBusArn"]
    events.put_rule(
        Name="all",
        EventBusName=bus_arn,
        EventPattern=json.dumps({"source": [source]}),
    )
    events.put_targets(Rule="all", EventBusName=bus_arn, Targets=[{"Id": "q", "Arn": queue_arn}])
    original = json.loads(odd_body("e-1"))

    delivery = redeliverer.redeliver(target_arn=bus_arn, event_id="e-1", body=odd_body("e-1"))

    [message] = receive_all(settings, url)
    event = json.loads(message["Body"])
    assert event["source"] == source
    assert event["detail-type"] == original["detail-type"]
    assert event["detail"] == original["detail"]
    assert delivery.detail == f"{event['id']} (re-sourced as dlq-replay.test)"


def test_a_body_that_is_not_an_event_is_rejected_by_a_bus(settings, opted_in, unique):
    bus_arn = client("events", settings).create_event_bus(Name=f"replay-{unique}")["EventBusArn"]

    with pytest.raises(TargetRejected, match="detail-type"):
        opted_in.redeliver(target_arn=bus_arn, event_id="e-1", body="[1, 2]")


# --- Lambda ------------------------------------------------------------------------------


@pytest.fixture()
def lambda_without_docker(moto_server: MotoServer) -> Iterator[None]:
    """moto's Docker-free Lambda, which answers every invoke with the payload it was sent."""
    config_url = f"{moto_server.url}/moto-api/config"
    saved = requests.get(config_url, timeout=5).json()["lambda"]
    requests.post(config_url, json={"lambda": {"use_docker": False}}, timeout=5)
    yield
    requests.post(config_url, json={"lambda": saved}, timeout=5)


def new_function(settings: Settings, name: str) -> str:
    role = client("iam", settings).create_role(
        RoleName=f"fn-{name}", AssumeRolePolicyDocument="{}"
    )["Role"]["Arn"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("handler.py", "def handler(event, context):\n    return event\n")
    return str(
        client("lambda", settings).create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=role,
            Handler="handler.handler",
            Code={"ZipFile": archive.getvalue()},
        )["FunctionArn"]
    )


def test_a_function_is_invoked_asynchronously_as_eventbridge_does(
    settings, redeliverer, lambda_without_docker, unique
):
    arn = new_function(settings, f"crm-{unique}")

    delivery = redeliverer.redeliver(target_arn=f"{arn}:live", event_id="e-1", body="{}")

    assert delivery.kind == "lambda"
    assert delivery.delivered_to == f"{arn}:live"
    assert delivery.detail is not None and delivery.detail.startswith("StatusCode 202 (Event")


def test_a_function_can_be_invoked_synchronously_by_setting(
    settings, lambda_without_docker, unique
):
    arn = new_function(settings, f"crm-{unique}")
    synchronous = settings.model_copy(update={"replay_lambda_invocation_type": "RequestResponse"})

    delivery = Redeliverer(synchronous).redeliver(target_arn=arn, event_id="e-1", body="{}")

    assert delivery.detail is not None
    assert delivery.detail.startswith("StatusCode 200 (RequestResponse")


# --- errors answered by AWS, from a scripted endpoint ------------------------------------


@dataclass
class Scripted:
    """A local HTTP server answering every request with one scripted response."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"{}"
    delay: float = 0.0
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""


@pytest.fixture()
def scripted() -> Iterator[Scripted]:
    script = Scripted()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            script.requests.append((self.path, dict(self.headers), self.rfile.read(length)))
            time.sleep(script.delay)
            self.send_response(script.status)
            for name, value in script.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(script.body)))
            self.end_headers()
            self.wfile.write(script.body)

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


def redeliverer_against(url: str, settings: Settings) -> Redeliverer:
    """A Redeliverer whose boto3 clients talk to `url`, without botocore's own retries."""

    def factory(service: str, region: str) -> Any:
        config = Config(region_name=region, retries={"total_max_attempts": 1}, read_timeout=2)
        return boto3.session.Session().client(service, endpoint_url=url, config=config)

    return Redeliverer(settings, client_factory=factory)


FUNCTION = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:crm"


def test_a_function_error_is_retryable_and_quotes_the_function(settings, scripted):
    scripted.headers = {"X-Amz-Function-Error": "Unhandled", "X-Amz-Executed-Version": "7"}
    scripted.body = b'{"errorMessage": "CRM said no", "errorType": "Error"}'

    synchronous = settings.model_copy(update={"replay_lambda_invocation_type": "RequestResponse"})
    with pytest.raises(TargetFailed, match="CRM said no") as caught:
        redeliverer_against(scripted.url, synchronous).redeliver(
            target_arn=FUNCTION, event_id="e-1", body=odd_body("e-1")
        )

    assert isinstance(caught.value, RetryLater)
    assert caught.value.code == "FunctionError"
    [(_, headers, payload)] = scripted.requests
    assert payload == odd_body("e-1").encode()
    assert headers["X-Amz-Invocation-Type"] == "RequestResponse"


def test_a_function_slower_than_the_read_timeout_is_invoked_once_per_attempt(
    make_settings, scripted, monkeypatch
):
    # The production client (no client_factory): botocore's standard retry mode would
    # resend the Invoke on the read timeout, reaching the function up to three times.
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", scripted.url)
    scripted.delay = 0.8
    redeliverer = Redeliverer(
        make_settings(
            replay_send_read_timeout=0.2,
            replay_trust_target_arn=True,
            replay_lambda_invocation_type="RequestResponse",
        )
    )

    with pytest.raises(TargetUnavailable) as caught:
        redeliverer.redeliver(target_arn=FUNCTION, event_id="e-1", body="{}")

    assert isinstance(caught.value, RetryLater)
    time.sleep(1.0)  # a resend, had there been one, would have reached the server by now
    assert len(scripted.requests) == 1


def test_botocores_standard_retries_would_resend_a_slow_invoke(scripted, monkeypatch):
    # The premise of the test above, so that it can fail: the retry mode our own clients
    # keep (`aws_client`, for the ledger and the queues) resends an Invoke that is slow.
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", scripted.url)
    scripted.delay = 0.8
    config = Config(region_name=REGION, read_timeout=0.2, retries={"mode": "standard"})
    slow = boto3.session.Session().client("lambda", config=config)

    with pytest.raises(ReadTimeoutError):
        slow.invoke(FunctionName=FUNCTION, Payload=b"{}")

    time.sleep(1.0)
    assert len(scripted.requests) == 3


def test_a_throttled_function_is_retried_after_the_services_hint(settings, scripted):
    scripted.status = 429
    scripted.headers = {"x-amzn-ErrorType": "TooManyRequestsException", "Retry-After": "7"}
    scripted.body = b'{"message": "Rate exceeded", "Reason": "ConcurrentInvocationLimitExceeded"}'

    with pytest.raises(TargetThrottled) as caught:
        redeliverer_against(scripted.url, settings).redeliver(
            target_arn=FUNCTION, event_id="e-1", body="{}"
        )

    assert caught.value.retry_after == 7
    assert caught.value.code == "TooManyRequestsException"


def test_a_forbidden_function_gives_up_saying_to_grant_permission(settings, scripted):
    scripted.status = 403
    scripted.headers = {"x-amzn-ErrorType": "AccessDeniedException"}
    scripted.body = b'{"message": "not authorized to perform: lambda:InvokeFunction"}'

    with pytest.raises(TargetForbidden, match="grant"):
        redeliverer_against(scripted.url, settings).redeliver(
            target_arn=FUNCTION, event_id="e-1", body="{}"
        )


def test_an_unreachable_service_is_retryable(settings, unique):
    nobody_listens = f"http://127.0.0.1:{free_port()}"

    with pytest.raises(TargetUnavailable) as caught:
        redeliverer_against(nobody_listens, settings).redeliver(
            target_arn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:q-{unique}", event_id="e-1", body="{}"
        )

    assert caught.value.code == "EndpointConnectionError"


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("ThrottlingException", 400, TargetThrottled),
        ("ProvisionedThroughputExceededException", 400, TargetThrottled),
        ("KMSThrottlingException", 400, TargetThrottled),
        ("SlowDown", 503, TargetThrottled),
        ("ServiceUnavailable", 503, TargetUnavailable),
        ("ResourceConflictException", 409, TargetUnavailable),
        ("ResourceNotFoundException", 404, TargetMissing),
        ("AWS.SimpleQueueService.NonExistentQueue", 400, TargetMissing),
        ("NotFound", 404, TargetMissing),
        ("AccessDeniedException", 403, TargetForbidden),
        ("AuthorizationError", 403, TargetForbidden),
        ("KMSAccessDeniedException", 400, TargetForbidden),
        ("RequestTooLargeException", 413, TargetRejected),
        ("InvalidParameterValueException", 400, TargetRejected),
        ("SomethingNew", 400, TargetRejected),
        ("SomethingNew", 500, TargetUnavailable),
        ("SomethingNew", None, TargetUnavailable),
    ],
)
def test_an_aws_error_code_is_classified_by_what_the_worker_must_do(code, status, expected):
    error = classify("arn:aws:sqs:us-east-1:1:q", code, "said", status=status)

    assert type(error) is expected
    assert (error.target_arn, error.code) == ("arn:aws:sqs:us-east-1:1:q", code)


def test_a_target_error_survives_pickling():
    error = classify("arn:aws:sqs:us-east-1:1:q", "Throttling", "slow", retry_after=3)

    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 (our own bytes)

    assert (type(copy), str(copy), copy.retry_after, copy.code) == (
        TargetThrottled,
        str(error),
        3,
        "Throttling",
    )


# --- unsupported targets -----------------------------------------------------------------


@pytest.mark.parametrize(
    "arn",
    [
        f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/crm",
        f"arn:aws:batch:{REGION}:{ACCOUNT}:job-queue/crm",
        f"arn:aws:events:{REGION}:{ACCOUNT}:connection/crm/0b0c",
        f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:crm",
        "not-an-arn",
        "",
    ],
)
def test_an_unsupported_target_gives_up_saying_how_to_map_it(redeliverer, arn):
    with pytest.raises(UnsupportedTarget) as caught:
        redeliverer.redeliver(target_arn=arn, event_id="e-1", body="{}")

    assert isinstance(caught.value, GiveUp)
    message = str(caught.value)
    assert "REPLAY_TARGET_OVERRIDES" in message
    assert "REPLAY_HTTP_TARGETS" in message
    assert "SQS queues" in message


def test_an_override_to_an_unsupported_target_says_it_came_from_the_override(make_settings):
    missed = f"arn:aws:sqs:{REGION}:{ACCOUNT}:old"
    settings = make_settings(replay_target_overrides={missed: "arn:aws:ecs:x:1:cluster/y"})

    with pytest.raises(UnsupportedTarget, match="the override routes"):
        Redeliverer(settings).redeliver(target_arn=missed, event_id="e-1", body="{}")


@pytest.mark.parametrize(
    ("arn", "kind"),
    [
        (f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:crm", "lambda"),
        (f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:crm:live", "lambda"),
        (f"arn:aws:sqs:{REGION}:{ACCOUNT}:crm.fifo", "sqs"),
        (f"arn:aws:sns:{REGION}:{ACCOUNT}:crm", "sns"),
        (f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:crm", "states"),
        (f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/crm", "kinesis"),
        (f"arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/crm", "firehose"),
        (f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/crm", "events"),
        (f"arn:aws-us-gov:sqs:us-gov-west-1:{ACCOUNT}:crm", "sqs"),
    ],
)
def test_the_kind_of_a_target_comes_from_its_arn(arn, kind):
    assert target_kind(arn) == kind


def test_an_arn_listed_as_http_target_is_an_http_target():
    arn = f"arn:aws:events:{REGION}:{ACCOUNT}:api-destination/crm/0b0c"

    assert target_kind(arn, http_targets={arn}) == "http"


# --- HTTP endpoints ----------------------------------------------------------------------

API_DESTINATION = f"arn:aws:events:{REGION}:{ACCOUNT}:api-destination/crm/0b0c"


def http_redeliverer(
    make_settings: Callable[..., Settings], url: str, **overrides: object
) -> Redeliverer:
    settings = make_settings(
        replay_http_targets={API_DESTINATION: f"{url}/hooks/genesys?k=s"},
        replay_trust_target_arn=True,
        **overrides,
    )
    return Redeliverer(settings)


def test_an_http_endpoint_gets_the_body_with_idempotency_headers(make_settings, scripted):
    scripted.status = 202

    delivery = http_redeliverer(make_settings, scripted.url).redeliver(
        target_arn=API_DESTINATION, event_id="e-1", body=odd_body("e-1")
    )

    [(path, headers, payload)] = scripted.requests
    assert (path, payload) == ("/hooks/genesys?k=s", odd_body("e-1").encode())
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert headers["X-DLQ-Replay-Event-Id"] == "e-1"
    assert len(headers["Idempotency-Key"]) == 64
    assert (delivery.kind, delivery.detail) == (
        "http",
        f"HTTP 202 from {scripted.url}/hooks/genesys",
    )


def test_an_http_503_with_retry_after_is_retried_after_it(make_settings, scripted):
    scripted.status = 503
    scripted.headers = {"Retry-After": "30"}

    with pytest.raises(TargetUnavailable) as caught:
        http_redeliverer(make_settings, scripted.url).redeliver(
            target_arn=API_DESTINATION, event_id="e-1", body="{}"
        )

    assert (caught.value.retry_after, caught.value.code) == (30, "HTTP503")


def test_an_http_429_is_throttled_with_its_retry_after(make_settings, scripted):
    scripted.status = 429
    scripted.headers = {"Retry-After": "2"}

    with pytest.raises(TargetThrottled) as caught:
        http_redeliverer(make_settings, scripted.url).redeliver(
            target_arn=API_DESTINATION, event_id="e-1", body="{}"
        )

    assert caught.value.retry_after == 2


def test_an_http_400_gives_up(make_settings, scripted):
    scripted.status = 400
    scripted.body = b'{"error": "bad shape"}'

    with pytest.raises(TargetRejected, match="bad shape"):
        http_redeliverer(make_settings, scripted.url).redeliver(
            target_arn=API_DESTINATION, event_id="e-1", body="{}"
        )


def test_an_http_endpoint_that_does_not_answer_in_time_is_retryable(make_settings, scripted):
    scripted.delay = 0.6

    with pytest.raises(TargetUnavailable) as caught:
        http_redeliverer(make_settings, scripted.url, replay_send_read_timeout=0.2).redeliver(
            target_arn=API_DESTINATION, event_id="e-1", body="{}"
        )

    assert caught.value.code == "Timeout"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (408, TargetUnavailable),
        (425, TargetUnavailable),
        (500, TargetUnavailable),
        (401, TargetForbidden),
        (403, TargetForbidden),
        (404, TargetMissing),
        (302, TargetRejected),
        (422, TargetRejected),
    ],
)
def test_an_http_status_is_classified_by_what_the_worker_must_do(
    make_settings, scripted, status, expected
):
    scripted.status = status

    with pytest.raises(expected):
        http_redeliverer(make_settings, scripted.url).redeliver(
            target_arn=API_DESTINATION, event_id="e-1", body="{}"
        )


# --- one Redeliverer for a pool of threads -----------------------------------------------


def test_threads_share_one_client_per_service_and_region(settings, unique):
    url, arn = new_queue(settings, f"pool-{unique}")
    built: list[tuple[str, str]] = []

    def counting_factory(service: str, region: str) -> Any:
        built.append((service, region))
        time.sleep(0.05)  # widen the window in which two threads could both build one
        return client(service, settings, region)

    redeliverer = Redeliverer(settings, client_factory=counting_factory)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(
            pool.map(
                lambda n: redeliverer.redeliver(target_arn=arn, event_id=f"e-{n}", body=str(n)),
                range(16),
            )
        )

    assert built == [("sqs", REGION)]
    bodies: set[str] = set()
    while batch := receive_all(settings, url):
        bodies.update(m["Body"] for m in batch)
    assert bodies == {str(n) for n in range(16)}
