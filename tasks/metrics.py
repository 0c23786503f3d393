"""The workers' Prometheus endpoint, safe under the prefork pool (Celery signals).

prometheus_client keeps a process's values in memory, and a prefork worker's children
are separate processes: each writes its values to files in `PROMETHEUS_MULTIPROC_DIR`,
and the main process serves their sum (`prometheus_client.multiprocess`). So:

- `celeryd_init` (main process, before the pool forks, `celery worker` only): decide the
  directory (`PROMETHEUS_MULTIPROC_DIR`, else a fresh temporary one), empty it of an
  earlier run's files, export it, and make prometheus_client's value class follow it;
- `worker_ready` (main process, pool started): serve `/metrics` and start the sampler;
- `worker_process_shutdown` (each child, as it exits): mark it dead, which drops its
  live-gauge files (its counters stay counted, as they should).

The thread and solo pools run in the main process: the same directory, one pid. An
in-process worker (`celery.contrib.testing`) sends none of these, and serves nothing.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from celery.signals import celeryd_init, worker_process_shutdown, worker_ready

from tasks.config import redis_credentials, settings

log = logging.getLogger(__name__)


def prepare_multiprocess_dir(configured: str) -> str:
    """Export PROMETHEUS_MULTIPROC_DIR (`configured`, else a new temporary directory),
    emptied of metric files a previous run left, which would otherwise be added up too."""
    directory = Path(configured or tempfile.mkdtemp(prefix="dlq-replay-metrics-"))
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    return str(directory)


@celeryd_init.connect
def _prepare(**_: Any) -> None:
    config = settings()
    if not config.replay_metrics_port:
        return
    directory = prepare_multiprocess_dir(config.prometheus_multiproc_dir)
    if "prometheus_client" in sys.modules:
        # Celery's command line loads Flower's plugin, which imports prometheus_client
        # before any signal: it chose in-memory values then. Values made from now on (all
        # of ours: they are created on first use) follow the directory just exported.
        from prometheus_client import values

        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    log.info(f"metrics: worker processes write their values to {directory}")


@worker_ready.connect
def _serve(**_: Any) -> None:
    config = settings()
    if not config.replay_metrics_port:
        return
    from dlq.metrics.wiring import start_endpoint
    from dlq.redisclient import redis_client

    client = redis_client(config, redis_credentials(), health_check_interval=30)
    start_endpoint(config, client, port=config.replay_metrics_port, setting="REPLAY_METRICS_PORT")


@worker_process_shutdown.connect
def _mark_dead(pid: int | None = None, **_: Any) -> None:
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    from dlq.metrics.prometheus import mark_process_dead

    mark_process_dead(pid or os.getpid())
