"""The trust boundary: which DLQ messages the replay may act on at all.

The DLQ is a queue: whoever may `sqs:SendMessage` on it can write a message naming any
rule, any target and any body, and the workers act on it with their own role. So a
message is redelivered only when it is a Genesys event of the configured org, named by a
rule meant for Genesys events, and one that rule's pattern matches (that last check needs
the rule itself, `events:DescribeRule`, so the workers make it: `dlq.targets.rules`).

Which rules are meant for Genesys events:

- by default, the rules on a Genesys partner event bus, `aws.partner/genesys.com/cloud/
  <org id>/<suffix>` (only Genesys can create such an event source, and AWS names the
  partner bus after it). The org is GENESYS_ORG_ID when set (a partner bus of another org
  is refused), else the one the bus's name carries; either way the event's `source` must
  name that same org;
- besides, the buses (REPLAY_ALLOWED_BUSES, names, `*` for any run of characters) and
  rules (REPLAY_ALLOWED_RULES, ARNs) an operator names, for Genesys events forwarded to a
  custom bus. Their names carry no org, so widening the boundary needs GENESYS_ORG_ID.

Everything here is pure: no AWS call, so the ingest can judge a message with a role that
has no EventBridge permission.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

from dlq.errors import ConfigurationError
from dlq.rulearn import GENESYS_BUS_PREFIX, RuleRef
from dlq.settings import Settings
from dlq.topics import genesys_org_of

#: The codes of a refusal, kept as the item's `last_error_code`.
NO_RULE = "NoRule"
BUS_NOT_ALLOWED = "BusNotAllowed"
FOREIGN_ORG = "ForeignOrg"
NOT_GENESYS = "NotGenesysEvent"
PATTERN_MISMATCH = "PatternMismatch"
#: Every code a message outside the boundary ends `rejected` with.
REJECT_CODES = frozenset({NO_RULE, BUS_NOT_ALLOWED, FOREIGN_ORG, NOT_GENESYS, PATTERN_MISMATCH})

_WIDEN = (
    "if its events are Genesys events you forward there, allow the bus with "
    "REPLAY_ALLOWED_BUSES or the rule with REPLAY_ALLOWED_RULES (ingest and workers)"
)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a message is outside the boundary: a code and a sentence for the operator."""

    code: str
    reason: str


@dataclass(frozen=True)
class TrustBoundary:
    """The rules whose events may be redelivered, and the org they must come from."""

    org_id: str | None = None
    #: Bus names allowed besides the org's partner bus (`*` matches any run of characters).
    buses: tuple[str, ...] = ()
    #: Rule ARNs allowed besides those on the org's partner bus.
    rules: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if (self.buses or self.rules) and not self.org_id:
            raise ConfigurationError(
                "REPLAY_ALLOWED_BUSES / REPLAY_ALLOWED_RULES allow rules on buses whose names "
                "carry no Genesys org: set GENESYS_ORG_ID too (on the ingest, poller or "
                "Lambda, and on the replay workers), so only that org's events are redelivered"
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> TrustBoundary:
        return cls(
            org_id=settings.genesys_org_id or None,
            buses=tuple(settings.replay_allowed_buses),
            rules=frozenset(settings.replay_allowed_rules),
        )

    def describe(self) -> str:
        """What the boundary allows, in one line."""
        if self.org_id:
            partner = f"rules on the Genesys partner bus of org {self.org_id}"
            allowed = [f"{partner} ({GENESYS_BUS_PREFIX}{self.org_id}/...)"]
        else:
            allowed = [
                f"rules on any Genesys partner bus ({GENESYS_BUS_PREFIX}<org>/...), events "
                "from the org its name carries (GENESYS_ORG_ID is not set)"
            ]
        if self.buses:
            allowed.append(f"rules on the buses {', '.join(self.buses)}")
        if self.rules:
            allowed.append(f"the rules {', '.join(sorted(self.rules))}")
        return "; ".join(allowed)

    def refusal(self, rule_arn: str | None, source: str) -> Refusal | None:
        """Why the event with `source`, dead-lettered by rule `rule_arn`, must not be
        redelivered; None when it may be (its rule's pattern still to be checked)."""
        if not rule_arn:
            return Refusal(
                NO_RULE,
                "the DLQ message names no RULE_ARN, which EventBridge puts on every rule "
                "target's dead-letter message: it was not written by EventBridge, and which "
                "bus it came from is unknown; nothing was sent (check who may "
                "sqs:SendMessage on the DLQ)",
            )
        rule = RuleRef.parse(rule_arn)
        if rule is None:
            return Refusal(
                BUS_NOT_ALLOWED,
                f"RULE_ARN {rule_arn[:200]!r} is not an EventBridge rule ARN; nothing was sent",
            )
        bus_org = rule.genesys_org
        if bus_org is not None and rule_arn not in self.rules:
            return self._partner(rule, bus_org, source)
        if rule_arn in self.rules or any(p.fullmatch(rule.bus) for p in self._bus_patterns):
            return self._org(source, self.org_id, f"GENESYS_ORG_ID {self.org_id}", _bus(rule))
        return Refusal(
            BUS_NOT_ALLOWED,
            f"rule {rule.name} is on {_bus(rule)}, outside the trust boundary (the Genesys "
            f"partner bus of the org, {GENESYS_BUS_PREFIX}{self.org_id or '<org>'}/...): a "
            "message naming it was not written for Genesys events, and was not sent; "
            f"{_WIDEN}; if not, check who may sqs:SendMessage on the DLQ",
        )

    def _partner(self, rule: RuleRef, bus_org: str, source: str) -> Refusal | None:
        if self.org_id is not None and bus_org != self.org_id:
            return Refusal(
                FOREIGN_ORG,
                f"rule {rule.name} is on the Genesys partner bus of org {bus_org}, not of "
                f"GENESYS_ORG_ID {self.org_id}: its events are another org's; nothing was "
                "sent (replay that org with a deployment of its own)",
            )
        named = f"GENESYS_ORG_ID {bus_org}" if self.org_id else f"org {bus_org} of its partner bus"
        return self._org(source, bus_org, named, f"the partner bus of org {bus_org}")

    def _org(self, source: str, org: str | None, named: str, where: str) -> Refusal | None:
        event_org = genesys_org_of(source)
        if event_org is None:
            return Refusal(
                NOT_GENESYS,
                f"the event's source {source[:200]!r} is not a Genesys Cloud source "
                "(aws.partner/genesys.com/cloud/<org>/...), though its rule is on "
                f"{where}; nothing was sent",
            )
        if org is not None and event_org != org:
            return Refusal(
                FOREIGN_ORG,
                f"event from org {event_org}, not from {named} (its rule is on {where}); "
                "nothing was sent",
            )
        return None

    @cached_property
    def _bus_patterns(self) -> tuple[re.Pattern[str], ...]:
        return tuple(_glob(name) for name in self.buses)


def _bus(rule: RuleRef) -> str:
    return "the default bus" if rule.bus == "default" else f"bus {rule.bus}"


def _glob(name: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in name.split("*")), re.DOTALL)
