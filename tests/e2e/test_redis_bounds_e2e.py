"""Every key a replay run leaves in Redis has an expiry or a known bound: a real worker
replays, verifies and tracks a few events, then every key it left is checked against
docs/operations.md's table. The bounds of each structure on its own, with no worker, are
tested in tests/integration/test_redis_bounds.py.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from helpers import REPO, genesys_event
from stack import Stack, configured, in_process_worker, sim_env

from devstack.sim_admin import PATCH_ATTRIBUTES
from dlq.ledger import FINAL_STATUSES

#: Keys without an expiry, each bounded another way (docs/operations.md): Celery's and
#: kombu's queues, by what the ledger holds, and bindings, by the queues; the status
#: counts, one small hash per ledger table (a field per counted status).
STRUCTURAL = ("_kombu.binding", "unacked", "dlq:tally:")
QUEUES = {"replay", "track", "verify"}


@pytest.fixture()
def stack(redis_server, moto_server, sim, unique, redis_url) -> Iterator[Stack]:
    sim.admin.reset()
    sim.admin.configure(rate_limit=100_000)
    with configured({**sim_env(sim), "LEDGER_TABLE": f"ledger-{unique}"}):
        yield Stack(unique, sim)


@pytest.mark.slow
def test_every_key_a_replay_run_leaves_in_redis_has_an_expiry_or_a_known_bound(
    stack: Stack, redis_client: redis.Redis
):
    conversations = [str(uuid.uuid4()) for _ in range(6)]
    stack.sim.admin.seed(*conversations)
    for conversation in conversations:
        event = genesys_event(conversation_id=conversation)
        del event["detail"]["eventBody"]["participantId"]  # annotate the customer
        stack.put_dlq(event)
    stack.ingest()

    with in_process_worker():
        items = stack.wait_final(6, timeout=120)
        deadline = time.monotonic() + 60
        while stack.sim.admin.stats().count(PATCH_ATTRIBUTES) < len(conversations):
            assert time.monotonic() < deadline, "tracking did not run"
            time.sleep(0.2)

    assert all(i.status in FINAL_STATUSES for i in items)
    keys = [raw.decode() for raw in redis_client.scan_iter(count=1000)]
    unbounded = [
        key
        for key in keys
        if key not in QUEUES and not key.startswith(STRUCTURAL) and redis_client.ttl(key) < 0
    ]
    assert unbounded == []
    patterns = documented_patterns()
    assert [key for key in keys if key.startswith("dlq:") and not documented(key, patterns)] == []


def documented_patterns() -> list[str]:
    """The key patterns in the first column of docs/operations.md's Redis table."""
    text = (REPO / "docs" / "operations.md").read_text()
    patterns: list[str] = []
    for line in text.splitlines():
        if line.startswith("| `dlq:"):
            first_cell = line.split(" | ")[0]
            patterns += re.findall(r"`([^`]+)`", first_cell)
    return patterns


def documented(key: str, patterns: list[str]) -> bool:
    """Whether `key` matches a pattern: exactly, or by the text before its first
    `<placeholder>` (`dlq:conv:<conversation id>` covers every `dlq:conv:...` key)."""
    for pattern in patterns:
        prefix, placeholder, _ = pattern.partition("<")
        if key == pattern or (placeholder and key.startswith(prefix)):
            return True
    return False
