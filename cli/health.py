"""`dlq-replay health --service worker|beat|poller`: a container's health check.

Reads the service's heartbeat file (`dlq.health`), which the process touches while it
does its job, on this machine: no broker round trip, no Celery broadcast per probe.
Exits 0 when the service proved its work within `--max-age` seconds, else 1 with one
line saying why (a health check's only statuses: 0 healthy, 1 unhealthy).
"""

from __future__ import annotations

import sys

import click

from dlq.errors import ConfigurationError
from dlq.health import DEFAULT_MAX_AGE_SECONDS, SERVICES, unhealthy
from dlq.settings import load_settings

UNHEALTHY = 1


@click.command()
@click.option("--service", type=click.Choice(SERVICES), required=True, help="Whose work.")
@click.option(
    "--max-age",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_MAX_AGE_SECONDS,
    show_default=True,
    help="Seconds since the last proof of work beyond which the service is unhealthy.",
)
def health(service: str, max_age: float) -> None:
    """Exit 0 if this container's worker, beat or poller did its job lately, else 1."""
    try:
        directory = load_settings().replay_health_dir
    except ConfigurationError as exc:
        click.echo(f"unhealthy: {exc}", err=True)
        sys.exit(UNHEALTHY)
    reason = unhealthy(service, directory, max_age=max_age)
    if reason is not None:
        click.echo(f"unhealthy: {reason}", err=True)
        sys.exit(UNHEALTHY)
    click.echo(f"healthy: the {service} proved its work within {max_age:g} s")
