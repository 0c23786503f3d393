"""`dlq-replay setup`: create what dlq-replay owns, review the DLQ without changing it."""

from __future__ import annotations

from dataclasses import asdict

import click

from cli._common import friendly_errors, settings
from cli.output import Output
from dlq.aws import aws_client
from dlq.doctor.queue import DEFAULT_LAMBDA_TIMEOUT
from dlq.errors import ConfigurationError
from dlq.provision import setup as provision
from ingest.poller import RECEIVE_VISIBILITY_SECONDS


@click.command()
@click.option(
    "--lambda-timeout",
    type=click.IntRange(min=0),
    default=None,
    help="The ingest Lambda's timeout (s), to judge the DLQ's visibility timeout; 0: no "
    f"Lambda. Default: INGEST_FRONT_DOOR decides ({DEFAULT_LAMBDA_TIMEOUT} s for lambda, no "
    "Lambda for poller).",
)
@click.option(
    "--local",
    is_flag=True,
    help="Also create the DLQ (and --queue queues) on a local emulator (AWS_ENDPOINT_URL).",
)
@click.option("--queue", "queues", multiple=True, help="With --local: also create this queue.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def setup(lambda_timeout: int | None, local: bool, queues: tuple[str, ...], as_json: bool) -> None:
    """Create the ledger table (and the parking queue); check the DLQ, changing nothing.

    Exits 1 when a finding is a failure to fix (e.g. EventBridge may not send to the DLQ).
    """
    config = settings()
    local_urls: dict[str, str] = {}
    if queues and not local:
        raise ConfigurationError("--queue creates queues on a local emulator only: add --local")
    if local:
        from devstack.queues import create_local_dlq  # the dev stack, on request only

        created = create_local_dlq(aws_client("sqs", config), config.dlq_queue_url, extra=queues)
        local_urls = {name: queue.url for name, queue in created.items()}
    result = provision(
        config,
        lambda_timeout=lambda_timeout,
        receive_visibility=RECEIVE_VISIBILITY_SECONDS,
    )
    out = Output(as_json=as_json)
    if as_json:
        out.json(
            {
                "ok": not result.failed,
                "ledger_table": result.ledger_table,
                "table_created": result.table_created,
                "dlq_url": result.dlq_url,
                "parking_queue_url": result.parking_url,
                "parking_created": result.parking_created,
                "local_queues": local_urls,
                "findings": [asdict(f) for f in result.findings],
            }
        )
    else:
        table = "created" if result.table_created else "already there"
        out.line(f"ledger table {result.ledger_table}: {table}")
        if local_urls:
            out.table("local queues", ["name", "url"], sorted(local_urls.items()))
        out.table(
            "setup findings",
            ["check", "result", "found", "fix"],
            [(f.check, f.severity.value, f.found, f.fix or "-") for f in result.findings],
        )
    if result.failed:
        raise SystemExit(1)
