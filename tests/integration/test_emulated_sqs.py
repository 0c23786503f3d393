"""The SQS of devstack's moto (`devstack.moto_atomic`) keeps what the ingest relies on:
within its visibility timeout a message goes to one receive, however many receive at once,
and a long poll (on the server) still waits for a message that comes while it waits."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter

import boto3
import pytest
from moto import mock_aws
from moto.sqs.models import Message, SQSBackend

from devstack.moto_atomic import atomic_receives
from dlq.aws import aws_client


@pytest.mark.parametrize("serialised", [True, False], ids=["devstack", "moto as is"])
def test_receivers_racing_through_a_slow_scan_each_get_a_message_once(serialised, monkeypatch):
    """moto in this process, its scan slowed between the visibility check and the mark, so
    that every receive overlaps another: moto as is hands one message to several of them
    (the parameter shows it), devstack's one-scan-at-a-time never does."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)  # moto in this process, not a server
    monkeypatch.setattr(SQSBackend, "receive_message", SQSBackend.receive_message)  # restored
    if serialised:
        atomic_receives()
    mark = Message.mark_received

    def slow_mark(self: Message, visibility_timeout: int | None = None) -> None:
        time.sleep(0.005)
        mark(self, visibility_timeout=visibility_timeout)

    monkeypatch.setattr(Message, "mark_received", slow_mark)
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="race")["QueueUrl"]
        bodies = [str(n) for n in range(40)]
        for start in range(0, len(bodies), 10):
            entries = [{"Id": b, "MessageBody": b} for b in bodies[start : start + 10]]
            sqs.send_message_batch(QueueUrl=url, Entries=entries)
        received: Counter[str] = Counter()
        lock = threading.Lock()

        def receive() -> None:
            while got := sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=300
            ).get("Messages", []):
                with lock:
                    received.update(m["Body"] for m in got)

        threads = [threading.Thread(target=receive) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)

    assert sorted(set(received)) == sorted(bodies)
    twice = {body for body, n in received.items() if n > 1}
    assert (twice == set()) is serialised, twice


def test_a_long_poll_gets_a_message_sent_while_it_waits(moto_server, make_settings):
    sqs = aws_client("sqs", make_settings())
    url = sqs.create_queue(QueueName=f"poll-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    threading.Timer(1.0, lambda: sqs.send_message(QueueUrl=url, MessageBody="late")).start()

    got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=10).get("Messages", [])

    assert [m["Body"] for m in got] == ["late"]  # sent a second after the poll began
