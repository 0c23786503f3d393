"""What a target kind's send may read of the settings, as one small frozen value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from dlq.settings import Settings


@dataclass(frozen=True, slots=True)
class SendOptions:
    """The settings the sends use, and nothing else (no secret, no Redis URL)."""

    #: (connect, read) seconds of the one try of a send.
    timeouts: tuple[float, float] = (3.05, 30.0)
    #: `Event` (asynchronous, as EventBridge invokes) or `RequestResponse`.
    lambda_invocation_type: str = "Event"
    #: The `source` a replay put on an event bus carries (`aws.` sources are refused).
    event_bus_source: str = ""
    #: REPLAY_HTTP_TARGETS: target ARN to the URL its events are POSTed to.
    http_targets: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> SendOptions:
        return cls(
            timeouts=settings.send_timeouts,
            lambda_invocation_type=settings.replay_lambda_invocation_type,
            event_bus_source=settings.replay_event_bus_source,
            http_targets={arn: str(url) for arn, url in settings.replay_http_targets.items()},
        )
