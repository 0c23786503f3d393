"""Which kind of target an ARN names, and where (region, account, name) it lives."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from dlq.targets.errors import UnsupportedTarget

#: The ARN service of each AWS kind of target (the kind's name) and its resource prefix.
_RESOURCE_PREFIX: dict[str, str] = {
    "lambda": "function:",
    "sqs": "",
    "sns": "",
    "states": "stateMachine:",
    "kinesis": "stream/",
    "firehose": "deliverystream/",
    "events": "event-bus/",
}

#: Every kind `target_kind` can answer, in the order the guidance lists them.
KINDS = ("lambda", "sqs", "sns", "states", "kinesis", "firehose", "events", "http")

SUPPORTED = (
    "Lambda functions, SQS queues, SNS topics, Step Functions state machines, Kinesis streams, "
    "Firehose delivery streams, EventBridge event buses, and HTTP endpoints listed in "
    "REPLAY_HTTP_TARGETS"
)


@dataclass(frozen=True, slots=True)
class Arn:
    """The parts of an ARN: `arn:partition:service:region:account:resource`."""

    partition: str
    service: str
    region: str
    account: str
    resource: str

    @classmethod
    def parse(cls, text: str) -> Arn | None:
        """The parts of `text`, or None when it is not an ARN."""
        parts = text.split(":", 5)
        if len(parts) != 6 or parts[0] != "arn" or not all(parts[1:3]) or not parts[5]:
            return None
        return cls(*parts[1:])

    @property
    def name(self) -> str:
        """The resource's own name: the queue, topic, stream, bus or function name."""
        for prefix in ("function:", "stateMachine:"):
            if self.resource.startswith(prefix):
                return self.resource[len(prefix) :].split(":", 1)[0]
        return self.resource.rsplit("/", 1)[-1]


def unsupported(target_arn: str, why: str) -> UnsupportedTarget:
    """The error for a target this service cannot redeliver to, with what to do about it."""
    return UnsupportedTarget(
        f"cannot redeliver to {target_arn!r}: {why}. Supported: {SUPPORTED}. Route it with "
        f'REPLAY_TARGET_OVERRIDES=\'{{"{target_arn}": "<ARN of a supported target>"}}\' or '
        f'REPLAY_HTTP_TARGETS=\'{{"{target_arn}": "https://..."}}\'',
        target_arn=target_arn,
        code="UnsupportedTarget",
    )


def target_kind(target_arn: str, *, http_targets: Collection[str] = ()) -> str:
    """The kind of target `target_arn` names: one of `KINDS`, else `UnsupportedTarget`.

    `http_targets` are the ARNs configured as HTTP endpoints (REPLAY_HTTP_TARGETS); they
    win over the ARN's own service, so an API destination or any other ARN can be mapped.
    """
    if target_arn in http_targets:
        return "http"
    arn = Arn.parse(target_arn)
    if arn is None:
        raise unsupported(target_arn, "it is not an ARN")
    if arn.service == "events" and arn.resource.startswith("api-destination/"):
        raise unsupported(target_arn, "an API destination is redelivered as an HTTP endpoint")
    prefix = _RESOURCE_PREFIX.get(arn.service)
    if prefix is None:
        raise unsupported(target_arn, f"{arn.service!r} targets are not supported")
    if not arn.resource.startswith(prefix) or not arn.region or not arn.account:
        raise unsupported(target_arn, f"it is not the ARN of a {arn.service} target")
    return arn.service
