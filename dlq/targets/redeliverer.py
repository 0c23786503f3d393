"""The Redeliverer: routes an event to the target that missed it and sends it there once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import requests
from botocore.exceptions import BotoCoreError, ClientError

from dlq.aws import aws_client
from dlq.settings import Settings
from dlq.targets import aws
from dlq.targets.arn import Arn, target_kind
from dlq.targets.delivery import Delivery, Replay
from dlq.targets.errors import (
    TargetMissing,
    UnsupportedTarget,
    from_botocore_error,
    from_client_error,
)
from dlq.targets.http import new_session, post_event

#: boto3 service of each AWS kind of target.
_SERVICE = {
    "lambda": "lambda",
    "sqs": "sqs",
    "sns": "sns",
    "states": "stepfunctions",
    "kinesis": "kinesis",
    "firehose": "firehose",
    "events": "events",
}

ClientFactory = Callable[[str, str], Any]


class Redeliverer:
    """Redelivers events to their targets; one per worker process, shared by its threads.

    `client_factory(service, region)` builds a boto3 client (default: `dlq.aws.aws_client`
    for that region); clients are built on first use and kept, one per (service, region),
    since a target's region comes from its ARN.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        client_factory: ClientFactory | None = None,
        http: requests.Session | None = None,
    ) -> None:
        self._settings = settings
        self._factory = client_factory or self._default_client
        self._http = http or new_session()
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self._queue_urls = aws.QueueUrls()

    def route(self, target_arn: str) -> tuple[str, str]:
        """Where an event for `target_arn` goes, and the kind of that place.

        REPLAY_TARGET_OVERRIDES applies first (one hop, no chains); then an ARN listed in
        REPLAY_HTTP_TARGETS is an HTTP endpoint; else the ARN's own service decides.
        Raises `UnsupportedTarget` for anything else.
        """
        destination = self._settings.replay_target_overrides.get(target_arn, target_arn)
        try:
            return destination, target_kind(
                destination, http_targets=self._settings.replay_http_targets.keys()
            )
        except UnsupportedTarget as error:
            if destination == target_arn:
                raise
            raise UnsupportedTarget(
                f"REPLAY_TARGET_OVERRIDES routes {target_arn!r} elsewhere, but {error}",
                target_arn=destination,
                code=error.code,
            ) from None

    def redeliver(
        self, *, target_arn: str, event_id: str, body: str, conversation_id: str | None = None
    ) -> Delivery:
        """Send `body` (the DLQ message body, unchanged) to the target that missed it.

        Raises a `TargetError`: `RetryLater` subclasses when another attempt may pass,
        `GiveUp` subclasses when none will; `ConfigurationError` without AWS credentials.
        """
        delivered_to, kind = self.route(target_arn)
        replay = Replay(target_arn, delivered_to, event_id, body, conversation_id)
        try:
            detail = self._send(kind, replay)
        except ClientError as error:
            raise from_client_error(delivered_to, error) from error
        except BotoCoreError as error:
            raise from_botocore_error(delivered_to, error) from error
        return Delivery(target_arn=target_arn, delivered_to=delivered_to, kind=kind, detail=detail)

    def _send(self, kind: str, replay: Replay) -> str:
        if kind == "http":
            url = str(self._settings.replay_http_targets[replay.delivered_to])
            return post_event(self._http, url, replay)
        client = self._client(kind, replay.delivered_to)
        if kind == "lambda":
            return aws.invoke_lambda(client, replay)
        if kind == "sqs":
            return self._send_sqs(client, replay)
        if kind == "sns":
            return aws.publish_sns(client, replay)
        if kind == "states":
            return aws.start_execution(client, replay)
        if kind == "kinesis":
            return aws.put_kinesis(client, replay)
        if kind == "firehose":
            return aws.put_firehose(client, replay)
        return aws.put_bus_event(client, replay, source=self._settings.replay_event_bus_source)

    def _send_sqs(self, client: Any, replay: Replay) -> str:
        try:
            url = self._queue_urls.get(client, replay.delivered_to)
            return aws.send_sqs(client, url, replay)
        except ClientError as error:
            if isinstance(from_client_error(replay.delivered_to, error), TargetMissing):
                self._queue_urls.forget(replay.delivered_to)
            raise

    def _client(self, kind: str, target_arn: str) -> Any:
        arn = Arn.parse(target_arn)
        assert arn is not None  # route() accepted it
        key = (_SERVICE[kind], arn.region)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = self._factory(*key)
        return client

    def _default_client(self, service: str, region: str) -> Any:
        settings = self._settings
        if region != settings.aws_region:
            settings = settings.model_copy(update={"aws_region": region})
        return aws_client(service, settings)
