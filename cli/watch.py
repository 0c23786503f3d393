"""`dlq-replay status --watch`: a live view for an operator without Grafana.

The data comes from `dlq.watch.Watcher` (bounded reads only); this module renders a
snapshot with rich and refreshes it in place every `--interval` seconds. Piped (stdout not
a terminal), it writes one plain snapshot per interval instead, one after the other, as
`status` writes its tables when piped: `# title` lines and tab-separated rows, no
terminal control codes. `--once` prints one frame and exits (scripts, tests, a quick look).
Times are ISO 8601, UTC.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict
from typing import Any

import click
from rich.console import Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from cli._common import redis_of
from cli.output import Output
from dlq.aws import aws_client
from dlq.clock import iso
from dlq.genesys.credentials import GenesysCredentials
from dlq.holds.report import held_now
from dlq.ledger import Ledger
from dlq.ratelimit.usage import read_budget
from dlq.settings import Settings
from dlq.tracking import pending_runs
from dlq.watch import OUTCOMES, PENDING, TROUBLE, Snapshot, Watcher, sqs_depth


def watcher_for(config: Settings, ledger: Ledger) -> Watcher:
    """A watcher over the real sources the settings name."""
    cache = redis_of(config, socket_timeout=5, socket_connect_timeout=5)
    sqs = aws_client("sqs", config) if config.dlq_queue_url else None
    client_id = (
        GenesysCredentials.from_settings(config).client_id.get()
        if config.has_genesys_client
        else ""
    )
    return Watcher(
        ledger=ledger,
        queue_depth=(lambda: sqs_depth(sqs, config.dlq_queue_url)) if sqs else None,
        budget=(
            lambda: read_budget(
                cache,
                client_id,
                per_minute=config.genesys_rate_limit_per_minute,
                window=config.genesys_rate_limit_window_seconds,
            )
        )
        if client_id
        else None,
        tracking_runs=lambda: pending_runs(cache),
        held=lambda: held_now(config, cache),
    )


def run_watch(watcher: Watcher, out: Output, *, interval: float, once: bool) -> None:
    """Render snapshots until Ctrl-C (or one, with `once`)."""
    if once:
        snapshot = watcher.take()
        if out.as_json:
            out.json(as_data(snapshot))
        elif out.rich:
            out.console.print(render(snapshot))
        else:
            write_plain(out, snapshot)
        return
    if out.as_json:
        raise click.UsageError("--json with --watch needs --once (one snapshot)")
    try:
        if out.rich:
            _live(watcher, out, interval)
        else:
            _piped(watcher, out, interval)
    except KeyboardInterrupt:
        pass


def _live(watcher: Watcher, out: Output, interval: float) -> None:
    """On a terminal: one frame, redrawn in place."""
    with Live(render(watcher.take()), console=out.console, auto_refresh=False) as live:
        while True:
            time.sleep(interval)
            live.update(render(watcher.take()), refresh=True)


def _piped(watcher: Watcher, out: Output, interval: float) -> None:
    """Piped: a plain snapshot per interval, each written out at once (a reader of the
    pipe sees it then, not when a buffer fills); ends quietly when the reader goes."""
    try:
        while True:
            write_plain(out, watcher.take())
            sys.stdout.flush()
            time.sleep(interval)
    except BrokenPipeError:
        # Python would report the pipe again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def write_plain(out: Output, snapshot: Snapshot) -> None:
    """One snapshot as plain text: the headline, then each table as `# title` and rows of
    tab-separated values (`Output.table` off a terminal), then a blank line."""
    out.line(_headline(snapshot).plain)
    out.table(_rates_title(snapshot), ["outcome", "items", "per minute"], _rate_rows(snapshot))
    out.table("backlog", ["where", "items"], _backlog_rows(snapshot))
    out.line(_budget(snapshot).plain)
    out.table("targets held", ["target", "hold", "since", "until", "why"], _held_rows(snapshot))
    out.table(
        "top failing targets (among the newest items of each status)",
        ["target", *(s.value for s in TROUBLE), "error codes"],
        [
            (t.target_arn, *(t.counts.get(s.value, 0) for s in TROUBLE), ",".join(t.error_codes))
            for t in snapshot.top_targets
        ],
    )
    out.line("")


def as_data(snapshot: Snapshot) -> dict[str, Any]:
    """One snapshot for scripts: what the frame shows, with the rates and ETA worked out."""
    data = asdict(snapshot)
    data["at"], data["at_epoch"] = iso(snapshot.at), snapshot.at
    data["since"], data["since_epoch"] = iso(snapshot.since), snapshot.since
    data["capped"] = sorted(snapshot.capped)
    data["per_minute"] = {s.value: round(snapshot.per_minute(s), 3) for s in OUTCOMES}
    data["backlog"] = snapshot.backlog
    data["eta_seconds"] = snapshot.eta_seconds
    if snapshot.budget is not None:
        data["budget"]["share"] = round(snapshot.budget.share, 4)
    return data


def render(snapshot: Snapshot) -> RenderableType:
    """One frame: rates and ETA, the DLQ and the ledger's backlog, budget, top targets."""
    return Group(
        _headline(snapshot),
        _rates(snapshot),
        _backlog(snapshot),
        _budget(snapshot),
        _held(snapshot),
        _targets(snapshot),
    )


def _headline(snapshot: Snapshot) -> Text:
    at = iso(snapshot.at)
    eta = snapshot.eta_seconds
    if eta is None:
        drain = f"backlog {snapshot.backlog}, nothing finishing: check the workers (Flower)"
    elif eta == 0:
        drain = "nothing to drain"
    else:
        drain = f"backlog {snapshot.backlog}, ETA to drain {_duration(eta)}"
    return Text.assemble(("dlq-replay ", "bold"), f"at {at}: ", drain)


def _rates_title(snapshot: Snapshot) -> str:
    return f"finished in the last {_duration(snapshot.span)}"


def _rate_rows(snapshot: Snapshot) -> list[tuple[str, str, str]]:
    return [
        (
            status.value,
            _count(snapshot.outcomes[status.value], status.value in snapshot.capped),
            f"{snapshot.per_minute(status):.1f}",
        )
        for status in OUTCOMES
    ]


def _rates(snapshot: Snapshot) -> Table:
    table = Table(title=_rates_title(snapshot), title_justify="left")
    table.add_column("outcome")
    table.add_column("items", justify="right")
    table.add_column("per minute", justify="right")
    for row in _rate_rows(snapshot):
        table.add_row(*row)
    return table


def _backlog_rows(snapshot: Snapshot) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    if snapshot.dlq is not None:
        rows.append(("DLQ, visible", str(snapshot.dlq.visible)))
        rows.append(("DLQ, in flight", str(snapshot.dlq.in_flight)))
        if snapshot.dlq.delayed:
            rows.append(("DLQ, delayed", str(snapshot.dlq.delayed)))
    else:
        rows.append(("DLQ", f"unknown: {snapshot.dlq_error}"))
    for status in PENDING:
        capped = status.value in snapshot.capped
        rows.append((f"ledger, {status.value}", _count(snapshot.pending[status.value], capped)))
    rows.append(("tracking runs waiting", str(snapshot.tracking_runs)))
    return rows


def _backlog(snapshot: Snapshot) -> Table:
    table = Table(title="backlog", title_justify="left")
    table.add_column("where")
    table.add_column("items", justify="right")
    for where, items in _backlog_rows(snapshot):
        # Text, not markup: an error's text may hold `[...]`.
        table.add_row(where, Text(items))
    return table


def _budget(snapshot: Snapshot) -> Text:
    budget = snapshot.budget
    if budget is None:
        return Text(f"Genesys budget: unknown ({snapshot.budget_error})")
    line = Text.assemble(
        ("Genesys budget: ", "bold"),
        f"{budget.granted} of {budget.allowed:.0f} calls in the last {budget.window:.0f} s "
        f"({budget.share:.0%}); configured {budget.configured_per_minute}/min",
    )
    if budget.server_allowance is not None:
        line.append(f", Genesys allows {budget.server_allowance} per window")
    if budget.held_for > 0:
        line.append(f"; held back {budget.held_for:.1f} s more after a 429", style="bold red")
    return line


def _targets(snapshot: Snapshot) -> RenderableType:
    if not snapshot.top_targets:
        return Text("no target is failing")
    # One line per ARN, whole and first on its line (an operator pastes it into
    # `redrive --target-arn`), then its counts: no column layout that could cut it.
    lines = [Text("top failing targets (among the newest items of each status)", style="bold")]
    for trouble in snapshot.top_targets:
        lines.append(Text(trouble.target_arn))
        counts = ", ".join(
            f"{trouble.counts[s]} {s}" for s in ("failed", "exhausted", "retry_scheduled")
            if trouble.counts.get(s)
        )  # fmt: skip
        lines.append(Text(f"    {counts}; error codes: {', '.join(trouble.error_codes)}"))
    return Group(*lines)


def _held_rows(snapshot: Snapshot) -> list[tuple[str, str, str, str, str]]:
    return [
        (h.target_arn, h.hold, iso(h.since), iso(h.until) if h.until else "resume", h.detail)
        for h in snapshot.held
    ]


def _held(snapshot: Snapshot) -> RenderableType:
    if not snapshot.held:
        return Text("no target is held")
    # As the failing targets: the ARN whole on its line, for `resume --target-arn`.
    lines = [Text("targets held (their items wait, no attempt spent)", style="bold")]
    for target, hold, since, until, why in _held_rows(snapshot):
        lines.append(Text(target))
        lines.append(Text(f"    {hold} since {since}, until {until}; {why}"))
    return Group(*lines)


def _count(value: int, capped: bool) -> str:
    return f"{value}+" if capped else str(value)


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"
