"""The unit tests' world: every collaborator in memory, time on a `FakeClock`.

Wired once here: `FakeClock`, `MemoryLedger(clock=clock)`, a `fakeredis` Redis (with Lua,
for redis-py's locks), the real `GenesysClient` over `MockTransport` answering from a
`ScriptedGenesys`, the real `ConversationDirectory` and `ConversationLocks`, and fakes
for the target, parking, news and enqueuer (see `fakes.py`). Factories build the use
cases under test (`make_replayer`, `tracker`, `make_reconciler`) from these, with
overridable options. No fixture here starts a server, opens a socket or sleeps; the
session's server fixtures are overridden to fail loudly if a unit test asks for one.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any, Protocol, cast

import fakeredis
import pytest
from helpers import received_message

from dlq.arrivals import Arrivals
from dlq.clock import FakeClock
from dlq.events import EventKey, parse_dlq_message
from dlq.genesys.client import GenesysClient
from dlq.genesys.directory import ConversationDirectory
from dlq.genesys.transport import MockTransport
from dlq.ledger import MemoryLedger
from dlq.locks import ConversationLocks
from dlq.ratelimit import RateLimiter
from dlq.reconcile import Reconciler
from dlq.replay import Replayer, ReplayOptions
from dlq.retry import RetryPolicy
from dlq.settings import Settings
from dlq.tracking import Tracker, TrackingNews

from .fakes import (
    CONVERSATION_ID,
    DEBOUNCE_SECONDS,
    LEASE_SECONDS,
    PREFIX,
    QUIET_SECONDS,
    TARGET_ARN,
    FakeParking,
    FakeTarget,
    RecordingEnqueuer,
    RecordingNews,
    RecordingSchedule,
    ScriptedGenesys,
    ScriptedLimiter,
    StaticTokens,
    event_time,
    fixture,
)

# --- no servers in unit tests -----------------------------------------------------------
# tests/conftest.py starts each server on first request; here every server fixture, and
# every fixture that connects to one, fails instead, naming where the test belongs.


def _no_server(name: str) -> Callable[[], None]:
    def refuse() -> None:
        pytest.fail(
            f"a unit test asked for {name}: unit tests start no server: "
            "this test belongs in tests/integration"
        )

    return refuse


redis_server = pytest.fixture(_no_server("redis_server"), name="redis_server")
redis_url = pytest.fixture(_no_server("redis_url"), name="redis_url")
redis_client = pytest.fixture(_no_server("redis_client"), name="redis_client")
moto_server = pytest.fixture(_no_server("moto_server"), name="moto_server")
genesys_sim = pytest.fixture(_no_server("genesys_sim"), name="genesys_sim")
sim = pytest.fixture(_no_server("sim"), name="sim")
sim_admin = pytest.fixture(_no_server("sim_admin"), name="sim_admin")
genesys_settings = pytest.fixture(_no_server("genesys_settings"), name="genesys_settings")


# --- time, ledger, Redis ----------------------------------------------------------------


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture()
def ledger(clock: FakeClock) -> MemoryLedger:
    return MemoryLedger(clock=clock)


@pytest.fixture()
def fake_server() -> fakeredis.FakeServer:
    """One in-memory Redis per test; every client of the test connects to it."""
    return fakeredis.FakeServer()


@pytest.fixture()
def cache(fake_server: fakeredis.FakeServer) -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis(server=fake_server)


@pytest.fixture()
def peer_cache(fake_server: fakeredis.FakeServer) -> fakeredis.FakeRedis:
    """Another connection to the same Redis, as another worker holds it."""
    return fakeredis.FakeRedis(server=fake_server)


# --- Genesys ----------------------------------------------------------------------------


@pytest.fixture()
def settings() -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        genesys_api_base_url="https://api.genesys.test",  # type: ignore[arg-type]
        genesys_attribute_prefix=PREFIX,
    )


@pytest.fixture()
def genesys() -> ScriptedGenesys:
    """Genesys knows the fixture conversation; tests add, delete or script others."""
    sim = ScriptedGenesys()
    sim.add(CONVERSATION_ID)
    return sim


@pytest.fixture()
def transport(genesys: ScriptedGenesys) -> MockTransport:
    return MockTransport(genesys.handle)


@pytest.fixture()
def limiter() -> ScriptedLimiter:
    return ScriptedLimiter()


@pytest.fixture()
def client(
    settings: Settings, transport: MockTransport, limiter: ScriptedLimiter, clock: FakeClock
) -> GenesysClient:
    return GenesysClient(
        settings,
        tokens=StaticTokens(),
        limiter=cast(RateLimiter, limiter),
        transport=transport,
        clock=clock,
    )


@pytest.fixture()
def directory(client: GenesysClient, cache: fakeredis.FakeRedis) -> ConversationDirectory:
    return ConversationDirectory(client, cache)


@pytest.fixture()
def locks(cache: fakeredis.FakeRedis, clock: FakeClock) -> ConversationLocks:
    return ConversationLocks(cache, ttl_seconds=LEASE_SECONDS, clock=clock)


# --- the outside world of a replay --------------------------------------------------------


@pytest.fixture()
def target() -> FakeTarget:
    return FakeTarget()


@pytest.fixture()
def parking() -> FakeParking:
    return FakeParking()


@pytest.fixture()
def news() -> RecordingNews:
    return RecordingNews()


@pytest.fixture()
def enqueuer() -> RecordingEnqueuer:
    return RecordingEnqueuer()


@pytest.fixture()
def schedule() -> RecordingSchedule:
    return RecordingSchedule()


@pytest.fixture()
def tracking_news(
    cache: fakeredis.FakeRedis, schedule: RecordingSchedule, clock: FakeClock
) -> TrackingNews:
    return TrackingNews(cache, schedule, debounce_seconds=DEBOUNCE_SECONDS, clock=clock)


# --- events into the ledger -------------------------------------------------------------


class Receive(Protocol):
    def __call__(
        self,
        *,
        conversation_id: str | None = CONVERSATION_ID,
        participant: bool | str = True,
        age: float = 0.0,
        target_arn: str = TARGET_ARN,
    ) -> EventKey: ...


@pytest.fixture()
def receive(ledger: MemoryLedger, clock: FakeClock) -> Receive:
    """Put a new DLQ message in the ledger as the ingest does; answers its key.

    The event is the fixture's conversation end event, with a fresh id and an event time
    `age` seconds before the clock; `participant=False` drops its participant id;
    `conversation_id=None` makes it the user presence event (no conversation at all).
    """

    def put(
        *,
        conversation_id: str | None = CONVERSATION_ID,
        participant: bool | str = True,
        age: float = 0.0,
        target_arn: str = TARGET_ARN,
    ) -> EventKey:
        if conversation_id is None:
            event = fixture("genesys-user-presence-event.json")
        else:
            event = fixture("genesys-conversation-end-event.json")
            detail = event["detail"]
            detail["topicName"] = f"v2.detail.events.conversation.{conversation_id}.customer.end"
            detail["eventBody"]["conversationId"] = conversation_id
            if not participant:
                del detail["eventBody"]["participantId"]
            elif isinstance(participant, str):
                detail["eventBody"]["participantId"] = participant
        event["id"] = str(uuid.uuid4())
        event["time"] = event_time(clock.now() - age)
        message = received_message(json.dumps(event), target_arn)
        parsed = parse_dlq_message(message)
        assert ledger.put_received(parsed, message) is None, "a new event"
        return parsed.key

    return put


# --- the use cases ----------------------------------------------------------------------


@pytest.fixture()
def make_replayer(
    ledger: MemoryLedger,
    target: FakeTarget,
    locks: ConversationLocks,
    directory: ConversationDirectory,
    news: RecordingNews,
    parking: FakeParking,
    clock: FakeClock,
) -> Callable[..., Replayer]:
    """A `Replayer` over the test's world; keyword arguments override its parts."""

    def build(**overrides: Any) -> Replayer:
        parts: dict[str, Any] = {
            "ledger": ledger,
            "redeliverer": target,
            "locks": locks,
            "directory": directory,
            "news": news,
            "policy": RetryPolicy(),
            "options": ReplayOptions(lease_seconds=LEASE_SECONDS, lock_wait_seconds=0.1),
            "parking": parking,
            "clock": clock,
        }
        parts.update(overrides)
        return Replayer(**parts)

    return build


@pytest.fixture()
def arriving(cache: fakeredis.FakeRedis, clock: FakeClock) -> Arrivals:
    """The ingest's notes of arrivals (`dlq.arrivals`), as the tracker reads them."""
    return Arrivals(cache, keep_seconds=60, clock=clock)


@pytest.fixture()
def tracker(
    ledger: MemoryLedger,
    client: GenesysClient,
    directory: ConversationDirectory,
    cache: fakeredis.FakeRedis,
    tracking_news: TrackingNews,
    clock: FakeClock,
    arriving: Arrivals,
) -> Tracker:
    """Told of arrivals, as the workers' tracker is (tasks/runtime.py)."""
    return Tracker(
        ledger=ledger,
        client=client,
        directory=directory,
        cache=cache,
        prefix=PREFIX,
        pending_ttl=tracking_news.pending_ttl,
        arrivals=arriving,
        quiet_seconds=QUIET_SECONDS,
        clock=clock,
    )


@pytest.fixture()
def make_reconciler(
    ledger: MemoryLedger,
    enqueuer: RecordingEnqueuer,
    tracking_news: TrackingNews,
    tracker: Tracker,
    cache: fakeredis.FakeRedis,
    clock: FakeClock,
) -> Callable[..., Reconciler]:
    """A `Reconciler` over the test's world; `queue_depth` is a number or a callable."""

    def build(*, queue_depth: int | Callable[[], int] = 0, **overrides: Any) -> Reconciler:
        if callable(queue_depth):
            depth = queue_depth
        else:
            fixed = queue_depth

            def depth() -> int:
                return fixed

        parts: dict[str, Any] = {
            "ledger": ledger,
            "enqueuer": enqueuer,
            "news": tracking_news,
            "tracker": tracker,
            "lock_client": cache,
            "queue_depth": depth,
            "grace_seconds": 120.0,
            "tracking_window_seconds": 3600.0,
            "clock": clock,
        }
        parts.update(overrides)
        return Reconciler(**parts)

    return build
