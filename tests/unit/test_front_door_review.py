"""The DLQ's visibility timeout is judged for the front door that drains it.

Only an SQS-triggered Lambda depends on the queue's own visibility timeout (Lambda
refuses a queue whose timeout is below the function's); the poller asks for its own on
each receive. INGEST_FRONT_DOOR says which one ingests; --lambda-timeout, when given,
wins over it.
"""

from __future__ import annotations

from typing import Any

import pytest

from dlq.doctor.queue import (
    DEFAULT_LAMBDA_TIMEOUT,
    Finding,
    Severity,
    ingest_lambda_timeout,
    review_dlq,
)

QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/genesys-eventbridge-dlq"
POLLER_VISIBILITY = 120


class QueueAttributes:
    """An SQS client whose one queue has these attributes (GetQueueAttributes only)."""

    def __init__(self, **attributes: str) -> None:
        self.attributes = {
            "QueueArn": "arn:aws:sqs:us-east-1:123456789012:genesys-eventbridge-dlq",
            "ApproximateNumberOfMessages": "0",
            "ApproximateNumberOfMessagesNotVisible": "0",
            **attributes,
        }

    def get_queue_attributes(self, *, QueueUrl: str, AttributeNames: list[str]) -> Any:
        assert QueueUrl == QUEUE_URL
        return {"Attributes": dict(self.attributes)}


def visibility(front_door: str, given: int | None = None, **attributes: str) -> Finding:
    """The review's visibility finding for a DLQ of SQS's defaults (VisibilityTimeout 30 s)."""
    findings = review_dlq(
        QueueAttributes(**attributes),
        QUEUE_URL,
        lambda_timeout=ingest_lambda_timeout(front_door, given),
        receive_visibility=POLLER_VISIBILITY,
    )
    (found,) = [f for f in findings if f.check == "dlq visibility timeout"]
    return found


def test_the_lambda_front_door_is_judged_at_the_default_lambda_timeout():
    assert ingest_lambda_timeout("lambda", None) == DEFAULT_LAMBDA_TIMEOUT


def test_the_poller_front_door_has_no_lambda_to_judge():
    assert ingest_lambda_timeout("poller", None) is None


@pytest.mark.parametrize("front_door", ["lambda", "poller"])
def test_an_explicit_lambda_timeout_wins_over_the_front_door(front_door):
    assert ingest_lambda_timeout(front_door, 15) == 15


@pytest.mark.parametrize("front_door", ["lambda", "poller"])
def test_an_explicit_zero_means_no_lambda_whatever_the_front_door(front_door):
    assert ingest_lambda_timeout(front_door, 0) is None


def test_a_poller_deployment_passes_a_dlq_with_the_default_visibility_timeout():
    found = visibility("poller")

    assert found.severity is Severity.OK
    assert "VisibilityTimeout 30 s; no ingest Lambda (INGEST_FRONT_DOOR=poller" in found.found
    assert f"the poller is not affected (it asks {POLLER_VISIBILITY} s" in found.found


def test_a_lambda_deployment_fails_a_dlq_whose_visibility_is_below_the_function_timeout():
    found = visibility("lambda")

    assert found.severity is Severity.FAIL
    assert "Lambda refuses such a queue as a trigger" in found.found


def test_the_lambda_failure_names_every_way_out_the_front_door_setting_included():
    fix = visibility("lambda").fix

    advised = 6 * DEFAULT_LAMBDA_TIMEOUT
    assert fix.startswith(f"raise the queue's VisibilityTimeout to at least {advised} s")
    assert "pass the function's real timeout with --lambda-timeout" in fix
    assert "set INGEST_FRONT_DOOR=poller if the poller ingests" in fix


def test_a_lambda_timeout_passed_to_a_poller_deployment_is_judged_all_the_same():
    found = visibility("poller", given=60)

    assert found.severity is Severity.FAIL


def test_a_visibility_timeout_of_six_lambda_timeouts_passes_the_lambda_front_door():
    found = visibility("lambda", VisibilityTimeout=str(6 * DEFAULT_LAMBDA_TIMEOUT))

    assert found.severity is Severity.OK
