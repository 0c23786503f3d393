"""`dlq-replay redrive`: put failed or exhausted items back to work (`dlq.redrive`)."""

from __future__ import annotations

import time

import click
from rich.progress import Progress

from cli._common import friendly_errors, ledger_of, settings
from cli.output import Output
from cli.when import WHEN, WHEN_HELP
from dlq.clock import moment
from dlq.codes import DLQ_ERROR_CODES, shown_code
from dlq.ledger import REDRIVABLE_STATUSES, LedgerItem, Status
from dlq.redrive import RedriveFilter, select
from dlq.redrive import redrive as redrive_items
from tasks.application import app
from tasks.producer import CeleryEnqueuer


@click.command()
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice([s.value for s in REDRIVABLE_STATUSES]),
    help="Which statuses to redrive (default: failed and exhausted).",
)
@click.option(
    "--error-code",
    metavar="CODE",
    help="Only items whose last error code is this: the replay's own (HTTP503, "
    "NotARuleTarget...), as `status` counts them and `inspect` shows them.",
)
@click.option(
    "--dlq-error-code",
    metavar="CODE",
    help="Only items whose DLQ ERROR_CODE (EventBridge's: ERROR_FROM_TARGET...) is this.",
)
@click.option("--target-arn", help="Only items for this target.")
@click.option("--rule-arn", help="Only items from this rule.")
@click.option("--detail-type", help="Only items of this detail-type.")
@click.option("--conversation-id", help="Only items of this conversation.")
@click.option("--since", type=WHEN, metavar="WHEN", help="Only items last updated after WHEN.")
@click.option(
    "--until", type=WHEN, metavar="WHEN", help=f"Only items last updated before WHEN. {WHEN_HELP}"
)
@click.option("--dry-run", is_flag=True, help="List what would be redriven; change nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--rate", type=float, default=0.0, help="At most this many items per second.")
@click.option(
    "--target-override",
    metavar="ARN",
    help="Redeliver the chosen items to this target instead (the escape hatch for a rule "
    "that is gone or changed: no rule check, no input transformation; recorded per item).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def redrive(
    statuses: tuple[str, ...],
    error_code: str | None,
    dlq_error_code: str | None,
    target_arn: str | None,
    rule_arn: str | None,
    detail_type: str | None,
    conversation_id: str | None,
    since: float | None,
    until: float | None,
    dry_run: bool,
    yes: bool,
    rate: float,
    target_override: str | None,
    as_json: bool,
) -> None:
    """Put failed or exhausted items back to `received` and enqueue them again.

    A redriven item's last error moves to its history (the redrive's entry), so what it
    shows as its last error from then on is its new attempts'.
    """
    if since is not None and until is not None and until <= since:
        raise click.BadParameter("it must be later than --since", param_hint="--until")
    config = settings()
    ledger = ledger_of(config)
    wanted = RedriveFilter(
        statuses=tuple(Status(s) for s in statuses) or RedriveFilter().statuses,
        error_code=error_code,
        dlq_error_code=dlq_error_code,
        target_arn=target_arn,
        rule_arn=rule_arn,
        detail_type=detail_type,
        conversation_id=conversation_id,
        since=moment(since) if since is not None else None,
        until=moment(until) if until is not None else None,
    )
    out = Output(as_json=as_json)
    if error_code in DLQ_ERROR_CODES:
        click.echo(
            f"note: {error_code} is an EventBridge ERROR_CODE; --error-code takes the replay's "
            f"own codes (`status` lists them); for the DLQ's, use --dlq-error-code {error_code}",
            err=True,
        )
    chosen = list(select(ledger, wanted))
    rows = [_row(i) for i in chosen]
    if dry_run or not chosen:
        if as_json:
            out.json({"dry_run": dry_run, "items": [dict(zip(_FIELDS, r, strict=True))
                                                    for r in rows]})  # fmt: skip
        else:
            out.table(f"{len(chosen)} items would be redriven", _COLUMNS, rows)
        return
    if target_override:
        _check_override(target_override)
    if not yes:
        out.table("to redrive", _COLUMNS, rows)
        click.confirm(f"Redrive {len(chosen)} items?", abort=True)
    with Progress(disable=not out.rich, transient=True) as progress:
        bar = progress.add_task("redriving", total=len(chosen))
        pace = _Pace(rate)

        def each(_: LedgerItem) -> None:
            progress.advance(bar)
            pace.wait()

        note = "redrive by operator" + (f" to {target_override}" if target_override else "")
        result = redrive_items(
            ledger,
            CeleryEnqueuer(app),
            chosen,
            note=note,
            target_override=target_override,
            each=each,
        )
    done, skipped = result.redriven, result.skipped
    if as_json:
        out.json({"redriven": done, "skipped": skipped})
    else:
        out.line(f"redriven: {done}, skipped (changed meanwhile): {skipped}")


_FIELDS = ("event_id", "target_arn", "status", "error_code", "dlq_error_code", "last_error")
_COLUMNS = ["event", "target", "status", "error code", "DLQ error code", "last error"]


def _row(item: LedgerItem) -> tuple[str, str, str, str, str, str]:
    return (
        item.event_id,
        item.target_arn,
        item.status.value,
        shown_code(item.last_error_code),
        item.dlq.error_code or "",
        item.last_error or "",
    )


def _check_override(arn: str) -> None:
    """Refuse here, not on the workers, an ARN no worker could send to."""
    from dlq.targets import UnsupportedTarget, kind_of

    try:
        kind_of(arn)
    except UnsupportedTarget as error:
        raise click.BadParameter(str(error), param_hint="--target-override") from None


class _Pace:
    """At most `rate` items per second (0: no limit)."""

    def __init__(self, rate: float) -> None:
        self._interval = 1 / rate if rate > 0 else 0.0
        self._last = time.monotonic()

    def wait(self) -> None:
        if self._interval:
            time.sleep(max(0.0, self._interval - (time.monotonic() - self._last)))
        self._last = time.monotonic()
