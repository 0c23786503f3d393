"""Operator controls end to end (issue 24): resolve, an edited body, unpark.

A real worker (in-process) over redis-server, moto's server and the Genesys simulator;
the commands run through click's runner with the stack's settings in the environment.
Each behaviour is checked where it lands: the target queue, the ledger's history, the
conversation's participant attributes, the parking queue.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
from click.testing import CliRunner, Result
from helpers import eventually, genesys_event, parsed
from stack import Stack, configured, in_process_worker, sim_env

from cli.main import main
from dlq.ledger import LedgerItem, Status
from dlq.parking import ParkingQueue

pytestmark = pytest.mark.slow

#: The rule target's input transformation: what the target receives of an event.
TRANSFORMER = {
    "InputPathsMap": {"id": "$.id", "note": "$.detail.note"},
    "InputTemplate": '{"event": <id>, "note": <note>}',
}


@pytest.fixture(scope="module")
def worker(redis_server, moto_server, sim):
    with configured(sim_env(sim)), in_process_worker(concurrency=4):
        yield


@pytest.fixture()
def stack(worker, sim, unique):
    sim.admin.reset()
    sim.admin.configure(rate_limit=100_000)
    with configured({"LEDGER_TABLE": f"ledger-{unique}"}):
        yield Stack(unique, sim)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def ended(stack: Stack, target: str, status: Status, *, note: str = "original") -> LedgerItem:
    """An item of a seeded conversation that ended `status` for `target` (a rule target)."""
    conversation = str(uuid.uuid4())
    stack.sim.admin.seed(conversation)
    event = genesys_event(conversation_id=conversation)
    del event["detail"]["eventBody"]["participantId"]  # annotate the customer
    event["detail"]["note"] = note
    item, message = parsed(event, target, rule_arn=stack.rule_arn)
    stack.ledger.put_received(item, message)
    claimed = stack.ledger.claim(item.key, lease_seconds=60)
    return stack.ledger.finish(
        claimed, status, outcome=status.value, error="503 from the target", error_code="HTTP503"
    )


def final(stack: Stack, item: LedgerItem, *, timeout: float = 30.0) -> LedgerItem:
    def done() -> LedgerItem | None:
        now = stack.ledger.get(item.key)
        return now if now and now.status not in (Status.RECEIVED, Status.IN_PROGRESS) else None

    ended_item = eventually(done, timeout=timeout, what=f"{item.event_id} to end")
    assert ended_item is not None
    return ended_item


def test_a_resolved_event_is_written_onto_its_conversation_and_never_sent(stack):
    item = ended(stack, stack.target_arn, Status.EXHAUSTED)

    result = run("resolve", item.event_id, "--reason", "keyed in by hand", "--yes")

    assert result.exit_code == 0, result.output
    customer = stack.sim.admin.conversation(item.conversation_id)["participants"][0]["id"]

    def written() -> dict[str, str] | None:
        attributes = stack.sim.admin.attributes(item.conversation_id, customer)
        return attributes if attributes.get("dlqReplayStatus") == "resolved" else None

    attributes = eventually(written, timeout=30, what="the resolved summary")
    assert attributes is not None
    assert attributes["dlqReplayResolved"] == "1"
    assert attributes["dlqReplayExhausted"] == "0"
    assert stack.target_messages() == []
    resolved = stack.ledger.get(item.key)
    assert resolved.status is Status.RESOLVED
    assert resolved.history[-1]["operator"].startswith("arn:aws:")


def test_an_edited_body_is_sent_through_the_rules_transformation_and_the_original_kept(
    stack, tmp_path
):
    inbox = stack.queue(f"inbox-{stack.unique}")
    stack.add_target(stack.arn_of(inbox), InputTransformer=TRANSFORMER)
    item = ended(stack, stack.arn_of(inbox), Status.FAILED, note="wrong")
    edit = json.loads(item.body)
    edit["detail"]["note"] = "corrected"
    body_file = tmp_path / "event.json"
    body_file.write_text(json.dumps(edit))

    result = run("redrive", item.event_id, "--body-file", str(body_file), "--operator", "carol",
                 "--yes")  # fmt: skip

    assert result.exit_code == 0, result.output
    done = final(stack, item)
    assert done.status is Status.REPLAYED
    assert [json.loads(b) for b in stack.target_messages(inbox)] == [
        {"event": item.event_id, "note": "corrected"}
    ]
    assert done.body == item.body and done.edited_body == body_file.read_text()
    redrive = next(h for h in done.history if h.get("edited_body_digest"))
    assert redrive["operator"] == "carol"
    assert redrive["edited_body_digest"].startswith("sha256:")


def test_an_edit_of_another_event_is_refused_and_nothing_changes(stack, tmp_path):
    item = ended(stack, stack.target_arn, Status.FAILED)
    other = json.loads(item.body) | {"id": str(uuid.uuid4())}
    body_file = tmp_path / "event.json"
    body_file.write_text(json.dumps(other))

    result = run("redrive", item.event_id, "--body-file", str(body_file), "--yes")

    assert result.exit_code == 2
    assert "an edit keeps the id" in result.output
    assert stack.ledger.get(item.key).status is Status.FAILED


def test_unpark_readmits_a_parked_event_delivers_it_once_and_leaves_the_others(stack):
    parking_url = stack.queue(f"parking-{stack.unique}")
    other_target = stack.arn_of(stack.queue(f"other-{stack.unique}"))
    stack.add_target(other_target)
    parking = ParkingQueue(stack.sqs, parking_url)
    chosen = ended(stack, stack.target_arn, Status.EXHAUSTED)
    parking.park(chosen, "503 again: no attempt left")
    left = ended(stack, other_target, Status.EXHAUSTED)
    parking.park(left, "503 again: no attempt left")

    with configured({"REPLAY_PARKING_QUEUE_URL": parking_url}):
        dry = run("unpark", "--target-arn", stack.target_arn, "--dry-run", "--json")
        assert json.loads(dry.stdout)["taken"] == {chosen.event_id: "would unpark"}
        result = run("unpark", "--target-arn", stack.target_arn, "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["taken"] == {chosen.event_id: "redriven"} and report["not_chosen"] == 1
    done = final(stack, chosen)
    assert done.status is Status.REPLAYED and done.attempts == 1
    unparked = next(h for h in done.history if h["outcome"] == "unparked from the parking queue")
    assert unparked["operator"] == report["operator"]
    assert [json.loads(b)["id"] for b in stack.target_messages()] == [chosen.event_id]
    time.sleep(0.5)
    remaining = stack.sqs.receive_message(
        QueueUrl=parking_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
    ).get("Messages", [])
    assert [json.loads(m["Body"])["id"] for m in remaining] == [left.event_id]
    assert stack.ledger.get(left.key).status is Status.EXHAUSTED
