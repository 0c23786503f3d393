"""In-memory stand-ins for what surrounds the use cases (never for the use case under test).

- `ScriptedGenesys`: a Genesys Cloud in a dict, answering the real `GenesysClient`
  through `MockTransport`, with per-conversation scripted statuses (404, 503, 429...).
- `StaticTokens`, `ScriptedLimiter`: the token provider and the rate limiter, scripted.
- `FakeTarget`, `FakeParking`, `RecordingNews`, `RecordingEnqueuer`, `RecordingSchedule`:
  the outside world of a replay, recording what it was asked to do.
- `settle`: an attempt claimed and ended on the ledger, as a worker would; the constants
  (`LEASE_SECONDS`, `DEBOUNCE_SECONDS`, `PREFIX`) the conftest's world is built with.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from devstack.sim_state import analytics_view
from dlq.events import EventKey
from dlq.genesys.transport import Request, Response
from dlq.ledger import LedgerItem, MemoryLedger, Status
from dlq.ratelimit import Priority
from dlq.targets.delivery import Delivery

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

#: The conversation of `genesys-get-conversation.json` and of the end event.
CONVERSATION_ID = "7d3e9a41-2b6c-4f80-9c15-6a0b8e2f1d94"
#: Its customer participant, where tracking writes.
CUSTOMER_ID = "c41a7e02-93d5-4b6f-8e21-0f5d9c3b7a68"
TARGET_ARN = "arn:aws:sqs:us-east-1:111122223333:crm-sync"
#: The lease of a claim, and the tracking debounce, in the world of conftest.
LEASE_SECONDS = 150.0
DEBOUNCE_SECONDS = 5.0
#: The Genesys attribute prefix of the unit tests' settings.
PREFIX = "dlqReplay"
#: REPLAY_INGEST_QUIET_SECONDS of the tests' trackers and passes.
QUIET_SECONDS = 2.0

_CONVERSATION = re.compile(r"/api/v2/conversations/([^/]+)$")
_ATTRIBUTES = re.compile(r"/api/v2/conversations/([^/]+)/participants/([^/]+)/attributes$")
_DETAILS = "/api/v2/analytics/conversations/details?id="


def fixture(name: str) -> Any:
    """A JSON payload from tests/fixtures (a fresh copy each time)."""
    return json.loads((FIXTURES / name).read_text())


def event_time(epoch: float) -> str:
    """An EventBridge `time` for an epoch (whole seconds, as EventBridge writes it)."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def conversation_body(conversation_id: str = CONVERSATION_ID) -> dict[str, Any]:
    """`GET /api/v2/conversations/{id}` from the fixture, under another id if asked."""
    body: dict[str, Any] = fixture("genesys-get-conversation.json")
    body["id"] = conversation_id
    return body


# --- Genesys ----------------------------------------------------------------------------


class ScriptedGenesys:
    """The two Genesys endpoints the client calls, over a dict of conversations.

    `script(conversation_id, 503, 503)` makes the next two calls on that conversation
    (GET or PATCH, or only `method=`) answer those statuses before the normal answer.
    An unknown conversation answers 404. PATCHes merge into `attributes`. The analytics
    multi-get shows every conversation except those in `analytics_hidden`, and answers
    400 beyond `analytics_limit` ids; `details_answers` queues answers before that.
    """

    def __init__(self) -> None:
        self.conversations: dict[str, dict[str, Any]] = {}
        self.attributes: dict[tuple[str, str], dict[str, str]] = {}
        self._scripts: dict[tuple[str | None, str], list[Response]] = {}
        self.analytics_hidden: set[str] = set()
        self.analytics_limit = 100
        self.details_answers: list[Response] = []

    def add(self, conversation_id: str = CONVERSATION_ID) -> str:
        self.conversations[conversation_id] = conversation_body(conversation_id)
        return conversation_id

    def script(self, conversation_id: str, *answers: int | Response, method: str | None = None):
        queue = self._scripts.setdefault((method, conversation_id), [])
        queue.extend(a if isinstance(a, Response) else error_response(a) for a in answers)

    def handle(self, request: Request) -> Response:
        path = request.url.split("://", 1)[-1]
        path = path[path.index("/") :]
        if path.startswith(_DETAILS):
            return self._details(path.removeprefix(_DETAILS).split(","))
        patch = _ATTRIBUTES.search(path)
        get = _CONVERSATION.search(path)
        conversation_id = (patch or get).group(1) if (patch or get) else ""
        scripted = self._scripted(request.method, conversation_id)
        if scripted is not None:
            return scripted
        body = self.conversations.get(conversation_id)
        if body is None:
            return error_response(404)
        if request.method == "GET" and get:
            return Response.of(200, body, {"inin-correlation-id": str(uuid.uuid4())})
        if request.method == "PATCH" and patch:
            participant = patch.group(2)
            merged = self.attributes.setdefault((conversation_id, participant), {})
            merged.update(request.json["attributes"])
            return Response.of(202, None)
        return error_response(400)

    def _details(self, ids: list[str]) -> Response:
        if self.details_answers:
            return self.details_answers.pop(0)
        if len(ids) > self.analytics_limit:
            return error_response(400)
        shown = [
            analytics_view(self.conversations[i])
            for i in ids
            if i in self.conversations and i not in self.analytics_hidden
        ]
        return Response.of(200, {"conversations": shown} if shown else {})

    def _scripted(self, method: str, conversation_id: str) -> Response | None:
        for key in ((method, conversation_id), (None, conversation_id)):
            queue = self._scripts.get(key)
            if queue:
                return queue.pop(0)
        return None


def error_response(status: int) -> Response:
    """A Genesys error answer; a 429 is the fixture's (Retry-After: 17)."""
    if status == 429:
        recorded = fixture("genesys-429-response.json")
        return Response.of(429, recorded["body"], recorded["headers"])
    body = {"message": f"scripted {status}", "code": f"scripted.{status}", "status": status}
    return Response.of(status, body, {"inin-correlation-id": str(uuid.uuid4())})


def patches(requests: list[Request]) -> list[Request]:
    return [r for r in requests if r.method == "PATCH"]


def lookups(requests: list[Request]) -> list[Request]:
    """The single GETs (not the analytics multi-get)."""
    return [r for r in requests if r.method == "GET" and _DETAILS not in r.url]


def details_calls(requests: list[Request]) -> list[list[str]]:
    """The ids of each analytics multi-get call, in order."""
    return [r.url.split(_DETAILS, 1)[1].split(",") for r in requests if _DETAILS in r.url]


class StaticTokens:
    """A token provider that always has the same token (the token cache is not under test)."""

    def __init__(self) -> None:
        self.invalidated: list[SecretStr] = []

    def get(self) -> SecretStr:
        return SecretStr("unit-test-token")

    def invalidate(self, token: SecretStr) -> None:
        self.invalidated.append(token)


class ScriptedLimiter:
    """The rate limiter's interface: grants every call unless told to answer waits first."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.asked: list[Priority] = []
        self.penalties: list[float] = []
        self.allowances: list[int | None] = []

    def note_server_allowance(self, allowed: int | None) -> None:
        self.allowances.append(allowed)

    def acquire(self, priority: Priority = Priority.HIGH) -> float:
        self.asked.append(priority)
        return self.waits.pop(0) if self.waits else 0.0

    def penalise(self, seconds: float) -> float:
        self.penalties.append(seconds)
        return seconds


# --- the replay's outside world ---------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    target_arn: str
    event_id: str
    body: str
    conversation_id: str | None


@dataclass
class FakeTarget:
    """The redeliverer: records every call; `fail_with(...)` scripts the next answers
    (an exception is raised, None is a success); `on_send` runs inside each call."""

    calls: list[Sent] = field(default_factory=list)
    delivered: list[Sent] = field(default_factory=list)
    on_send: Callable[[], None] | None = None
    forgotten: list[tuple[str, str]] = field(default_factory=list)
    _script: list[BaseException | None] = field(default_factory=list)

    def forget(self, target_arn: str, *, rule_arn: str = "") -> None:
        self.forgotten.append((target_arn, rule_arn))

    def fail_with(self, *answers: BaseException | None) -> None:
        self._script.extend(answers)

    def redeliver(
        self,
        *,
        target_arn: str,
        event_id: str,
        body: str,
        conversation_id: str | None = None,
        rule_arn: str = "",
        override: str | None = None,
    ) -> Delivery:
        sent = Sent(target_arn, event_id, body, conversation_id)
        self.calls.append(sent)
        if self.on_send is not None:
            self.on_send()
        answer = self._script.pop(0) if self._script else None
        if answer is not None:
            raise answer
        self.delivered.append(sent)
        return Delivery(target_arn, target_arn, "fake", f"receipt-{event_id}")


@dataclass
class FakeParking:
    """The parking queue; `refusing` makes every `park` fail as an SQS error would."""

    parked: list[tuple[LedgerItem, str]] = field(default_factory=list)
    refusing: Exception | None = None

    def park(self, item: LedgerItem, reason: str) -> None:
        if self.refusing is not None:
            raise self.refusing
        self.parked.append((copy.deepcopy(item), reason))


@dataclass
class RecordingNews:
    """The replay's `News`: records which conversations were marked; can be made to fail."""

    marks: list[str] = field(default_factory=list)
    broken: bool = False

    def mark(self, conversation_id: str, *, snapshot: Sequence[LedgerItem] = ()) -> None:
        if self.broken:
            raise ConnectionError("redis is down")
        self.marks.append(conversation_id)


@dataclass
class RecordingEnqueuer:
    keys: list[EventKey] = field(default_factory=list)
    countdowns: list[float] = field(default_factory=list)
    generations: list[str | None] = field(default_factory=list)
    parked: list[bool] = field(default_factory=list)

    def enqueue_replay(
        self,
        key: EventKey,
        *,
        lock: str | None = None,
        countdown: float = 0.0,
        generation: str | None = None,
        parked: bool = False,
    ) -> None:
        self.keys.append(key)
        self.countdowns.append(countdown)
        self.generations.append(generation)
        self.parked.append(parked)


@dataclass
class RecordingSchedule:
    """`TrackingNews`'s scheduler: records (conversation id, countdown) of each run asked."""

    runs: list[tuple[str, float]] = field(default_factory=list)

    def __call__(self, conversation_id: str, countdown: float) -> None:
        self.runs.append((conversation_id, countdown))


# --- a worker's moves on the ledger -------------------------------------------------------


def settle(
    ledger: MemoryLedger,
    key: EventKey,
    status: Status,
    *,
    error: str | None = None,
    error_code: str | None = None,
    next_attempt_at: float | None = None,
) -> LedgerItem:
    """Claim an item and end the attempt with `status`, as a worker would."""
    claimed = ledger.claim(key, lease_seconds=LEASE_SECONDS)
    return ledger.finish(
        claimed,
        status,
        outcome=status.value,
        error=error,
        error_code=error_code,
        next_attempt_at=next_attempt_at,
    )
