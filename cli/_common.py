"""What every `dlq-replay` command shares: one-line errors, the settings, the ledger."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from cli.output import Output
from dlq.aws import aws_client
from dlq.errors import ConfigurationError
from dlq.ledger import Ledger
from dlq.settings import Settings, load_settings

F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(command: F) -> F:
    """Configuration problems end the command with one line, not a traceback."""

    @wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ConfigurationError as exc:
            Output().error(str(exc))
            sys.exit(2)

    return run  # type: ignore[return-value]


def settings() -> Settings:
    return load_settings()


def ledger_of(config: Settings) -> Ledger:
    """The ledger table the settings name."""
    return Ledger(
        aws_client("dynamodb", config), config.ledger_table, ttl_days=config.ledger_ttl_days
    )
