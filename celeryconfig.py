"""Celery configuration, read from the one settings object (`celery -A tasks ...`)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from dlq.errors import ConfigurationError
from dlq.logs import stop
from dlq.redistls import RedisTls
from dlq.secrets.redis_auth import without_userinfo
from dlq.settings import MAX_COUNTDOWN_SECONDS, Settings, load_settings
from tasks.names import (
    RECONCILE_TASK,
    REPLAY_QUEUE,
    REPLAY_TASK,
    TRACK_QUEUE,
    TRACK_TASK,
    VERIFY_QUEUE,
    VERIFY_TASK,
)

#: The broker's password provider when REDIS_PASSWORD_SECRET_ARN is set: kombu reads a
#: `credential_provider` from the broker URL's query and calls what it names (on connecting,
#: never here), which answers the process's one `RedisCredentials`.
BROKER_CREDENTIALS = "tasks.config.broker_credentials"


def broker_url_of(settings: Settings) -> str:
    """REDIS_URL; with a password kept in a secret store, without user information and
    naming the credential provider instead."""
    if not settings.redis_password_secret_arn:
        return settings.redis_url
    parts = urlsplit(without_userinfo(settings.redis_url))
    query = [*parse_qsl(parts.query), ("credential_provider", BROKER_CREDENTIALS)]
    return urlunsplit(parts._replace(query=urlencode(query)))


try:
    _settings = load_settings()
except ConfigurationError as exc:
    # Workers, beat and Flower all read this first: one ERROR line, no traceback.
    stop(exc)

# An ordered pass starts no attempt that could not end before the soft limit
# (REPLAY_TASK_SOFT_TIME_LIMIT, checked against the longest attempt in `Settings`).
task_soft_time_limit = _settings.replay_task_soft_time_limit
task_time_limit = task_soft_time_limit + 20

broker_url = broker_url_of(_settings)
# TLS to a rediss:// broker, checked as every other Redis client checks it (dlq.redistls):
# without it kombu would connect without checking the certificate. Flower's broker view
# builds its Redis client from this dict too (flower/utils/broker.py, `RedisSsl`).
broker_use_ssl = RedisTls.from_settings(_settings).broker_use_ssl(broker_url)
broker_connection_retry_on_startup = True
broker_transport_options = {
    # Off by default (REDIS_ACK_EMULATION): the ledger and the reconciler, not kombu's
    # unacked hash, bring back the work of a worker that died (kombu's Redis transport:
    # `ack_emulation`, 6 commands per task).
    "ack_emulation": _settings.redis_ack_emulation,
    # With it on: above the longest countdown any task schedules plus the hard time limit,
    # so a scheduled retry is never delivered twice (Celery docs, "Using Redis":
    # Visibility timeout).
    "visibility_timeout": MAX_COUNTDOWN_SECONDS + task_time_limit + 300,
    "socket_timeout": 10,
    "socket_connect_timeout": 5,
}

task_serializer = "json"
accept_content = ["json"]
result_serializer = "json"
task_ignore_result = True  # the ledger is the result
result_backend = None

task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1

# Task events cost a Redis PUBLISH per task state for no reader when Flower is not
# running. Flower turns them on by itself while it runs (its `enable_events` option,
# default true, sends `enable_events` to the workers periodically: flower/events.py);
# `celery -A tasks control enable_events` does the same by hand. "Sent" events stay off:
# Flower shows a task from the moment a worker receives it.
worker_send_task_events = False
task_send_sent_event = False
worker_hijack_root_logger = False

task_default_queue = REPLAY_QUEUE
task_routes = {
    REPLAY_TASK: {"queue": REPLAY_QUEUE},
    RECONCILE_TASK: {"queue": REPLAY_QUEUE},
    TRACK_TASK: {"queue": TRACK_QUEUE},
    VERIFY_TASK: {"queue": VERIFY_QUEUE},
}
task_publish_retry_policy = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5}

beat_schedule = {
    "reconcile-ledger": {"task": RECONCILE_TASK, "schedule": 60.0},
}
