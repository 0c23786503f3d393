"""What a kind of target is: how its ARN looks, which client it needs, how to send to it.

Each kind lives in a module of its own (`awslambda`, `sqs`, ...) and declares one
`TargetKind`; `registry` collects them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import requests

from dlq.targets.connections import Connections
from dlq.targets.delivery import Replay
from dlq.targets.facts import TargetFacts
from dlq.targets.options import SendOptions


class SendContext(Protocol):
    """What a kind's `send` may use: its options, a client for the target, shared caches."""

    @property
    def options(self) -> SendOptions: ...

    @property
    def http(self) -> requests.Session: ...

    @property
    def facts(self) -> TargetFacts:
        """What AWS said about target ARNs (a queue's URL, a machine's type), kept a while."""
        ...

    def client(self, service: str, target_arn: str) -> Any:
        """The boto3 client of `service` in the region `target_arn` names."""
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
