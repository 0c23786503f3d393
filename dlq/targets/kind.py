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
from dlq.targets.pacing import OwnLimits


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

    def take_slot(
        self, destination: str, *, target_arn: str = "", rate: float | None, patience: float = 0.0
    ) -> None:
        """Take a slot of `destination`'s fleet-wide pace (its own `rate` included), waiting
        up to `patience` seconds for it, or raise `BudgetWait` (a second call of one send,
        as after a refreshed token)."""
        ...


Send = Callable[[SendContext, Replay], str]
#: What a target says of its own limits (`dlq.targets.pacing`), given its ARN.
Limits = Callable[[SendContext, str], OwnLimits]
#: Reads what a send to the target needs (credentials), given its ARN, before its slot.
Prepare = Callable[[SendContext, str], None]


def with_client(service: str, send: Callable[[Any, Replay], str]) -> Send:
    """A `send` that needs nothing but the boto3 client of `service` for the target."""
    return lambda context, replay: send(context.client(service, replay.delivered_to), replay)


@dataclass(frozen=True, slots=True)
class TargetKind:
    """One kind of target.

    `arn_service` and `resource_prefix` recognise its ARNs (`arn:aws:<service>:...:<prefix>`);
    a kind without `arn_service` is chosen by configuration only (HTTP endpoints).
    `send` makes one delivery (asking the context for the boto3 client it needs) and
    answers the target's receipt (a message id, an execution ARN...). `limits`, when a
    kind has it, reads the target's own limits (a rate, a cap in flight) for its pace.
    `prepare`, when a kind has it, reads what the send needs before the pace grants its
    slot: a send held up after its slot by a lookup reaches the target together with the
    next ones, as if no pace held.
    """

    name: str
    label: str
    send: Send
    arn_service: str | None = None
    resource_prefix: str = ""
    limits: Limits | None = None
    prepare: Prepare | None = None
