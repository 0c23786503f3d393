"""How fast `dlq-replay export` writes, and whether its memory stays flat: rows/s, peak.

Mode: the ledger written first, then one export; no worker.

Fills a ledger table with `--items` items (the ledger's own `received_item`, written in
batches of 25), then exports every one of them as the command does (`dlq.redrive.select`
over the by-status index, page by page, into `dlq.export`) to a discarding stream, under
tracemalloc (rows/s are measured in a run without it, which slows Python down).
Prints the backend line, rows per second and the peak memory the export allocated;
writes them as JSON.

    .venv/bin/python -m bench.export                    # 20,000 items, dynalite if node
    .venv/bin/python -m bench.export --items 50000 --dynamodb moto
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import boto3

from bench import backends
from bench.backends import NODE_PREFIX, dynamodb_backend
from bench.common import RESULTS_DIR, write_results
from devstack.moto_server import MotoServer
from dlq.events import DlqError, DlqMessage, EventBridgeEvent, EventKey, ParsedEvent
from dlq.export import export
from dlq.ledger import Ledger, Status, marshal
from dlq.ledger.model import received_item
from dlq.redrive import RedriveFilter, select

RESULTS = RESULTS_DIR / "export.json"
TARGET = "arn:aws:sqs:us-east-1:111122223333:crm-events"
RULE = "arn:aws:events:us-east-1:111122223333:rule/genesys/crm"
_EVERY = frozenset(Status)


def fill(client: Any, table: str, count: int) -> None:
    """`count` received items of one target, as the ingest writes them (25 a request)."""
    now = time.time() - count / 1000
    batch: list[dict[str, Any]] = []
    for n in range(count):  # a millisecond apart, as a busy ingest writes them
        batch.append({"PutRequest": {"Item": marshal.typed(_item(now + n / 1000))}})
        if len(batch) == 25:
            _write(client, table, batch)
            batch = []
    if batch:
        _write(client, table, batch)


def measure(ledger: Ledger, *, format: str = "csv", trace: bool = True) -> dict[str, float]:
    """Export every item to a discarding stream: rows, seconds, rows/s, and the peak bytes
    the export allocated (`trace`: under tracemalloc, which slows it; else 0)."""
    sink = _Discard()
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    try:
        rows = export(
            select(ledger, RedriveFilter(statuses=tuple(sorted(_EVERY))), allowed=_EVERY),
            sink,
            format=format,
        )
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory() if trace else (0, 0)
    finally:
        tracemalloc.stop()
    return {
        "rows": rows,
        "seconds": round(seconds, 3),
        "rows_per_second": round(rows / seconds, 1) if seconds else 0.0,
        "peak_bytes": peak,
    }


class _Discard(io.StringIO):
    """A text stream that keeps nothing (what a pipe to a file costs this process)."""

    def write(self, text: str) -> int:
        return len(text)


def _item(now: float) -> dict[str, Any]:
    event_id = str(uuid.uuid4())
    conversation = str(uuid.uuid4())
    body = (
        f'{{"version": "0", "id": "{event_id}", "detail-type": "v2.conversation", '
        '"source": "aws.partner/genesys.com/cloud/org/crm", "account": "111122223333", '
        '"time": "2026-12-01T10:00:00Z", "region": "us-east-1", "resources": [], '
        f'"detail": {{"eventBody": {{"conversationId": "{conversation}"}}, "pad": "{"x" * 800}"}}}}'
    )
    event = EventBridgeEvent.model_validate_json(body)
    parsed = ParsedEvent(
        key=EventKey(event_id, TARGET, RULE),
        event=event,
        genesys=None,
        conversation_id=conversation,
        participant_id=None,
    )
    message = DlqMessage(
        message_id=str(uuid.uuid4()),
        receipt_handle="-",
        body=body,
        error=DlqError(rule_arn=RULE, target_arn=TARGET, error_code="ERROR_FROM_TARGET"),
        receive_count=1,
        sent_at=None,
    )
    return received_item(parsed, message, now=now, ttl_days=1)


def _write(client: Any, table: str, batch: list[dict[str, Any]]) -> None:
    request = {table: batch}
    while request:
        request = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}


def _client(url: str) -> Any:
    return boto3.session.Session().client(
        "dynamodb",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def run(requested: str, items: int, *, prefix: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="bench-export-") as work:
        workdir = Path(work)
        with dynamodb_backend(requested, workdir, prefix=prefix) as backend:
            print(backend.message, flush=True)
            if backend.url:
                return backend.describe(), _bench(_client(backend.url), backend, items)
            with MotoServer(workdir / "moto") as moto:
                return backend.describe(), _bench(_client(moto.url), backend, items)


def _bench(client: Any, backend: backends.DynamoDbBackend, items: int) -> dict[str, Any]:
    table = "bench-export"
    backends.create_ledger(client, table, backend)
    started = time.perf_counter()
    fill(client, table, items)
    filled = time.perf_counter() - started
    figures: dict[str, Any] = {"items": items, "fill_seconds": round(filled, 1)}
    for format in ("csv", "jsonl"):
        speed = measure(Ledger(client, table), format=format, trace=False)
        memory = measure(Ledger(client, table), format=format)
        figures[format] = {**speed, "peak_bytes": memory["peak_bytes"]}
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.export", description=__doc__.splitlines()[0])
    backends.add_option(parser)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--node-prefix", type=Path, default=NODE_PREFIX)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    backend, figures = run(args.dynamodb, args.items, prefix=args.node_prefix)
    write_results(args.output, {"dynamodb_backend": backend, **figures})
    for format in ("csv", "jsonl"):
        f = figures[format]
        print(
            f"{format}: {f['rows']} rows in {f['seconds']} s = {f['rows_per_second']} rows/s, "
            f"peak {f['peak_bytes'] / 1e6:.1f} MB allocated by the export"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
