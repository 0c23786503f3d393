"""`dlq-replay status --watch`: a live view for an operator without Grafana.

The data comes from `dlq.watch.Watcher` (bounded reads only); this module renders a
snapshot with rich and refreshes it every `--interval` seconds. `--once` prints one
frame and exits (scripts, tests, a quick look).
"""

from __future__ import annotations

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
from dlq.genesys.credentials import GenesysCredentials
from dlq.ledger import Ledger
from dlq.ratelimit.usage import read_budget
from dlq.settings import Settings
from dlq.tracking import pending_runs
from dlq.watch import OUTCOMES, PENDING, Snapshot, Watcher, sqs_depth


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
    )


def run_watch(watcher: Watcher, out: Output, *, interval: float, once: bool) -> None:
    """Render snapshots until Ctrl-C (or one, with `once`)."""
    if once:
        snapshot = watcher.take()
        if out.as_json:
            out.json(as_data(snapshot))
        else:
            out.console.print(render(snapshot))
        return
    if out.as_json:
        raise click.UsageError("--json with --watch needs --once (one snapshot)")
    with Live(render(watcher.take()), console=out.console, auto_refresh=False) as live:
        try:
            while True:
                time.sleep(interval)
                live.update(render(watcher.take()), refresh=True)
        except KeyboardInterrupt:
            pass


def as_data(snapshot: Snapshot) -> dict[str, Any]:
    """One snapshot for scripts: what the frame shows, with the rates and ETA worked out."""
    data = asdict(snapshot)
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
        _targets(snapshot),
    )


def _headline(snapshot: Snapshot) -> Text:
    at = time.strftime("%H:%M:%S", time.localtime(snapshot.at))
    eta = snapshot.eta_seconds
    if eta is None:
        drain = f"backlog {snapshot.backlog}, nothing finishing: check the workers (Flower)"
    elif eta == 0:
        drain = "nothing to drain"
    else:
        drain = f"backlog {snapshot.backlog}, ETA to drain {_duration(eta)}"
    return Text.assemble(("dlq-replay ", "bold"), f"at {at}: ", drain)


def _rates(snapshot: Snapshot) -> Table:
    table = Table(title=f"finished in the last {_duration(snapshot.span)}", title_justify="left")
    table.add_column("outcome")
    table.add_column("items", justify="right")
    table.add_column("per minute", justify="right")
    for status in OUTCOMES:
        count = _count(snapshot.outcomes[status.value], status.value in snapshot.capped)
        table.add_row(status.value, count, f"{snapshot.per_minute(status):.1f}")
    return table


def _backlog(snapshot: Snapshot) -> Table:
    table = Table(title="backlog", title_justify="left")
    table.add_column("where")
    table.add_column("items", justify="right")
    if snapshot.dlq is not None:
        table.add_row("DLQ, visible", str(snapshot.dlq.visible))
        table.add_row("DLQ, in flight", str(snapshot.dlq.in_flight))
        if snapshot.dlq.delayed:
            table.add_row("DLQ, delayed", str(snapshot.dlq.delayed))
    else:
        table.add_row("DLQ", Text(f"unknown: {snapshot.dlq_error}"))
    for status in PENDING:
        capped = status.value in snapshot.capped
        table.add_row(f"ledger, {status.value}", _count(snapshot.pending[status.value], capped))
    table.add_row("tracking runs waiting", str(snapshot.tracking_runs))
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


def _count(value: int, capped: bool) -> str:
    return f"{value}+" if capped else str(value)


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"
