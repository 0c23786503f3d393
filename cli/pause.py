"""`dlq-replay pause`: hold one target's items, without spending their attempts or age.

The pause is kept in the ledger table (it survives losing Redis) and copied to Redis at
once, so every worker sees it at its next attempt (`dlq.holds.pauses`).
"""

from __future__ import annotations

import re
from typing import Any

import click

from cli._common import friendly_errors, redis_of, settings
from cli.output import Output
from dlq.aws import aws_client
from dlq.clock import SYSTEM_CLOCK, iso
from dlq.holds.pauses import Pauses
from dlq.ledger.pauses import LedgerPauses, Pause
from dlq.logs import configure_logging
from dlq.operator import operator_identity
from dlq.settings import Settings

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$", re.IGNORECASE)
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

TARGET_ARN = click.option(
    "--target-arn", required=True, metavar="ARN", help="The target, as `status` lists it."
)
OPERATOR = click.option(
    "--operator",
    metavar="NAME",
    help="Who is acting, as `paused` and the log record it (default: the caller's AWS "
    "identity, sts:GetCallerIdentity's ARN, else the OS user).",
)


def duration(text: str) -> float:
    """`--for`'s value in seconds: 90s, 30m, 2h, 1d."""
    found = _DURATION.match(text.strip())
    if not found or float(found.group(1)) <= 0:
        raise click.BadParameter(f"{text!r} is not a duration: use 90s, 30m, 2h or 1d")
    return float(found.group(1)) * _SECONDS[found.group(2).lower()]


def pauses_for(config: Settings) -> Pauses:
    """The pauses of the deployment the settings name: its ledger, its Redis."""
    configure_logging()  # the change is logged, as the workers log theirs
    store = LedgerPauses(
        aws_client("dynamodb", config), config.ledger_table, ttl_days=config.ledger_ttl_days
    )
    return Pauses(store, redis_of(config), cache_seconds=config.replay_pause_cache_seconds)


def who(config: Settings, operator: str | None) -> str:
    return operator.strip() if operator and operator.strip() else operator_identity(config)


def pause_row(pause: Pause) -> dict[str, Any]:
    """A pause as `paused` and `status` show it."""
    return {
        "target_arn": pause.target_arn,
        "since": iso(pause.since),
        "until": iso(pause.until) if pause.until is not None else "resume",
        "operator": pause.operator,
        "reason": pause.reason,
    }


@click.command()
@TARGET_ARN
@click.option("--for", "for_", metavar="DURATION", help="End the pause by itself after this "
              "long (90s, 30m, 2h, 1d); without it, it lasts until `resume`.")  # fmt: skip
@click.option("--reason", required=True, metavar="TEXT", help="Why, for the other operators.")
@OPERATOR
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def pause(
    target_arn: str, for_: str | None, reason: str, operator: str | None, as_json: bool
) -> None:
    """Pause one target: its items wait, spending neither attempts nor age, until resumed."""
    seconds = duration(for_) if for_ is not None else None
    if not reason.strip():
        raise click.BadParameter("say why the target is paused", param_hint="--reason")
    config = settings()
    now = SYSTEM_CLOCK.now()
    made = pauses_for(config).pause(
        target_arn,
        now=now,
        reason=reason.strip(),
        operator=who(config, operator),
        until=now + seconds if seconds is not None else None,
    )
    out = Output(as_json=as_json)
    if as_json:
        out.json(pause_row(made))
        return
    ends = f"until {iso(made.until)}" if made.until is not None else "until `dlq-replay resume`"
    out.line(f"paused {target_arn} {ends}, by {made.operator}: {made.reason}")
    out.line("its items wait without spending attempts or age; the workers see it at once")
