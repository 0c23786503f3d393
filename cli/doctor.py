"""`dlq-replay doctor`: check every dependency with the real configuration."""

from __future__ import annotations

from dataclasses import asdict

import click

from cli._common import friendly_errors, settings
from cli.output import Output
from dlq.doctor import diagnose
from dlq.doctor.queue import DEFAULT_LAMBDA_TIMEOUT
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
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def doctor(lambda_timeout: int | None, as_json: bool) -> None:
    """Check Redis, the ledger, the DLQ, Genesys and the rules; exit 1 if anything fails.

    Changes nothing: the DLQ is peeked at (up to 10 messages, visible again at once).
    """
    checks = diagnose(
        settings(),
        lambda_timeout=lambda_timeout,
        receive_visibility=RECEIVE_VISIBILITY_SECONDS,
    )
    failed = [c for c in checks if c.ok is False]
    out = Output(as_json=as_json)
    if as_json:
        out.json(
            {
                "ok": not failed,
                "checks": [{**asdict(c), "status": c.status} for c in checks],
            }
        )
    else:
        out.table(
            "doctor",
            ["check", "result", "detail", "fix"],
            [(c.name, c.status, c.detail, c.fix or "-") for c in checks],
        )
        verdict = f"{len(failed)} of {len(checks)} checks failed" if failed else "all good"
        out.line(verdict, style="bold red" if failed else "bold green")
    if failed:
        raise SystemExit(1)
