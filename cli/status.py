"""`dlq-replay status`: outcomes counted as they happened, and what waits in the ledger now.

No scan: outcomes come from the fleet's per-minute counters in Redis (kept three days),
what waits from a `Select=COUNT` query per status (`dlq.metrics.report`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from cli._common import friendly_errors, ledger_of, redis_of, settings
from cli.output import Output
from cli.paused import held_report, show_held
from cli.when import WHEN, WHEN_HELP, age
from dlq.clock import SYSTEM_CLOCK, parse_iso
from dlq.ledger import Status
from dlq.metrics.counters import OUTCOMES
from dlq.metrics.report import status_report


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--since",
    type=WHEN,
    metavar="WHEN",
    default=None,
    help=f"Count outcomes from WHEN (default: all that is kept, 3 days). {WHEN_HELP}",
)
@click.option(
    "--until",
    type=WHEN,
    metavar="WHEN",
    default=None,
    help="Count outcomes up to WHEN (default: now); what waits is counted now whatever it is.",
)
@click.option(
    "--status",
    "only",
    type=click.Choice([s.value for s in Status]),
    help="List the newest items of this status instead (e.g. rejected: reason, message id).",
)
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True,
              help="With --status: at most this many items.")  # fmt: skip
@click.option(
    "--watch",
    is_flag=True,
    help="A live view: rates, ETA, budget, failing targets. Piped, a plain snapshot per "
    "interval (`# title` lines, tab-separated rows).",
)
@click.option("--interval", type=click.FloatRange(min=0.5), default=5.0, show_default=True,
              help="With --watch: seconds between refreshes.")  # fmt: skip
@click.option("--once", is_flag=True, help="With --watch: print one frame and exit.")
@friendly_errors
def status(
    as_json: bool,
    since: float | None,
    until: float | None,
    only: str | None,
    limit: int,
    watch: bool,
    interval: float,
    once: bool,
) -> None:
    """Outcomes by target, error code and DLQ error code since WHEN; what waits now.

    Times are ISO 8601, UTC, as the ledger writes them.
    """
    if only or watch or once:
        _other_views(as_json, only, limit, watch or once, interval, once)
        return
    if since is not None and until is not None and until <= since:
        raise click.BadParameter("it must be later than --since", param_hint="--until")
    config = settings()
    now = SYSTEM_CLOCK.now()
    client = redis_of(config)
    try:
        report = status_report(
            ledger_of(config),
            client,
            config.ledger_table,
            now=now,
            since=since,
            until=until,
            recount_every=config.replay_tally_recount_seconds,
        )
        report["targets_held"] = held_report(config, client, report, now=now)
    finally:
        client.close()
    out = Output(as_json=as_json)
    if as_json:
        out.json(report)
        return
    out.line(f"outcomes from {report['since']} to {report['until']} (counted as they happened)")
    if report["clipped"]:
        out.line("counts older than 3 days are not kept: the window starts there")
    out.table("outcomes", ["outcome", "events"], [(o, report["by_outcome"][o]) for o in OUTCOMES])
    out.table(
        "by target",
        ["outcome", "target", "events"],
        [(o, t, n) for o, targets in report["by_target"].items() for t, n in targets.items()],
    )
    out.table(
        "by error code (the replay's: redrive --error-code)",
        ["outcome", "error code", "events"],
        [(o, c, n) for o, codes in report["by_error_code"].items() for c, n in codes.items()],
    )
    out.table(
        "by DLQ error code (EventBridge's: redrive --dlq-error-code)",
        ["outcome", "DLQ error code", "events"],
        [(o, c, n) for o, codes in report["by_dlq_error_code"].items() for c, n in codes.items()],
    )
    out.table("waiting in the ledger now", ["status", "items"], list(report["waiting"].items()))
    out.line(f"resolved by operators, nothing sent (in the ledger now): {report['resolved']}")
    out.line(counted_line(report["counted"]))
    for_genesys = report["waiting_for_genesys"]
    if for_genesys:
        out.table(
            "of which waiting for Genesys, no attempt spent (`inspect` says why)",
            ["code", "items"],
            list(for_genesys.items()),
        )
    show_held(out, report["targets_held"])
    oldest = report["oldest_pending"]
    out.line(oldest_pending(oldest, now=now) if oldest else "nothing pending")


def counted_line(counted: Mapping[str, Any]) -> str:
    """Where the counts of what waits come from, in one line."""
    if counted["recounted_at"] is None:
        return "counted from the ledger just now (its counts in Redis are being recounted)"
    drift = counted["drift"]
    off = ", ".join(f"{status} {n:+d}" for status, n in drift.items())
    return f"counted as items move; last set from the ledger at {counted['recounted_at']}" + (
        f" (the counts had drifted: {off})" if off else ""
    )


def oldest_pending(oldest: Mapping[str, Any], *, now: float) -> str:
    """The report's oldest pending item as one sentence: when, which event, where it is."""
    received = parse_iso(oldest["received_at"])
    ago = f" ({age(now - received.timestamp())} ago)" if received else ""
    attempts = int(oldest["attempts"])
    tried = (
        f" after {attempts} attempt{'s' if attempts != 1 else ''}"
        if attempts
        else ", not tried yet"
    )
    line = (
        f"oldest pending: received {oldest['received_at']}{ago}, event {oldest['event_id']}, "
        f"now {oldest['status']}{tried}"
    )
    error = oldest.get("last_error")
    return f"{line}; last error: {error}" if error else line


def _other_views(
    as_json: bool, only: str | None, limit: int, watch: bool, interval: float, once: bool
) -> None:
    """`--status` (a listing) and `--watch` (a live view): modules of their own."""
    config = settings()
    out = Output(as_json=as_json)
    if only:
        from cli.listing import list_status

        list_status(out, ledger_of(config), Status(only), limit=limit)
        return
    from cli.watch import run_watch, watcher_for

    run_watch(watcher_for(config, ledger_of(config)), out, interval=interval, once=once)
