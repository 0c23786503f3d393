"""JSON log lines, one object per line, the same in workers, the poller and the Lambda.

Redaction is by construction: only the context fields named in `FIELDS` are written,
and every text is scrubbed of bearer/basic credentials and of the secret values the
process registered with `configure_logging(secrets=...)`.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

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
_CREDENTIALS = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
REDACTED = "[redacted]"


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object with a fixed set of context fields."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = tuple(s for s in secrets if s and len(s) >= 4)

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
        text = _CREDENTIALS.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text


def configure_logging(
    *, level: str = "INFO", secrets: Iterable[str] = (), stream: TextIO | None = None
) -> None:
    """Send every log record of the process to `stream` (stderr) as JSON lines."""
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
