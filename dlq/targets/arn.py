"""The parts of an ARN: where (partition, service, region, account) and what (resource)."""

from __future__ import annotations

from dataclasses import dataclass


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
