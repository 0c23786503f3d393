"""The end-to-end harness: a real Celery worker over the real stand-ins, per test configured.

The worker runs in this process (`celery.contrib.testing`), consuming the real Redis;
AWS is the moto server; Genesys is the simulator. Each test gets its own ledger table,
queues and settings (through the environment, as in production), and waits on the
ledger for outcomes, never on the clock.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from helpers import ORG, SIM_CLIENT_ID, SIM_CLIENT_SECRET, dlq_attributes

from devstack.http_sink import HttpSink
from dlq.aws import aws_client
from dlq.boundary import TrustBoundary
from dlq.ledger import FINAL_STATUSES, Ledger, LedgerItem, create_table
from dlq.metrics.tally import StatusTally
from dlq.redisclient import redis_client
from dlq.settings import load_settings
from ingest.frontdoor import FrontDoor
from ingest.poller import Poller
from tasks.runtime import environment

#: What every end-to-end test runs with unless it says otherwise: fast retries.
__all__ = ["BASE_ENV", "HttpSink", "Stack", "configured"]

BASE_ENV = {
    "REPLAY_BACKOFF_BASE": "1",
    "REPLAY_BACKOFF_MAX": "4",
    "REPLAY_MAX_ATTEMPTS": "6",
    "REPLAY_TRACKING_DEBOUNCE_SECONDS": "0.5",
    "REPLAY_RECONCILE_GRACE_SECONDS": "0.5",
    "GENESYS_RATE_LIMIT_PER_MINUTE": "60000",
    "GENESYS_CONNECT_TIMEOUT": "2",
    "GENESYS_READ_TIMEOUT": "2",
    # The stacks' rules are on custom buses, `genesys-<unique>` (Genesys events forwarded
    # there, as some users have them): allowed explicitly, as those users must.
    "REPLAY_ALLOWED_BUSES": "genesys-*",
    "GENESYS_ORG_ID": ORG,
}


@dataclass
class Stack:
    """One test's slice of the stack: its table, DLQ, target queue, rule and settings.

    As a user has them before the tool arrives: a rule on an event bus whose target is the
    queue, and whose targets `put_dlq` extends with any other ARN a test dead-letters for.
    """

    unique: str
    sim: Any
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.settings = load_settings(_env_file=None)
        self.sqs = aws_client("sqs", self.settings)
        self.dynamodb = aws_client("dynamodb", self.settings)
        create_table(self.dynamodb, self.settings.ledger_table)
        # As the product's front doors and workers build it: its status changes move the
        # fleet's status counts (`dlq.metrics.tally`).
        self.ledger = Ledger(
            self.dynamodb,
            self.settings.ledger_table,
            moves=StatusTally(redis_client(self.settings), self.settings.ledger_table),
        )
        self.dlq_url = self.queue(f"dlq-{self.unique}")
        self.target_url = self.queue(f"target-{self.unique}")
        self.target_arn = self.arn_of(self.target_url)
        self.events = aws_client("events", self.settings)
        self.bus = f"genesys-{self.unique}"
        self.events.create_event_bus(Name=self.bus)
        self.rule_name = f"conversations-to-crm-{self.unique}"
        self.rule_arn = str(
            self.events.put_rule(
                Name=self.rule_name,
                EventBusName=self.bus,
                EventPattern=json.dumps({"source": [{"prefix": "aws.partner/genesys.com"}]}),
            )["RuleArn"]
        )
        self._targets: set[str] = set()
        self.add_target(self.target_arn)

    def add_target(self, arn: str, **parameters: Any) -> None:
        """Make `arn` a target of the stack's rule (with `Input`... parameters, if any)."""
        target = {"Id": f"t{len(self._targets)}", "Arn": arn, **parameters}
        self.events.put_targets(Rule=self.rule_name, EventBusName=self.bus, Targets=[target])
        self._targets.add(arn)

    def queue(self, name: str) -> str:
        return str(self.sqs.create_queue(QueueName=name)["QueueUrl"])

    def arn_of(self, queue_url: str) -> str:
        attributes = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        return str(attributes["Attributes"]["QueueArn"])

    def put_dlq(self, event: dict[str, Any], target_arn: str | None = None) -> None:
        """Dead-letter `event` for `target_arn` (a target of the stack's rule, made so)."""
        target = target_arn or self.target_arn
        if target not in self._targets:
            self.add_target(target)
        self.sqs.send_message(
            QueueUrl=self.dlq_url,
            MessageBody=json.dumps(event),
            MessageAttributes=dlq_attributes(target, rule_arn=self.rule_arn),
        )

    @property
    def boundary(self) -> TrustBoundary:
        """The trust boundary the stack's settings draw (its bus is allowed)."""
        return TrustBoundary.from_settings(self.settings)

    def ingest(self) -> dict[str, int]:
        """Drain the DLQ through the poller (the real front door)."""
        from tasks.application import app
        from tasks.producer import CeleryEnqueuer

        door = FrontDoor(ledger=self.ledger, enqueuer=CeleryEnqueuer(app), boundary=self.boundary)
        poller = Poller(sqs=self.sqs, queue_url=self.dlq_url, front_door=door, wait_seconds=0)
        return dict(poller.run(until_empty=True).counts)

    def wait_final(
        self, count: int, *, timeout: float = 60.0, tick: Callable[[], object] | None = None
    ) -> list[LedgerItem]:
        """The ledger once `count` items are final; fails with what is still open.

        `tick` runs on every look (e.g. a reconciler pass, as beat would run it).
        """
        deadline = time.monotonic() + timeout
        items: list[LedgerItem] = []
        while time.monotonic() < deadline:
            if tick is not None:
                tick()
            items = list(self.ledger.scan())
            if len(items) >= count and all(i.status in FINAL_STATUSES for i in items):
                return items
            time.sleep(0.2)
        open_items = [(i.event_id, i.status, i.last_error) for i in items]
        raise AssertionError(f"not final within {timeout:.0f} s: {open_items}")

    def target_messages(self, queue_url: str | None = None) -> list[str]:
        """Every body the target queue received (drained)."""
        bodies: list[str] = []
        while True:
            response = self.sqs.receive_message(
                QueueUrl=queue_url or self.target_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            )
            messages = response.get("Messages", [])
            if not messages:
                return bodies
            for message in messages:
                bodies.append(message["Body"])
                self.sqs.delete_message(
                    QueueUrl=queue_url or self.target_url, ReceiptHandle=message["ReceiptHandle"]
                )


#: Environment variables for the in-process worker's runtime, rebuilt from them.
configured = environment


def sim_env(sim: Any) -> dict[str, str]:
    """The base environment with the Genesys settings of a running simulator."""
    return {
        **BASE_ENV,
        "GENESYS_API_BASE_URL": sim.url,
        "GENESYS_LOGIN_BASE_URL": sim.url,
        "GENESYS_CLIENT_ID": SIM_CLIENT_ID,
        "GENESYS_CLIENT_SECRET": SIM_CLIENT_SECRET,
    }


@contextmanager
def in_process_worker(*, concurrency: int = 8, **options: Any) -> Iterator[None]:
    """A real worker on the replay, verify and track queues, as deployed (in-process)."""
    from celery.contrib.testing.worker import start_worker

    from tasks.application import app
    from tasks.names import REPLAY_QUEUE, TRACK_QUEUE, VERIFY_QUEUE

    with start_worker(
        app,
        pool="threads",
        concurrency=concurrency,
        perform_ping_check=False,
        queues=[REPLAY_QUEUE, VERIFY_QUEUE, TRACK_QUEUE],
        loglevel="WARNING",
        shutdown_timeout=30,
        **options,
    ):
        yield
