"""The Redeliverer: routes an event to the target that missed it and sends it there once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import requests
from botocore.exceptions import BotoCoreError, ClientError

from dlq.aws import target_client
from dlq.settings import Settings
from dlq.targets.arn import Arn
from dlq.targets.delivery import Delivery, Replay
from dlq.targets.errors import UnsupportedTarget, from_botocore_error, from_client_error
from dlq.targets.http import new_session
from dlq.targets.kind import TargetKind
from dlq.targets.queue_urls import QueueUrls
from dlq.targets.registry import kind_of

ClientFactory = Callable[[str, str], Any]

#: How long a target's looked-up settings (a state machine's type) are trusted.
REMEMBER_SECONDS = 300.0


class Redeliverer:
    """Redelivers events to their targets; one per worker process, shared by its threads.

    `client_factory(service, region)` builds a boto3 client (default: one try per send,
    `dlq.aws.target_client`, for that region); clients are built on first use and kept,
    one per (service, region), since a target's region comes from its ARN. It is also the
    `SendContext` each kind's `send` is given.
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
        self._queue_urls = QueueUrls()
        self._remembered: dict[str, tuple[float, str]] = {}

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def http(self) -> requests.Session:
        return self._http

    @property
    def queue_urls(self) -> QueueUrls:
        return self._queue_urls

    def route(self, target_arn: str) -> tuple[str, TargetKind]:
        """Where an event for `target_arn` goes, and the kind of that place.

        REPLAY_TARGET_OVERRIDES applies first (one hop, no chains); then an ARN listed in
        REPLAY_HTTP_TARGETS is an HTTP endpoint; else the ARN's own service decides.
        Raises `UnsupportedTarget` for anything else.
        """
        destination = self._settings.replay_target_overrides.get(target_arn, target_arn)
        try:
            return destination, kind_of(
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
            detail = kind.send(self, replay)
        except ClientError as error:
            raise from_client_error(delivered_to, error) from error
        except BotoCoreError as error:
            raise from_botocore_error(delivered_to, error) from error
        return Delivery(
            target_arn=target_arn, delivered_to=delivered_to, kind=kind.name, detail=detail
        )

    def client(self, service: str, target_arn: str) -> Any:
        """The boto3 client of `service` in `target_arn`'s region, built once."""
        arn = Arn.parse(target_arn)
        assert arn is not None  # route() accepted it
        key = (service, arn.region)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = self._factory(*key)
        return client

    def remember(self, key: str, compute: Callable[[], str]) -> str:
        """`compute()`, kept for this process for `REMEMBER_SECONDS` (shared by threads)."""
        now = time.monotonic()
        with self._lock:
            kept = self._remembered.get(key)
        if kept is not None and now - kept[0] < REMEMBER_SECONDS:
            return kept[1]
        value = compute()
        with self._lock:
            self._remembered[key] = (now, value)
        return value

    def _default_client(self, service: str, region: str) -> Any:
        settings = self._settings
        if region != settings.aws_region:
            settings = settings.model_copy(update={"aws_region": region})
        return target_client(service, settings)
