"""What a worker process needs, built once: as the worker starts, else on first use.

Never at import. Built on first use only, the first tasks of a fresh worker all wait
for it (imports, clients) and then meet every lazy load at once, on all threads. Thread
(and solo, gevent, eventlet) pools run tasks in the worker's own process, which
`worker_init` reaches (the task modules, and so this one, are imported before it);
each prefork child builds its own in `worker_process_init`, never the parent, whose
connections its forked children would share.

The runtime's count buffer (status moves, outcome counts: `dlq.metrics.buffer`) flushes
from its own daemon thread, and once more as the process stops: `worker_process_shutdown`
in a prefork child (which leaves by `os._exit`, past `atexit`), `worker_shutdown` in the
thread, solo and green pools' process, `atexit` otherwise, and `reset_runtime`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis
from celery.signals import (
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_shutdown,
)

from dlq.arrivals import DRAINING_REUSE_SECONDS, Arrivals
from dlq.aws import aws_client
from dlq.boundary import TrustBoundary
from dlq.genesys.client import build_genesys_client
from dlq.genesys.credentials import GenesysCredentials
from dlq.genesys.directory import ConversationDirectory
from dlq.genesys.pending import PendingVerifications
from dlq.ledger import Ledger
from dlq.locks import ConversationLocks
from dlq.metrics.buffer import CountBuffer
from dlq.metrics.tally import StatusTally
from dlq.metrics.wiring import process_metrics, worker_emf
from dlq.parking import ParkingQueue
from dlq.reconcile import Reconciler
from dlq.redisclient import redis_client
from dlq.replay import PassResults, Replayer, ReplayOptions
from dlq.replay.holds import target_holds
from dlq.retry import TRACKING_POLICY, RetryPolicy
from dlq.secrets.redis_auth import RedisCredentials
from dlq.settings import Settings
from dlq.targets import Redeliverer
from dlq.tracking import Tracker, TrackingNews
from dlq.verify import Prefetcher
from tasks.application import app
from tasks.config import forget as forget_config
from tasks.config import genesys_credentials, redis_credentials, settings
from tasks.names import REPLAY_TASK, TRACK_TASK
from tasks.producer import (
    CeleryEnqueuer,
    TrackingScheduler,
    VerifyScheduler,
    replay_queue_depth,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    redis: redis.Redis
    ledger: Ledger
    replayer: Replayer
    tracker: Tracker
    news: TrackingNews
    reconciler: Reconciler
    #: The retry policy of each task, by task name.
    policies: Mapping[str, RetryPolicy]
    #: Batch verification (None when REPLAY_VERIFY_CONVERSATION is off).
    pending: PendingVerifications | None = None
    prefetcher: Prefetcher | None = None
    #: The status moves and outcome counts waiting for their flush.
    counts: CountBuffer | None = None


_lock = threading.Lock()
_runtime: Runtime | None = None


def runtime() -> Runtime:
    """The process-wide runtime (the worker's threads share it)."""
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = build_runtime(
                settings(), redis_auth=redis_credentials(), genesys=genesys_credentials()
            )
        return _runtime


@worker_init.connect
def _warm_in_process(sender: Any = None, **_: Any) -> None:
    from celery.concurrency import get_implementation
    from celery.concurrency.prefork import TaskPool as PreforkPool

    pool = getattr(sender, "pool_cls", None)
    if pool is not None and issubclass(get_implementation(pool), PreforkPool):
        return
    warm()


@worker_process_init.connect
def _warm_child(**_: Any) -> None:
    warm()


def warm() -> None:
    """Build the runtime now; a failure is logged and left to the first task to report."""
    try:
        runtime()
    except Exception as exc:
        log.warning(
            f"could not prepare the worker before its first task ({type(exc).__name__}: "
            f"{exc}); the first task will try again and report the cause",
            extra={"outcome": "warm_failed"},
        )


@worker_shutdown.connect
@worker_process_shutdown.connect
def _flush_counts(**_: Any) -> None:
    with _lock:
        built = _runtime
    if built is not None and built.counts is not None:
        built.counts.close()


def reset_runtime() -> None:
    """Forget the runtime, so the next use rebuilds it from fresh settings (tests, reloads);
    the counts it holds are flushed first."""
    global _runtime
    with _lock:
        built, _runtime = _runtime, None
    if built is not None and built.counts is not None:
        built.counts.close()
    forget_config()


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Run with these environment variables and a runtime rebuilt from them; undone after.

    For in-process workers in tests and benchmarks: settings come from the environment,
    as in production.
    """
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    reset_runtime()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_runtime()


def build_runtime(
    config: Settings,
    *,
    redis_auth: RedisCredentials | None = None,
    genesys: GenesysCredentials | None = None,
) -> Runtime:
    """Wire the domain objects for one worker process.

    `redis_auth` and `genesys` are the process's credentials (`tasks.config`), which
    re-read a referenced secret when Redis or Genesys refuses it (by default, the
    settings' own); referenced secrets are read here, at start.
    """
    redis_auth = redis_auth or RedisCredentials.from_settings(config)
    if redis_auth is not None:
        redis_auth.read()
    cache = redis_client(config, redis_auth, health_check_interval=30)
    # Client-side validation costs about 0.9 ms of CPU per ledger request (cProfile).
    dynamodb = aws_client("dynamodb", config, pool_size=64, validate=False)
    counts = CountBuffer(cache)  # its flusher starts once the rest is built
    ledger = Ledger(
        dynamodb,
        config.ledger_table,
        ttl_days=config.ledger_ttl_days,
        moves=StatusTally(cache, config.ledger_table, counts=counts),
    )
    metrics = process_metrics(
        config,
        cache,
        prometheus=config.replay_metrics_port > 0,
        emf=worker_emf(config),
        counts=counts,
    )
    client = build_genesys_client(config, cache, metrics=metrics, credentials=genesys)
    pending = (
        PendingVerifications(cache, VerifyScheduler(app, broker=cache))
        if config.replay_verify_conversation
        else None
    )
    directory = ConversationDirectory(
        client,
        cache,
        pending=pending,
        verify_batch=config.genesys_verify_batch,
        verify_wait_seconds=config.genesys_verify_wait_seconds,
    )
    arrivals = Arrivals(
        cache,
        keep_seconds=config.replay_ingest_max_hold_seconds,
        draining_reuse_seconds=min(DRAINING_REUSE_SECONDS, config.replay_ingest_quiet_seconds / 4),
    )
    prefetcher = (
        Prefetcher(
            directory=directory,
            pending=pending,
            lock_client=cache,
            max_hold_seconds=config.genesys_verify_wait_seconds / 3,
            arrivals=arrivals,
            # Verified before the passes' hold ends, with a replay's wait for it to spare.
            drain_hold_seconds=(
                config.replay_ingest_max_hold_seconds - config.genesys_verify_wait_seconds
            ),
        )
        if pending is not None
        else None
    )
    news = TrackingNews(
        cache, TrackingScheduler(app), debounce_seconds=config.replay_tracking_debounce_seconds
    )
    parking = (
        ParkingQueue(aws_client("sqs", config), config.replay_parking_queue_url)
        if config.replay_parking_queue_url
        else None
    )
    policy = RetryPolicy.from_settings(config)
    replayer = Replayer(
        ledger=ledger,
        redeliverer=Redeliverer(config, cache=cache),
        locks=ConversationLocks(cache, ttl_seconds=config.replay_lease_seconds),
        directory=directory,
        news=news,
        policy=policy,
        options=ReplayOptions(
            verify_conversation=config.replay_verify_conversation,
            redeliver_missing_conversation=config.replay_redeliver_missing_conversation,
            lease_seconds=config.replay_lease_seconds,
            in_order=config.replay_order == "conversation",
            order_hold_seconds=config.replay_order_hold_seconds,
            ingest_quiet_seconds=config.replay_ingest_quiet_seconds,
            attempt_bound_seconds=config.attempt_bound_seconds,
            time_limit_seconds=config.replay_task_soft_time_limit,
            ledger_call_seconds=config.ledger_call_bound_seconds,
            boundary=TrustBoundary.from_settings(config),
        ),
        parking=parking,
        requeue=CeleryEnqueuer(app),
        results=PassResults(cache),
        arrivals=arrivals,
        metrics=metrics,
        holds=target_holds(config, cache, dynamodb, metrics=metrics),
    )
    tracker = Tracker(
        ledger=ledger,
        client=client,
        directory=directory,
        cache=cache,
        prefix=config.genesys_attribute_prefix,
        pending_ttl=news.pending_ttl,
        arrivals=arrivals,
        quiet_seconds=config.replay_ingest_quiet_seconds,
        metrics=metrics,
    )
    reconciler = Reconciler(
        ledger=ledger,
        enqueuer=CeleryEnqueuer(app),
        news=news,
        tracker=tracker,
        lock_client=cache,
        queue_depth=lambda: replay_queue_depth(cache),
        grace_seconds=config.replay_reconcile_grace_seconds,
    )
    policies = {REPLAY_TASK: policy, TRACK_TASK: TRACKING_POLICY}
    counts.start()
    return Runtime(
        config,
        cache,
        ledger,
        replayer,
        tracker,
        news,
        reconciler,
        policies,
        pending,
        prefetcher,
        counts,
    )
