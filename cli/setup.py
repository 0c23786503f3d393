"""`dlq-replay setup`: create the queues and the ledger table (idempotent)."""

from __future__ import annotations

import click

from cli._common import friendly_errors, settings
from cli.output import Output
from dlq.provision import provision


@click.command()
@click.option("--queue", "queues", multiple=True, help="Also create this SQS queue (repeat).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def setup(queues: tuple[str, ...], as_json: bool) -> None:
    """Create the DLQ, extra queues and the ledger table (idempotent; for local use)."""
    config = settings()
    if config.replay_parking_queue_url:
        queues = (*queues, config.replay_parking_queue_url.rstrip("/").rsplit("/", 1)[-1])
    done = provision(config, queues=queues)
    out = Output(as_json=as_json)
    if as_json:
        out.json({"dlq_url": done.dlq_url, "table_created": done.table_created,
                  "queues": done.queue_urls})  # fmt: skip
        return
    table = "created" if done.table_created else "already there"
    out.line(f"ledger table {config.ledger_table}: {table}")
    out.table("queues", ["name", "url", "arn"],
              [(n, u, done.queue_arns[n]) for n, u in done.queue_urls.items()])  # fmt: skip
