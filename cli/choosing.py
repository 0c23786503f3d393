"""How an operator chooses ledger items: the options `redrive`, `resolve` and `export` share.

One set of options, one filter (`dlq.redrive.RedriveFilter`) and one selection
(`dlq.redrive.select`, page by page): what `redrive --target-arn X --since 2h` chooses,
`resolve` and `export` choose alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import click

from cli.when import WHEN, WHEN_HELP
from dlq.clock import moment
from dlq.codes import DLQ_ERROR_CODES
from dlq.ledger import Status
from dlq.redrive import RedriveFilter

F = TypeVar("F", bound=Callable[..., Any])


def item_filters(statuses: Iterable[Status], *, default: str) -> Callable[[F], F]:
    """The options that choose items among `statuses` (`default` says which when none is
    given); the command takes them as keyword arguments, for `chosen`."""
    options = [
        click.option(
            "--status",
            "statuses",
            multiple=True,
            type=click.Choice(sorted(s.value for s in statuses)),
            help=f"Which statuses (default: {default}).",
        ),
        click.option(
            "--error-code",
            metavar="CODE",
            help="Only items whose last error code is this: the replay's own (HTTP503, "
            "NotARuleTarget...), as `status` counts them and `inspect` shows them.",
        ),
        click.option(
            "--dlq-error-code",
            metavar="CODE",
            help="Only items whose DLQ ERROR_CODE (EventBridge's: ERROR_FROM_TARGET...) is this.",
        ),
        click.option("--target-arn", help="Only items for this target."),
        click.option("--rule-arn", help="Only items from this rule."),
        click.option("--detail-type", help="Only items of this detail-type."),
        click.option("--conversation-id", help="Only items of this conversation."),
        click.option(
            "--since", type=WHEN, metavar="WHEN", help="Only items last updated after WHEN."
        ),
        click.option(
            "--until",
            type=WHEN,
            metavar="WHEN",
            help=f"Only items last updated before WHEN. {WHEN_HELP}",
        ),
    ]

    def decorate(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def chosen(
    defaults: Iterable[Status],
    *,
    statuses: tuple[str, ...],
    error_code: str | None,
    dlq_error_code: str | None,
    target_arn: str | None,
    rule_arn: str | None,
    detail_type: str | None,
    conversation_id: str | None,
    since: float | None,
    until: float | None,
) -> RedriveFilter:
    """The filter the options name (`statuses` empty: `defaults`); a window that ends
    before it starts is refused, and a DLQ code given as the replay's is noted."""
    if since is not None and until is not None and until <= since:
        raise click.BadParameter("it must be later than --since", param_hint="--until")
    if error_code in DLQ_ERROR_CODES:
        click.echo(
            f"note: {error_code} is an EventBridge ERROR_CODE; --error-code takes the replay's "
            f"own codes (`status` lists them); for the DLQ's, use --dlq-error-code {error_code}",
            err=True,
        )
    return RedriveFilter(
        statuses=tuple(Status(s) for s in statuses) or tuple(sorted(defaults)),
        error_code=error_code,
        dlq_error_code=dlq_error_code,
        target_arn=target_arn,
        rule_arn=rule_arn,
        detail_type=detail_type,
        conversation_id=conversation_id,
        since=moment(since) if since is not None else None,
        until=moment(until) if until is not None else None,
    )
