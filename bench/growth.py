"""What the periodic reads cost as the ledger grows: the reconciler, the sampler, `status`.

A ledger of `--items` items (100,000; `--quick` 10,000) on the DynamoDB server of
`--dynamodb`, a tenth of them changed in the last hour, four events a conversation,
statuses as a month of operation leaves them (mostly `replayed`, some `failed`,
`exhausted`, `resolved`, and `retry_scheduled` ones due far ahead). Mode: no workers; the
reads themselves, through the product's `Ledger` on one boto3 client whose Query calls ask
for their consumed capacity (`ReturnConsumedCapacity=TOTAL`, added by a botocore
handler: the product does not ask for it).

- the reconciler's pass, as `celery beat` runs it every minute: the first one (no
  high-water mark, as after a Redis flush: the whole tracking window), one when tracking
  has caught up, and one after `--changes` items changed since: its read units per item
  changed since its last pass;
- the metrics sampler's pass (one a minute at REPLAY_METRICS_SAMPLE_SECONDS=60): a
  sample reads the status counts kept in Redis; its recount from the table (first, then
  every REPLAY_TALLY_RECOUNT_SECONDS, 6 h) is measured apart and spread per minute;
- `status`: the seconds its report takes, and its read units (and on a flushed Redis,
  where it recounts first).

    .venv/bin/python -m bench.growth            # 100,000 items
    .venv/bin/python -m bench.growth --quick    # 10,000 items
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from bench import backends
from bench.common import (
    RESULTS_DIR,
    BenchStack,
    bench_stack,
    lambda_record,
    machine,
    write_results,
)
from devstack.synthetic import generate
from dlq.aws import aws_client
from dlq.clock import iso
from dlq.events import DlqMessage, parse_dlq_message
from dlq.ledger import Ledger, Status, marshal
from dlq.metrics.report import status_report
from dlq.metrics.sampling import LEASE_PREFIX, Sampler
from dlq.metrics.tally import RECOUNT_SECONDS as RECOUNT_EVERY
from dlq.metrics.tally import TALLY_PREFIX
from dlq.reconcile import Reconciler
from dlq.tracking import TRACKED_PREFIX, Tracker, TrackingNews

RESULTS = RESULTS_DIR / "growth.json"
HOUR = 3600.0
DAY = 24 * HOUR
#: The issue's goals (issue 22), for the printout.
GOALS = {
    "reconciler_read_units_per_changed_item": 2.0,
    "sampler_read_units_per_minute": 100.0,
    "status_seconds": 0.5,
}
#: How a month of operation leaves the ledger's statuses.
OLD_MIX = ((Status.REPLAYED, 0.94), (Status.FAILED, 0.03), (Status.EXHAUSTED, 0.02),
           (Status.RESOLVED, 0.01))  # fmt: skip
RECENT_MIX = ((Status.REPLAYED, 0.90), (Status.FAILED, 0.04), (Status.EXHAUSTED, 0.03),
              (Status.RETRY_SCHEDULED, 0.03))  # fmt: skip
EVENTS_PER_CONVERSATION = 4


class ReadUnits:
    """Sums the read units a client's Query calls consumed (asked for on each call)."""

    def __init__(self, client: Any) -> None:
        self.units = 0.0
        self.queries = 0
        events = client.meta.events
        events.register("before-parameter-build.dynamodb.Query", self._ask)
        events.register("after-call.dynamodb.Query", self._count)

    def _ask(self, params: dict[str, Any], **_: Any) -> None:
        params["ReturnConsumedCapacity"] = "TOTAL"

    def _count(self, parsed: Mapping[str, Any], **_: Any) -> None:
        self.queries += 1
        self.units += float(parsed.get("ConsumedCapacity", {}).get("CapacityUnits", 0.0))

    @contextmanager
    def counting(self) -> Iterator[dict[str, float]]:
        """The units and queries of the block, in the dict yielded (filled on exit)."""
        before, queries = self.units, self.queries
        figures: dict[str, float] = {}
        started = time.perf_counter()
        yield figures
        figures["seconds"] = round(time.perf_counter() - started, 3)
        figures["read_units"] = round(self.units - before, 1)
        figures["queries"] = self.queries - queries


def template_item(ledger: Ledger, client: Any, table: str) -> dict[str, Any]:
    """A real `received` item, as the ingest writes one, in DynamoDB's wire format."""
    synthetic = generate(conversations=1, events_per_conversation=1, presence_events=0)
    message = DlqMessage.from_lambda_record(lambda_record(synthetic.messages[0]))
    ledger.put_received(parse_dlq_message(message), message)
    [item] = client.scan(TableName=table)["Items"]
    return dict(item)


def make_item(template: Mapping[str, Any], *, status: Status, updated: float, conversation: str,
              rng: random.Random) -> dict[str, Any]:  # fmt: skip
    """The template as another event of `conversation`, in `status` since `updated`."""
    item = dict(template)
    values: dict[str, Any] = {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
        "status": status.value,
        "updated_at": iso(updated),
        "received_at": iso(updated - 60),
        "conversation_id": conversation,
    }
    if status is Status.RETRY_SCHEDULED:
        values["next_attempt_at"] = updated + 30 * DAY  # far ahead: nothing to requeue
    item.update(marshal.values(**values).items())
    return {key.lstrip(":"): value for key, value in item.items()}


def fill(stack: BenchStack, table: str, template: Mapping[str, Any], *, items: int,
         recent: int, now: float, seed: int = 20261206) -> dict[str, str]:  # fmt: skip
    """Write the ledger: `recent` items changed 2 to 57 minutes ago, the rest up to 90 days
    ago. Answers each recent conversation's newest `updated_at`."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    newest: dict[str, str] = {}
    for n in range(items):
        is_recent = n < recent
        conversation = f"conv-{n // EVENTS_PER_CONVERSATION:07d}"
        if is_recent:
            updated = now - rng.uniform(120, 57 * 60)
            status = _pick(RECENT_MIX, rng)
        else:
            updated = now - rng.uniform(2 * HOUR, 90 * DAY)
            status = _pick(OLD_MIX, rng)
        row = make_item(template, status=status, updated=updated, conversation=conversation,
                        rng=rng)  # fmt: skip
        if is_recent:
            newest[conversation] = max(newest.get(conversation, ""), row["updated_at"]["S"])
        rows.append(row)
    batches = [rows[i : i + 25] for i in range(0, len(rows), 25)]

    def write(batch: list[dict[str, Any]]) -> None:
        client = stack.dynamodb
        pending = {table: [{"PutRequest": {"Item": row}} for row in batch]}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, batches))
    return newest


def _pick(mix: Sequence[tuple[Status, float]], rng: random.Random) -> Status:
    roll, total = rng.random(), 0.0
    for status, share in mix:
        total += share
        if roll < total:
            return status
    return mix[-1][0]


def reconciler(stack: BenchStack, ledger: Ledger) -> Reconciler:
    """The beat's reconciler on this ledger; news is noted, never sent."""
    news = TrackingNews(stack.redis, lambda conversation, delay: None, debounce_seconds=5.0)
    # The catch-up reads only what tracking last wrote (Redis): no Genesys client needed.
    tracker = Tracker(ledger=ledger, client=cast(Any, None), directory=cast(Any, None),
                      cache=stack.redis, prefix="dlqReplay")  # fmt: skip
    return Reconciler(ledger=ledger, enqueuer=cast(Any, None), news=news, tracker=tracker,
                      lock_client=stack.redis, queue_depth=lambda: 1)  # fmt: skip


def tracked(stack: BenchStack, newest: Mapping[str, str]) -> None:
    """Tracking has caught up: each conversation's summary covers its newest outcome."""
    pipe = stack.redis.pipeline(transaction=False)
    for conversation, covered in newest.items():
        record = {"digest": "bench", "covered": covered, "error": None}
        pipe.set(TRACKED_PREFIX + conversation, json.dumps(record))
        pipe.delete(f"dlq:track:pending:{conversation}")
    pipe.execute()


def measure(stack: BenchStack, *, items: int, changes: int) -> dict[str, Any]:
    table = stack.fresh_round("growth")
    client = aws_client("dynamodb", stack.settings, validate=False)
    units = ReadUnits(client)
    ledger = Ledger(client, table)
    template = template_item(ledger, stack.dynamodb, table)
    stack.dynamodb.delete_item(TableName=table, Key={"event_id": template["event_id"],
                                                     "route": template["route"]})  # fmt: skip
    recent = items // 10
    started = time.perf_counter()
    newest = fill(stack, table, template, items=items, recent=recent, now=time.time())
    fill_seconds = time.perf_counter() - started
    beat = reconciler(stack, ledger)
    passes: dict[str, dict[str, float]] = {}
    with units.counting() as passes["first"]:  # no mark: the whole window
        passes["first"]["marked"] = beat.run()["tracking"]
    tracked(stack, newest)
    with units.counting() as passes["caught_up"]:
        passes["caught_up"]["marked"] = beat.run()["tracking"]
    rng = random.Random(7)
    now = time.time()
    rows = [make_item(template, status=Status.REPLAYED, updated=now, rng=rng,
                      conversation=f"new-{n // EVENTS_PER_CONVERSATION:05d}")
            for n in range(changes)]  # fmt: skip
    for start in range(0, len(rows), 25):
        requests = [{"PutRequest": {"Item": row}} for row in rows[start : start + 25]]
        stack.dynamodb.batch_write_item(RequestItems={table: requests})
    with units.counting() as passes["changed"]:
        passes["changed"]["marked"] = beat.run()["tracking"]
    sampler = Sampler(stack.redis, table, count_status=ledger.count_by_status, queue_depth=None,
                      interval=60.0, recount_every=RECOUNT_EVERY)  # fmt: skip
    # The table was written around the ledger: no counts kept yet, so the first sample
    # recounts (as after a Redis flush, and every REPLAY_TALLY_RECOUNT_SECONDS).
    with units.counting() as recount:
        sampler.sample_once()
    stack.redis.delete(LEASE_PREFIX + table)  # the next minute's lease
    with units.counting() as sample:
        sampler.sample_once()
    with units.counting() as status:
        status_report(ledger, stack.redis, table, now=time.time())
    stack.redis.delete(TALLY_PREFIX + table)
    with units.counting() as status_recounting:
        status_report(ledger, stack.redis, table, now=time.time())
    per_minute = sample["read_units"] + recount["read_units"] * 60.0 / RECOUNT_EVERY
    statuses: Counter[str] = Counter()
    for row in rows:
        statuses[row["status"]["S"]] += 1
    per_changed = passes["changed"]["read_units"] / changes if changes else 0.0
    return {
        "mode": "reads alone: no workers; the ledger written first, then each pass once",
        "dynamodb_backend": stack.backend.describe(),
        "items": items + changes,
        "changed_items": recent + changes,
        "changed_since_last_pass": changes,
        "fill_seconds": round(fill_seconds, 1),
        "reconciler_passes": passes,
        "reconciler_read_units_per_pass": passes["changed"]["read_units"],
        "reconciler_read_units_first_pass": passes["first"]["read_units"],
        "reconciler_read_units_per_changed_item": round(per_changed, 3),
        "sampler_read_units_per_minute": round(per_minute, 2),
        "sampler_read_units_per_sample": sample["read_units"],
        "sampler_queries_per_sample": sample["queries"],
        "recount_read_units": recount["read_units"],
        "recount_seconds": recount["seconds"],
        "recount_every_seconds": RECOUNT_EVERY,
        "status_seconds": status["seconds"],
        "status_read_units": status["read_units"],
        "status_seconds_recounting": status_recounting["seconds"],
        "goals": GOALS,
    }


def print_growth(figures: Mapping[str, Any]) -> None:
    passes = figures["reconciler_passes"]
    print(
        f"  growth: {figures['items']} items, {figures['changed_items']} changed in the last "
        f"hour (written in {figures['fill_seconds']} s)"
    )
    for name, numbers in passes.items():
        print(
            f"  reconciler pass {name:<10} {numbers['read_units']:>9.1f} read units, "
            f"{numbers['queries']:>4.0f} queries, {numbers['seconds']:>6.2f} s, "
            f"{numbers['marked']:.0f} conversations marked"
        )
    for name, goal in figures["goals"].items():
        value = figures[name]
        mark = "ok" if value <= goal else "ABOVE"
        print(f"  {name:<40} {value:>9}   goal <= {goal:<6} {mark}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.growth", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 items")
    parser.add_argument("--items", type=int, default=None, help="default 100,000")
    parser.add_argument("--changes", type=int, default=100)
    backends.add_option(parser)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    items = args.items or (10_000 if args.quick else 100_000)
    with bench_stack("growth", dynamodb=args.dynamodb) as stack:
        figures = {
            "benchmark": "growth",
            "machine": machine(),
            **measure(stack, items=items, changes=args.changes),
        }
    write_results(args.output, figures)
    print_growth(figures)
    print(f"  written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
