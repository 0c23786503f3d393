"""An operator's access to customer data, in the log: what was done, by whom, to which events.

One WARNING line on the `dlq.audit` logger per action, written before the data is shown
or changed, so a failure after it still leaves the record. A command run from a shell logs
it as a JSON line on stderr (`dlq.logs`); a process that configured its own logging keeps
it (the line goes wherever its handlers send it).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import click

from dlq.logs import configure_logging
from dlq.operator import operator_identity
from dlq.settings import Settings

_LOG = logging.getLogger("dlq.audit")


#: `--operator NAME`: who acts, when not the caller's AWS identity (`dlq.operator`).
OPERATOR = click.option(
    "--operator",
    metavar="NAME",
    help="Who is acting, as the history and the log record it (default: the caller's AWS "
    "identity, sts:GetCallerIdentity's ARN, else the OS user).",
)


def record_access(
    config: Settings,
    action: str,
    *,
    event_ids: Sequence[str],
    conversation_ids: Sequence[str],
    operator: str | None = None,
) -> str:
    """Log that the operator did `action` to these events; the operator's identity
    (`operator` as given, else `operator_identity`)."""
    if not logging.getLogger().handlers:
        configure_logging()
    operator = operator.strip() if operator and operator.strip() else operator_identity(config)
    conversations = sorted({c for c in conversation_ids if c})
    _LOG.warning(
        "%s by %s: events %s",
        action,
        operator,
        ", ".join(event_ids),
        extra={
            "outcome": action,
            "count": len(event_ids),
            "event_id": event_ids[0] if len(event_ids) == 1 else None,
            "conversation_id": conversations[0] if len(conversations) == 1 else None,
        },
    )
    return operator
