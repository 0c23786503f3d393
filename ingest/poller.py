"""The long-poll front door for containers (`dlq-replay poll`).

Each receiver long-polls the DLQ (20 s, batches of 10, every attribute), hands each
message to the ingest core, then batch-deletes exactly the messages whose ledger item
is written and whose task is enqueued. A message whose hand-off failed stays in the
queue and comes back after a short, growing visibility delay.

A transient failure (throttling, 5xx, a lost connection, an expired session token) is
retried with a growing pause; a permanent one (no credentials, access denied, no such
queue or table) stops every receiver, and `run` raises it: retrying cannot help until an
operator acts. Which is which is `dlq.awserrors`' vocabulary, the one targets use too.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import redis
from botocore.exceptions import BotoCoreError, ClientError

from dlq.aws import aws_client
from dlq.awserrors import AwsErrorKind, error_kind, is_permanent
from dlq.clock import SYSTEM_CLOCK, Clock
from dlq.errors import HandOffError
from dlq.events import DlqMessage
from dlq.health import Heartbeat
from dlq.metrics.buffer import CountBuffer
from dlq.metrics.wiring import process_metrics
from dlq.observe import NO_METRICS, MetricsObserver
from dlq.settings import Settings
from ingest.frontdoor import FrontDoor

log = logging.getLogger(__name__)

BATCH_SIZE = 10
#: A kept message becomes visible again after this many seconds per receive (capped).
RETRY_VISIBILITY_STEP = 15
RETRY_VISIBILITY_MAX = 900
#: Every receive asks for this visibility timeout, whatever the queue's own: time to
#: hand a batch off (a ledger write of three tries of 13 s at most, plus the broker).
RECEIVE_VISIBILITY_SECONDS = 120
#: With `until_empty`, receives wait this long at most: an empty queue ends the run within
#: a second instead of a whole long poll (1, not 0: a wait of 0 is SQS's short polling,
#: which asks only some of its servers and may answer empty while messages wait).
EMPTY_CHECK_WAIT_SECONDS = 1
#: Pauses after a failed receive: doubling from the first to the last.
RECEIVE_BACKOFF_FIRST = 1.0
RECEIVE_BACKOFF_MAX = 60.0


@dataclass
class PollStats:
    """Counts by outcome (`accepted`, `duplicate`, `rejected`, `kept`), thread-safe."""

    counts: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, outcome: str, n: int = 1) -> None:
        with self._lock:
            self.counts[outcome] += n


class Poller:
    """Drains the DLQ into the ledger and the broker with `receivers` concurrent loops."""

    def __init__(
        self,
        *,
        sqs: Any,
        queue_url: str,
        front_door: FrontDoor,
        receivers: int = 1,
        wait_seconds: int = 20,
        metrics: MetricsObserver = NO_METRICS,
        clock: Clock = SYSTEM_CLOCK,
        heartbeat: Heartbeat | None = None,
        counts: CountBuffer | None = None,
    ) -> None:
        """`metrics` hears each received message's age (the front door, its outcome);
        `heartbeat` is touched after each receive that went through (`dlq-replay health`)
        and withdrawn when a permanent failure stops the poller; `counts`, the process's
        count buffer, is flushed and closed as `run` ends."""
        self._sqs = sqs
        self._counts = counts
        self._heartbeat = heartbeat
        self._metrics = metrics
        self._clock = clock
        self._queue_url = queue_url
        self._door = front_door
        self._receivers = receivers
        self._wait_seconds = wait_seconds
        self.stop_event = threading.Event()
        self.stats = PollStats()
        #: The permanent failure that stopped the poller, raised again by `run`.
        self.failure: BaseException | None = None
        self._pool = ThreadPoolExecutor(max_workers=BATCH_SIZE * receivers)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        cache: redis.Redis,
        *,
        receivers: int,
        wait_seconds: int,
        prometheus: bool = False,
        heartbeat: Heartbeat | None = None,
    ) -> Poller:
        """The poller as deployed (`dlq-replay poll`): the ledger's status moves and the
        outcome counts summed in a count buffer of its own (flushed every
        `FLUSH_SECONDS`, and as `run` ends), Prometheus too when the process serves it."""
        counts = CountBuffer(cache).start()
        metrics = process_metrics(settings, cache, prometheus=prometheus, counts=counts)
        return cls(
            sqs=aws_client("sqs", settings),
            queue_url=settings.dlq_queue_url,
            front_door=FrontDoor.from_settings(settings, metrics=metrics, counts=counts),
            receivers=receivers,
            wait_seconds=wait_seconds,
            metrics=metrics,
            heartbeat=heartbeat,
            counts=counts,
        )

    def stop(self) -> None:
        """Finish the batch in hand, then return from `run` (safe from a signal handler)."""
        self.stop_event.set()

    def run(self, *, until_empty: bool = False) -> PollStats:
        """Poll until `stop()`; with `until_empty`, also stop when a receive comes back empty.

        Raises the AWS error that stopped it, when a permanent one did.
        """
        wait = self._wait_for(until_empty=until_empty)
        log.info(
            f"polling {self._queue_url}: {self._receivers} receivers, receives of up to "
            f"{BATCH_SIZE} messages waiting {wait} s"
            + (", until a receive comes back empty" if until_empty else "")
        )
        threads = [
            threading.Thread(
                target=self._loop, args=(until_empty,), name=f"receiver-{n}", daemon=True
            )
            for n in range(self._receivers)
        ]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            if self._counts is not None:
                self._counts.close()
        if self.failure is not None:
            raise self.failure
        return self.stats

    def _wait_for(self, *, until_empty: bool) -> int:
        """The receives' wait: a long poll, or a short one when an empty receive ends the run
        (a message that arrives is returned at once either way)."""
        return (
            min(self._wait_seconds, EMPTY_CHECK_WAIT_SECONDS) if until_empty else self._wait_seconds
        )

    def _fail(self, exc: BaseException) -> None:
        """Stop every receiver because of a permanent failure (the first one is kept)."""
        if self.failure is None:
            self.failure = exc
        if self._heartbeat is not None:
            self._heartbeat.clear()
        self.stop_event.set()

    def _loop(self, until_empty: bool) -> None:
        pause = RECEIVE_BACKOFF_FIRST
        wait = self._wait_for(until_empty=until_empty)
        while not self.stop_event.is_set():
            try:
                handled = self.poll_once(wait_seconds=wait)
            except (ClientError, BotoCoreError) as exc:
                if is_permanent(exc):
                    self._fail(exc)
                    return
                log.error(f"receiving from the DLQ failed: {exc}; retrying in {pause:.0f} s")
                self.stop_event.wait(pause)
                pause = min(pause * 2, RECEIVE_BACKOFF_MAX)
                continue
            pause = RECEIVE_BACKOFF_FIRST
            if self._heartbeat is not None and self.failure is None:
                self._heartbeat.beat()
            if handled == 0 and until_empty:
                return

    def poll_once(self, *, wait_seconds: int | None = None) -> int:
        """One receive (waiting `wait_seconds`, the poller's own by default), ingest and
        delete; returns how many messages were received."""
        wait = self._wait_seconds if wait_seconds is None else wait_seconds
        response = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=BATCH_SIZE,
            WaitTimeSeconds=wait,
            VisibilityTimeout=RECEIVE_VISIBILITY_SECONDS,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
        )
        raw_messages = response.get("Messages", [])
        self._door.received(len(raw_messages), wait_seconds=wait)
        messages = [DlqMessage.from_receive_message(raw) for raw in raw_messages]
        now = self._clock.now()
        for message in messages:
            if message.sent_at is not None:
                # SQS keeps no "oldest message" attribute; the ages of what is received
                # are the poller's view of it (CloudWatch has ApproximateAgeOfOldestMessage).
                self._metrics.dlq_message_age(now - message.sent_at.timestamp())
        # A batch's hand-offs are independent network round trips: run them together.
        handed = list(self._pool.map(self._hand_off, messages))
        done = [m for m, ok in zip(messages, handed, strict=True) if ok]
        kept = [m for m, ok in zip(messages, handed, strict=True) if not ok]
        self._delete(done)
        self._delay(kept)
        return len(raw_messages)

    def _hand_off(self, message: DlqMessage) -> bool:
        try:
            # The receive brought messages: the DLQ drains (`FrontDoor.received`).
            result = self._door.handle(message, draining=True)
        except HandOffError as exc:
            cause = exc.__cause__
            # The ledger table is missing or refused: every message would fail alike. An
            # invalid request is this message's own (the ledger refused its item): the
            # others may pass, so it stays in the queue instead of stopping them all.
            if is_permanent(cause) and error_kind(cause) is not AwsErrorKind.INVALID:
                assert cause is not None
                self._fail(cause)
            else:
                log.error(str(exc), extra={"sqs_message_id": message.message_id})
            return False
        except Exception:
            log.exception(
                "unexpected error; the message stays in the DLQ",
                extra={"sqs_message_id": message.message_id},
            )
            return False
        self.stats.add(result.outcome.value)
        return True

    def _delete(self, messages: list[DlqMessage]) -> None:
        if not messages:
            return
        response = self._sqs.delete_message_batch(
            QueueUrl=self._queue_url,
            Entries=[
                {"Id": str(n), "ReceiptHandle": m.receipt_handle} for n, m in enumerate(messages)
            ],
        )
        for failure in response.get("Failed", []):
            # Harmless: the message comes back and is recognised as a duplicate.
            log.warning(
                f"could not delete a handled DLQ message: {failure.get('Message')}",
                extra={"sqs_message_id": messages[int(failure["Id"])].message_id},
            )

    def _delay(self, messages: list[DlqMessage]) -> None:
        if not messages:
            return
        self.stats.add("kept", len(messages))
        entries = [
            {
                "Id": str(n),
                "ReceiptHandle": m.receipt_handle,
                "VisibilityTimeout": min(
                    RETRY_VISIBILITY_MAX, RETRY_VISIBILITY_STEP * m.receive_count
                ),
            }
            for n, m in enumerate(messages)
        ]
        try:
            self._sqs.change_message_visibility_batch(QueueUrl=self._queue_url, Entries=entries)
        except (ClientError, BotoCoreError) as exc:
            log.warning(f"could not shorten the visibility of kept messages: {exc}")
