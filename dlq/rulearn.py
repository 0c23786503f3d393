"""Which EventBridge rule an ARN names, and on which bus: nothing else imported, so the
ingest (which must not load the target kinds) and the replay read rule ARNs alike."""

from __future__ import annotations

from dataclasses import dataclass

#: How Genesys names its partner event sources, and so the partner buses made from them:
#: `aws.partner/genesys.com/cloud/{orgId}/{eventSourceSuffix}`.
GENESYS_BUS_PREFIX = "aws.partner/genesys.com/cloud/"


@dataclass(frozen=True, slots=True)
class RuleRef:
    """Which rule an ARN names: `arn:aws:events:<region>:<account>:rule/[<bus>/]<name>`.

    A partner bus's name holds slashes (`aws.partner/genesys.com/cloud/<org>/<suffix>`),
    so the rule's name is the last part and the bus everything between; a rule on the
    default bus has no bus part at all.
    """

    arn: str
    region: str
    bus: str
    name: str
    account: str = ""

    @classmethod
    def parse(cls, rule_arn: str) -> RuleRef | None:
        """The rule `rule_arn` names, or None when it is not an EventBridge rule ARN."""
        parts = rule_arn.split(":", 5)
        if len(parts) != 6 or parts[0] != "arn" or parts[2] != "events" or not parts[1]:
            return None
        resource = parts[5]
        if not resource.startswith("rule/"):
            return None
        bus, _, name = resource.removeprefix("rule/").rpartition("/")
        if not name or not parts[3]:
            return None
        return cls(arn=rule_arn, region=parts[3], bus=bus or "default", name=name, account=parts[4])

    @property
    def genesys_org(self) -> str | None:
        """The org whose Genesys partner bus the rule is on; None for any other bus."""
        if not self.bus.startswith(GENESYS_BUS_PREFIX):
            return None
        org, _, suffix = self.bus.removeprefix(GENESYS_BUS_PREFIX).partition("/")
        return org if org and suffix else None
