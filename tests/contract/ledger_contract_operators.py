"""The ledger contract, continued: an operator's resolve and edited-body redrive.

Collected with `ledger_contract.py` by the same two modules (tests/unit/
test_ledger_contract_memory.py, tests/contract/test_ledger_contract_dynamodb.py), so both
stores are held to the same behaviour. Its fixtures and helpers are that module's.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from dlq.clock import iso
from dlq.events import EventKey
from dlq.ledger import RESOLVABLE_STATUSES, ClaimRefused, Status

from .ledger_contract import LEASE, TARGET, current, item_in, key_of, receive

OPERATOR = "arn:aws:sts::111122223333:assumed-role/ops/alice"


# --- resolve ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", sorted(RESOLVABLE_STATUSES - {Status.IN_PROGRESS}))
def test_resolve_ends_the_item_resolved_with_the_operator_and_reason(ledger, clock, stored, status):
    key = item_in(ledger, status)
    listed = current(ledger, key)
    clock.advance(5)

    item = ledger.resolve(listed, reason="the CRM team entered it by hand", operator=OPERATOR)

    assert item.status is Status.RESOLVED
    assert item.updated_at == iso(clock.now())
    assert item.attempts == listed.attempts
    assert item.history[-1] == {
        "at": iso(clock.now()),
        "outcome": "resolved",
        "note": "the CRM team entered it by hand",
        "operator": OPERATOR,
    }
    assert item.history[:-1] == listed.history
    assert not {"lease_until", "claim_token", "next_attempt_at"} & set(stored(key))
    assert item.body == listed.body and item == current(ledger, key)


def test_a_resolved_item_keeps_the_error_it_was_resolved_from(ledger):
    key = item_in(ledger, Status.EXHAUSTED)

    item = ledger.resolve(current(ledger, key), reason="obsolete", operator=OPERATOR)

    assert item.last_error == "503 from the target"


def test_resolve_of_an_item_in_progress_under_a_live_lease_is_refused(ledger, clock, stored):
    key = item_in(ledger, Status.IN_PROGRESS)
    listed = current(ledger, key)
    before = stored(key)
    clock.advance(LEASE - 1)

    with pytest.raises(ClaimRefused) as refused:
        ledger.resolve(listed, reason="obsolete", operator=OPERATOR)

    assert refused.value.current == listed
    assert stored(key) == before


def test_resolve_of_an_item_whose_lease_lapsed_ends_it(ledger, clock):
    key = item_in(ledger, Status.IN_PROGRESS)
    listed = current(ledger, key)
    clock.advance(LEASE + 1)

    item = ledger.resolve(listed, reason="obsolete", operator=OPERATOR)

    assert item.status is Status.RESOLVED and item.claim_token is None


@pytest.mark.parametrize("status", [Status.REPLAYED, Status.REJECTED, Status.RESOLVED])
def test_resolve_is_refused_for_an_item_that_ended_on_its_own_account(ledger, stored, status):
    key = item_in(ledger, status)
    listed = current(ledger, key)
    before = stored(key)

    with pytest.raises(ClaimRefused) as refused:
        ledger.resolve(listed, reason="obsolete", operator=OPERATOR)

    assert refused.value.current == listed and stored(key) == before


def test_resolve_is_refused_when_the_item_changed_since_it_was_listed(ledger, clock, stored):
    key = item_in(ledger, Status.FAILED)
    listed = current(ledger, key)
    clock.advance(1)
    ledger.redrive(key, note="the other operator")
    claimed = ledger.claim(key, lease_seconds=LEASE)
    before = stored(key)

    with pytest.raises(ClaimRefused) as refused:
        ledger.resolve(listed, reason="obsolete", operator=OPERATOR)

    assert refused.value.current == claimed == current(ledger, key)
    assert stored(key) == before


def test_a_resolved_item_is_final_claim_and_redrive_refuse_it(ledger, clock):
    key = item_in(ledger, Status.RETRY_SCHEDULED)
    ledger.resolve(current(ledger, key), reason="obsolete", operator=OPERATOR)
    clock.advance(3600)

    with pytest.raises(ClaimRefused):
        ledger.claim(key, lease_seconds=LEASE)
    with pytest.raises(ClaimRefused):
        ledger.redrive(key)

    assert current(ledger, key).status is Status.RESOLVED


def test_an_attempt_that_lost_its_lapsed_lease_to_a_resolve_cannot_finish(ledger, clock):
    from dlq.ledger import StaleClaim

    key = key_of(receive(ledger))
    claimed = ledger.claim(key, lease_seconds=LEASE)
    clock.advance(LEASE + 1)
    ledger.resolve(current(ledger, key), reason="obsolete", operator=OPERATOR)

    with pytest.raises(StaleClaim):
        ledger.finish(claimed, Status.REPLAYED, outcome="replayed")

    assert current(ledger, key).status is Status.RESOLVED


def test_finish_never_moves_an_item_to_resolved(ledger):
    key = key_of(receive(ledger))
    claimed = ledger.claim(key, lease_seconds=LEASE)

    with pytest.raises(ValueError, match="resolved"):
        ledger.finish(claimed, Status.RESOLVED, outcome="resolved")

    assert current(ledger, key) == claimed


def test_a_resolved_item_can_be_forgotten_and_keeps_who_resolved_it(ledger, stored):
    key = item_in(ledger, Status.RESOLVED)

    item = ledger.forget(current(ledger, key))

    assert "body" not in stored(key)
    resolution = next(h for h in item.history if h["outcome"] == "resolved")
    assert resolution == {"at": resolution["at"], "outcome": "resolved", "operator": "ops"}


# --- redrive: the operator and an edited body --------------------------------------------


def edited(ledger, key: EventKey, **changes: object) -> str:
    """The item's body with `changes` made to its detail: what an operator writes."""
    event = json.loads(current(ledger, key).body)
    event["detail"] = {**event["detail"], **changes}
    return json.dumps(event)


def test_redrive_records_the_operator_in_its_history_entry(ledger, clock):
    key = item_in(ledger, Status.FAILED)

    item = ledger.redrive(key, note="redrive by operator", operator=OPERATOR)

    assert item.history[-1]["operator"] == OPERATOR
    assert item.history[-1]["outcome"] == "redrive by operator"


def test_redrive_with_an_edited_body_keeps_the_original_and_records_the_digest(
    ledger, clock, stored
):
    key = item_in(ledger, Status.EXHAUSTED)
    original = current(ledger, key).body
    body = edited(ledger, key, fixed=True)

    item = ledger.redrive(key, note="redrive by operator", operator=OPERATOR, edited_body=body)

    assert (item.body, item.edited_body, item.replay_body) == (original, body, body)
    assert stored(key)["body"] == original and stored(key)["edited_body"] == body
    digest = "sha256:" + hashlib.sha256(body.encode()).hexdigest()
    assert item.history[-1]["edited_body_digest"] == digest
    assert item.history[-1]["operator"] == OPERATOR
    assert body not in json.dumps(item.history)
    assert ledger.claim(key, lease_seconds=LEASE).replay_body == body


def test_a_later_plain_redrive_keeps_the_edited_body_and_a_new_edit_replaces_it(ledger):
    key = item_in(ledger, Status.FAILED)
    first = edited(ledger, key, fixed=1)
    ledger.redrive(key, edited_body=first)
    for round_ in range(2):
        claimed = ledger.claim(key, lease_seconds=LEASE)
        ledger.finish(claimed, Status.FAILED, outcome="failed", error="400")
        if round_ == 0:
            assert ledger.redrive(key).edited_body == first
    second = edited(ledger, key, fixed=2)

    item = ledger.redrive(key, edited_body=second)

    assert item.edited_body == second
    digest = "sha256:" + hashlib.sha256(second.encode()).hexdigest()
    assert item.history[-1]["edited_body_digest"] == digest


def test_an_item_never_edited_sends_its_original_body(ledger):
    key = key_of(receive(ledger))

    item = current(ledger, key)

    assert item.edited_body is None and item.replay_body == item.body


def test_forget_drops_the_edited_body_and_keeps_its_digest(ledger, stored):
    key = item_in(ledger, Status.FAILED)
    ledger.redrive(key, edited_body=edited(ledger, key, fixed=True), operator=OPERATOR)
    claimed = ledger.claim(key, lease_seconds=LEASE)
    ledger.finish(claimed, Status.REPLAYED, outcome="replayed")

    item = ledger.forget(current(ledger, key))

    assert not {"body", "edited_body"} & set(stored(key))
    assert item.edited_body is None
    redriven = [h for h in item.history if "edited_body_digest" in h]
    assert redriven and redriven[0]["operator"] == OPERATOR


def test_redrive_is_refused_for_a_target_it_never_had(ledger):
    with pytest.raises(ClaimRefused):
        ledger.redrive(EventKey("never", TARGET), edited_body="{}")
