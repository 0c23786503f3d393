"""What a kind of target is: how its ARN looks, which client it needs, how to send to it.

Each kind lives in a module of its own (`awslambda`, `sqs`, ...) and declares one
`TargetKind`; `registry` collects them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import requests

from dlq.settings import Settings
from dlq.targets.delivery import Replay
from dlq.targets.queue_urls import QueueUrls

if TYPE_CHECKING:
    from dlq.targets.apidestination import Connections


class SendContext(Protocol):
    """What a kind's `send` may use: the settings, a client for the target, shared caches."""

    @property
    def settings(self) -> Settings: ...

    @property
    def http(self) -> requests.Session: ...

    @property
    def queue_urls(self) -> QueueUrls: ...

    def client(self, service: str, target_arn: str) -> Any:
        """The boto3 client of `service` in the region `target_arn` names."""
        ...

    def remember(self, key: str, compute: Callable[[], str]) -> str:
        """`compute()`, kept for this process for a few minutes (a target's settings)."""
        ...

    @property
    def connections(self) -> Connections:
        """API destinations and their connections' credentials, cached."""
        ...

    def rate_gate(self, key: str, *, per_second: int) -> float:
        """Take a slot of a fleet-wide `per_second` rate (0.0), or learn the wait."""
        ...


Send = Callable[[SendContext, Replay], str]


def with_client(service: str, send: Callable[[Any, Replay], str]) -> Send:
    """A `send` that needs nothing but the boto3 client of `service` for the target."""
    return lambda context, replay: send(context.client(service, replay.delivered_to), replay)


@dataclass(frozen=True, slots=True)
class TargetKind:
    """One kind of target.

    `arn_service` and `resource_prefix` recognise its ARNs (`arn:aws:<service>:...:<prefix>`);
    a kind without `arn_service` is chosen by configuration only (HTTP endpoints).
    `send` makes one delivery (asking the context for the boto3 client it needs) and
    answers the target's receipt (a message id, an execution ARN...).
    """

    name: str
    label: str
    send: Send
    arn_service: str | None = None
    resource_prefix: str = ""
