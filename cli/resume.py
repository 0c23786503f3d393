"""`dlq-replay resume`: end a target's pause; its waiting items drain."""

from __future__ import annotations

import click

from cli._common import FAILED, friendly_errors, settings
from cli.output import Output
from cli.pause import OPERATOR, TARGET_ARN, pause_row, pauses_for, who
from dlq.clock import SYSTEM_CLOCK


@click.command()
@TARGET_ARN
@OPERATOR
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def resume(target_arn: str, operator: str | None, as_json: bool) -> None:
    """Resume a paused target: its items go on within REPLAY_PAUSE_RECHECK_SECONDS.

    Exits 1 when the target was not paused.
    """
    config = settings()
    by = who(config, operator)
    was = pauses_for(config).resume(target_arn, now=SYSTEM_CLOCK.now(), operator=by)
    out = Output(as_json=as_json)
    if as_json:
        out.json({"resumed": was is not None, "by": by, "pause": pause_row(was) if was else None})
    elif was is not None:
        out.line(f"resumed {target_arn} by {by} (paused since {pause_row(was)['since']} by "
                 f"{was.operator}: {was.reason}); its waiting items drain")  # fmt: skip
    else:
        out.line(f"{target_arn} was not paused; nothing to resume")
    if was is None:
        raise SystemExit(FAILED)
