"""`dlq-replay redrive`: put failed or exhausted items back to work (`dlq.redrive`)."""

from __future__ import annotations

import time
from typing import Any, TextIO

import click
from rich.progress import Progress

from cli._common import friendly_errors, ledger_of, redis_of, settings
from cli.audit import OPERATOR, record_access
from cli.choosing import chosen, item_filters
from cli.output import Output
from dlq import redrivepace
from dlq.codes import shown_code
from dlq.edits import EditRefused, checked_edit
from dlq.ledger import REDRIVABLE_STATUSES, LedgerItem
from dlq.ratelimit.pace import UNPACED_REUSE_SECONDS, Pace
from dlq.redrive import redrive as redrive_items
from dlq.redrive import select
from dlq.settings import Settings
from tasks.application import app
from tasks.producer import CeleryEnqueuer


@click.command()
@click.argument("event_id", required=False)
@item_filters(REDRIVABLE_STATUSES, default="failed and exhausted")
@click.option("--dry-run", is_flag=True, help="List what would be redriven; change nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--rate",
    type=float,
    default=0.0,
    help="At most this many items per second, and the deliveries to their targets paced at "
    "it while they drain (a temporary pace the workers read).",
)
@click.option(
    "--target-override",
    metavar="ARN",
    help="Redeliver the chosen items to this target instead (the escape hatch for a rule "
    "that is gone or changed: no rule check, no input transformation; recorded per item).",
)
@click.option(
    "--body-file",
    type=click.File("r", encoding="utf-8"),
    metavar="FILE",
    help="With EVENT_ID: send this body instead of the original from now on (JSON of the "
    "EventBridge event, same id and source; the rule target's transformation applies). The "
    "original is kept; the history records the edit's sha256 and who supplied it.",
)
@OPERATOR
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def redrive(
    event_id: str | None,
    dry_run: bool,
    yes: bool,
    rate: float,
    target_override: str | None,
    body_file: TextIO | None,
    operator: str | None,
    as_json: bool,
    **filters: Any,
) -> None:
    """Put failed or exhausted items back to `received` and enqueue them again.

    One event (EVENT_ID: its items, narrowed by the filters) or the items the filters
    choose. A redriven item's last error moves to its history (the redrive's entry, with
    who redrove it), so what it shows as its last error from then on is its new attempts'.
    """
    config = settings()
    ledger = ledger_of(config)
    wanted = chosen(REDRIVABLE_STATUSES, **filters)
    out = Output(as_json=as_json)
    if event_id:
        named = ledger.items_for_event(event_id)
        chosen_items = [i for i in named if wanted.matches(i) and i.status in wanted.statuses]
    else:
        chosen_items = list(select(ledger, wanted))
    edit = _edit(chosen_items, body_file, event_id) if body_file is not None else None
    rows = [_row(i) for i in chosen_items]
    if dry_run or not chosen_items:
        if as_json:
            out.json({"dry_run": dry_run, "items": [dict(zip(_FIELDS, r, strict=True))
                                                    for r in rows]})  # fmt: skip
        else:
            out.table(f"{len(chosen_items)} items would be redriven", _COLUMNS, rows)
        return
    if target_override:
        _check_override(target_override)
    if not yes:
        out.table("to redrive", _COLUMNS, rows)
        click.confirm(f"Redrive {len(chosen_items)} items?", abort=True)
    action = "redrive" + (" --target-override" if target_override else "")
    action += " --body-file" if edit is not None else ""
    who = record_access(
        config,
        action,
        event_ids=[i.event_id for i in chosen_items],
        conversation_ids=[i.conversation_id or "" for i in chosen_items],
        operator=operator,
    )
    if rate > 0:
        _pace_deliveries(config, chosen_items, rate, target_override)
    with Progress(disable=not out.rich, transient=True) as progress:
        bar = progress.add_task("redriving", total=len(chosen_items))
        pace = _Pace(rate)

        def each(_: LedgerItem) -> None:
            progress.advance(bar)
            pace.wait()

        note = "redrive by operator" + (f" to {target_override}" if target_override else "")
        if edit is not None:
            note += " with an edited body"
        result = redrive_items(
            ledger,
            CeleryEnqueuer(app),
            chosen_items,
            note=note,
            target_override=target_override,
            each=each,
            operator=who,
            edited_body=edit,
        )
    done, skipped = result.redriven, result.skipped
    if as_json:
        out.json({"redriven": done, "skipped": skipped, "operator": who})
    else:
        out.line(f"redriven: {done} (by {who}), skipped (changed meanwhile): {skipped}")


def _edit(items: list[LedgerItem], body_file: TextIO, event_id: str | None) -> str:
    """The edited body, checked against the one item it replaces the body of."""
    if not event_id:
        raise click.UsageError("--body-file edits one event: name it (redrive EVENT_ID)")
    if len(items) != 1:
        targets = ", ".join(i.target_arn for i in items) or "none failed or exhausted"
        raise click.UsageError(
            f"--body-file edits one item; event {event_id} has {len(items)} to redrive "
            f"({targets}): choose one with --target-arn"
        )
    try:
        return checked_edit(items[0], body_file.read())
    except (EditRefused, UnicodeDecodeError) as error:
        raise click.BadParameter(
            f"{body_file.name} cannot replace event {event_id}'s body: {error}",
            param_hint="--body-file",
        ) from None


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


def _pace_deliveries(
    config: Settings, chosen: list[LedgerItem], rate: float, override: str | None
) -> None:
    """Install the temporary pace the workers read (`dlq.redrivepace`), before any enqueue:
    then wait out the second for which a worker may still reuse its finding that a target
    had no pace (`UNPACED_REUSE_SECONDS`), so that the first item is paced too."""
    lasting = redrivepace.install(
        Pace(redis_of(config)),
        chosen,
        rate=rate,
        target_override=override,
        overrides=config.replay_target_overrides,
    )
    for target, seconds in sorted(lasting.items()):
        click.echo(
            f"note: deliveries to {target} paced at {rate:g}/s for {seconds:.0f} s", err=True
        )
    time.sleep(UNPACED_REUSE_SECONDS)


class _Pace:
    """At most `rate` items per second (0: no limit)."""

    def __init__(self, rate: float) -> None:
        self._interval = 1 / rate if rate > 0 else 0.0
        self._last = time.monotonic()

    def wait(self) -> None:
        if self._interval:
            time.sleep(max(0.0, self._interval - (time.monotonic() - self._last)))
        self._last = time.monotonic()
