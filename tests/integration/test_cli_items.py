"""What the commands say of one item: `inspect --json` gives its body byte for byte, and its
last error is written for the state it is in (exhausted, redriven).

The item is replayed by the real `Replayer` to an HTTP endpoint on loopback (`HttpSink`)
through the ledger on the moto server; the commands run in-process through click's runner.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from click.testing import CliRunner, Result
from helpers import genesys_event, new_ledger, received_message

from cli.main import main
from devstack.http_sink import HttpSink
from dlq.events import EventKey, parse_dlq_message
from dlq.ledger import Ledger, LedgerItem, Status
from dlq.locks import ConversationLocks
from dlq.replay import AttemptFailed, Replayer, ReplayOptions, ReplayOutcome
from dlq.retry import RetryPolicy
from dlq.settings import Settings
from dlq.targets import Redeliverer

API_DESTINATION = "arn:aws:events:us-east-1:111122223333:api-destination/crm/0b0c"


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def inspected(env: dict[str, str], event_id: str, *flags: str) -> dict[str, Any]:
    result = run(env, "inspect", event_id, "--json", *flags)
    assert result.exit_code == 0, result.output
    (entry,) = json.loads(result.stdout)
    return dict(entry)


def sha256(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def odd_body() -> str:
    """An event as no serialiser of ours would write it: tabs and spaced separators, keys
    out of order, escaped and literal non-ASCII, numbers spelt `1.50` and `1e2`."""
    event = genesys_event()
    event["detail"]["eventBody"]["name"] = "Zoë Ångström"
    text = json.dumps(event, indent="\t", separators=(" ,", " :  "), ensure_ascii=True)
    return text.rstrip()[:-1] + ' , "zeta" : "Ωmega ✓ 🚀", "amount":1.50, "alpha":1e2 }\n'


class NoNews:
    def mark(self, conversation_id: str, *, snapshot: Any = ()) -> None:
        pass


class Stand:
    """One item's ledger and replayer, its HTTP endpoint, and the CLI's environment."""

    def __init__(self, settings: Settings, ledger: Ledger, sink: HttpSink, redis_client) -> None:
        self.ledger = ledger
        self.sink = sink
        self.env = {
            "LEDGER_TABLE": ledger.table,
            "REDIS_URL": settings.redis_url,
            "DLQ_QUEUE_URL": "",
            "REPLAY_PARKING_QUEUE_URL": "",
        }
        self.replayer = Replayer(
            ledger=ledger,
            redeliverer=Redeliverer(settings, cache=redis_client),
            locks=ConversationLocks(redis_client, ttl_seconds=30),
            directory=None,
            news=NoNews(),
            policy=RetryPolicy(max_attempts=2, backoff_base=1, backoff_max=1),
            options=ReplayOptions(verify_conversation=False, in_order=False),
        )

    def receive(self, body: str) -> EventKey:
        message = received_message(body, API_DESTINATION)
        parsed = parse_dlq_message(message)
        self.ledger.put_received(parsed, message)
        return parsed.key

    def attempt(self, key: EventKey) -> ReplayOutcome | None:
        """One attempt; a failed one's retry is recorded as due at once. None: retrying."""
        try:
            return self.replayer.replay(key)
        except AttemptFailed as failed:
            failed.schedule(0)
            return None

    def item(self, key: EventKey) -> LedgerItem:
        item = self.ledger.get(key)
        assert item is not None
        return item


@pytest.fixture()
def stand(
    moto_server, redis_url, redis_client, unique, make_settings: Callable[..., Settings]
) -> Iterator[Stand]:
    with HttpSink(status=200) as sink:
        settings = make_settings(
            redis_url=redis_url,
            replay_http_targets={API_DESTINATION: sink.url},
            replay_trust_target_arn=True,
        )
        yield Stand(settings, new_ledger(settings, f"ledger-{unique}"), sink, redis_client)


# --- inspect --json: the body as stored ---------------------------------------------------


def test_inspect_json_unmasked_gives_the_stored_body_byte_for_byte_as_its_digest_says(stand):
    body = odd_body()
    key = stand.receive(body)
    assert stand.attempt(key) is ReplayOutcome.REPLAYED
    delivered = stand.item(key).history[-1]
    assert stand.sink.bodies == [body.encode("utf-8")]

    entry = inspected(stand.env, key.event_id, "--unmasked")

    assert entry["body"] == body
    assert json.dumps(json.loads(body)) != body  # a re-serialisation would not do
    assert sha256(entry["body"]) == entry["body_digest"] == delivered["payload_digest"]
    assert entry["sent"]["payload_digest"] == delivered["payload_digest"]
    assert entry["body_masked"] is False


def test_inspect_json_masked_says_so_and_its_body_cannot_match_the_digest(stand):
    body = odd_body()
    key = stand.receive(body)
    assert stand.attempt(key) is ReplayOutcome.REPLAYED
    digest = stand.item(key).history[-1]["payload_digest"]

    entry = inspected(stand.env, key.event_id)

    assert entry["body_masked"] is True
    shown = json.loads(entry["body"])
    assert shown["detail"]["eventBody"]["name"] == "***"
    assert shown["zeta"] == "Ωmega ✓ 🚀"
    assert "Zoë" not in json.dumps(entry, ensure_ascii=False)
    assert sha256(entry["body"]) != digest
    assert entry["body_digest"] == digest  # the stored body's, to compare without seeing it


def test_inspect_for_a_person_still_indents_the_body(stand):
    key = stand.receive(odd_body())

    result = run(stand.env, "inspect", key.event_id, "--unmasked")

    assert result.exit_code == 0, result.output
    shown = result.stdout.split("original body:\n", 1)[1]
    assert shown.startswith('{\n  "version": "0",\n')
    assert '\n  "zeta": "Ωmega ✓ 🚀",\n  "amount": 1.5,\n  "alpha": 100.0\n}' in shown
    assert '"name": "Zoë Ångström"' in shown


# --- the last error, for the item's state -------------------------------------------------


def exhausted(stand: Stand) -> EventKey:
    """An item whose two attempts both met a 503."""
    stand.sink.status = 503
    key = stand.receive(json.dumps(genesys_event()))
    assert stand.attempt(key) is None
    retrying = stand.item(key)
    assert retrying.status is Status.RETRY_SCHEDULED
    assert (retrying.last_error or "").endswith("retrying later")
    assert stand.attempt(key) is ReplayOutcome.EXHAUSTED
    return key


def test_an_exhausted_items_last_error_says_no_attempt_is_left_not_retrying_later(stand):
    key = exhausted(stand)

    entry = inspected(stand.env, key.event_id)
    listed = run(stand.env, "status", "--status", "exhausted", "--json")

    assert entry["status"] == "exhausted"
    assert entry["last_error_code"] == "HTTP503"
    error = entry["last_error"]
    assert "HTTP 503" in error
    assert "retrying later" not in error and "retry later" not in error
    assert error.endswith(
        "; no attempts left after 2 (the workers' REPLAY_MAX_ATTEMPTS): not retried; "
        "redrive it once the cause is fixed"
    )
    assert [i["last_error"] for i in json.loads(listed.stdout)] == [error]


def test_a_redriven_item_keeps_its_old_error_as_history_not_as_its_last(stand):
    key = exhausted(stand)
    old = stand.item(key).last_error

    result = run(stand.env, "redrive", "--yes", "--json")

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary.pop("operator") == "arn:aws:sts::123456789012:user/moto"  # moto's caller
    assert summary == {"redriven": 1, "skipped": 0}
    entry = inspected(stand.env, key.event_id)
    assert (entry["status"], entry["last_error"], entry["last_error_code"]) == (
        "received",
        None,
        None,
    )
    redriven = entry["history"][-1]
    assert (redriven["outcome"], redriven["error"], redriven["error_code"]) == (
        "redrive by operator",
        old,
        "HTTP503",
    )


def test_a_redriven_item_that_then_succeeds_shows_no_error_at_all(stand):
    key = exhausted(stand)
    assert run(stand.env, "redrive", "--yes").exit_code == 0
    stand.sink.status = 200

    assert stand.attempt(key) is ReplayOutcome.REPLAYED

    entry = inspected(stand.env, key.event_id)
    assert (entry["status"], entry["last_error"], entry["last_error_code"]) == (
        "replayed",
        None,
        None,
    )
