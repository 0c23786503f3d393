"""JSON log lines, one object per line, the same in workers, the poller and the Lambda.

Redaction is by construction: only the context fields named in `FIELDS` are written,
and every text goes through the process's scrubber (`dlq.redact`): every secret the
process read (settings, secret stores, Genesys tokens, API-destination connections) and
anything shaped like a credential.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, NoReturn, TextIO

from dlq.redact import REDACTED, remember, scrub

#: The context a log line may carry (passed with `extra={...}`).
FIELDS = (
    "event_id",
    "target_arn",
    "conversation_id",
    "participant_id",
    "attempt",
    "task_id",
    "outcome",
    "status",
    "correlation_id",
    "sqs_message_id",
    "reason",
    "error",
    "retry_in",
    "count",
    "duration_ms",
)

__all__ = ["FIELDS", "MISCONFIGURED", "REDACTED", "JsonFormatter", "configure_logging", "stop"]

#: The exit status of a process that cannot start as configured (the CLI's too).
MISCONFIGURED = 2


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object with a fixed set of context fields.

    `secrets` are scrubbed by this formatter besides the process's own (`dlq.redact`).
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = tuple(s for s in secrets if s)

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": self.scrub(record.getMessage()),
        }
        for name in FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = self.scrub(value) if isinstance(value, str) else value
        if record.exc_info:
            line["exception"] = self.scrub(self.formatException(record.exc_info))
        return json.dumps(line, default=str)

    def scrub(self, text: str) -> str:
        return scrub(text, also=self._secrets)


def configure_logging(
    *, level: str = "INFO", secrets: Iterable[str] = (), stream: TextIO | None = None
) -> None:
    """Send every log record of the process to `stream` (stderr) as JSON lines.

    `secrets` join the process's scrubber (`dlq.redact.remember`).
    """
    remember(*secrets)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(secrets))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # botocore and urllib3 debug lines can carry signed headers; keep them quiet.
    for noisy in ("botocore", "boto3", "urllib3", "kombu", "amqp"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # Celery's "Task ... received" line says nothing that the task's own outcome line and
    # Celery's "succeeded" line do not; at INFO it is a third of a worker's log. Shown at
    # DEBUG. (Celery reads the level once, as its consumer starts.)
    received = logging.getLogger("celery.worker.strategy")
    received.setLevel(logging.WARNING if root.level >= logging.INFO else root.level)


def stop(error: Exception, *, logger: str = "dlq-replay") -> NoReturn:
    """End a process that cannot start as configured: `error`'s one line, at ERROR.

    A bad setting found as a worker, beat or the poller starts is written as their
    other lines are (JSON on stderr, scrubbed), before any logging of theirs is set up,
    and the process exits with `MISCONFIGURED`, the CLI's status for it: no traceback,
    and no broker connection retried in a loop with settings that cannot work.
    """
    if not logging.getLogger().handlers:
        configure_logging()
    logging.getLogger(logger).error(str(error), extra={"outcome": "misconfigured"})
    raise SystemExit(MISCONFIGURED)
