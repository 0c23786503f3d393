"""Firehose targets: the event as one record."""

from __future__ import annotations

from typing import Any

from dlq.targets.arn import Arn
from dlq.targets.delivery import Replay
from dlq.targets.kind import TargetKind, with_client


def put_firehose(client: Any, replay: Replay) -> str:
    """Put the payload as one record, as EventBridge does: no delimiter added."""
    arn = Arn.parse(replay.delivered_to)
    assert arn is not None  # routing accepted it as a delivery stream ARN
    response = client.put_record(DeliveryStreamName=arn.name, Record={"Data": replay.data})
    return str(response["RecordId"])


KIND = TargetKind(
    name="firehose",
    label="Firehose delivery streams",
    arn_service="firehose",
    resource_prefix="deliverystream/",
    send=with_client("firehose", put_firehose),
)
