"""An exhausted item's last error: the failure as it was said, without its promise to retry."""

from __future__ import annotations

import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

from dlq.genesys.responses import status_error
from dlq.genesys.transport import Response
from dlq.replay.wording import out_of_attempts, too_old, without_promise
from dlq.targets.errors import classify, from_botocore_error

QUEUE = "arn:aws:sqs:us-east-1:111122223333:crm-events"


def genesys(status: int) -> str:
    answer = Response.of(status, {"code": "bad", "message": "no"}, {"inin-correlation-id": "c-1"})
    return str(status_error(answer, "GET /api/v2/conversations/{id}"))


#: Real transient failures, as the error builders word them, and what is left of each.
PROMISES = {
    "throttled": (
        str(classify(QUEUE, "ThrottlingException", "Rate exceeded")),
        f"{QUEUE} answered ThrottlingException: Rate exceeded; throttled",
    ),
    "unavailable": (
        str(classify(QUEUE, "ServiceUnavailable", "down", status=503)),
        f"{QUEUE} answered ServiceUnavailable: down; the service failed on its side",
    ),
    "no answer in time": (
        str(from_botocore_error(QUEUE, ReadTimeoutError(endpoint_url="https://sqs"))),
        f'no answer from {QUEUE} in time (Read timeout on endpoint URL: "https://sqs"); '
        "the call may still have been delivered",
    ),
    "unreachable": (
        str(from_botocore_error(QUEUE, EndpointConnectionError(endpoint_url="https://sqs"))),
        f'could not reach {QUEUE}: Could not connect to the endpoint URL: "https://sqs"',
    ),
    "Genesys 5xx": (
        genesys(503),
        "Genesys answered 503 (bad: no) to GET /api/v2/conversations/{id}; correlation id "
        "c-1: a failure on Genesys's side",
    ),
    "Genesys 401, advice after the promise": (
        genesys(401),
        "Genesys answered 401 (bad: no) to GET /api/v2/conversations/{id}; correlation id "
        "c-1: a freshly issued token was refused too; it was dropped; if it persists, check "
        "that the OAuth client is active and in this org/region",
    ),
    "a promise with its reason in brackets": (
        "GET x got no answer within the timeouts: Genesys is slow or unreachable; retry later "
        "(attribute updates merge, so a repeat is safe)",
        "GET x got no answer within the timeouts: Genesys is slow or unreachable",
    ),
    "an interrupted send": (
        "the send was interrupted (SoftTimeLimitExceeded: ): the target may have received "
        "the event; it is sent again after the backoff",
        "the send was interrupted (SoftTimeLimitExceeded: ): the target may have received "
        "the event",
    ),
    "an HTTP target's timeout": (
        "https://crm did not answer in time (ReadTimeout); it may have received the event, "
        "retrying later with the same Idempotency-Key",
        "https://crm did not answer in time (ReadTimeout); it may have received the event",
    ),
}


@pytest.mark.parametrize(("said", "left"), PROMISES.values(), ids=PROMISES.keys())
def test_a_failure_loses_its_promise_to_retry_and_keeps_the_rest(said, left):
    assert without_promise(said) == left


@pytest.mark.parametrize(
    "said",
    [
        "503 from the target",
        "a retry later would not help: the queue is gone",
        f"{QUEUE} answered AccessDenied: no; not allowed: grant the replay role permission",
    ],
)
def test_a_failure_without_a_promise_is_left_as_it_was(said):
    assert without_promise(said) == said


def test_out_of_attempts_says_the_failure_then_that_it_is_not_retried():
    said = out_of_attempts("HTTP 503 from https://crm; retrying later", attempts=8)

    assert said == (
        "HTTP 503 from https://crm; no attempts left after 8 (the workers' REPLAY_MAX_ATTEMPTS): "
        "not retried; redrive it once the cause is fixed"
    )
    assert "retrying later" not in said


def test_out_of_attempts_without_a_recorded_failure_says_only_that():
    assert out_of_attempts(None, attempts=3) == (
        "no attempts left after 3 (the workers' REPLAY_MAX_ATTEMPTS): not retried; "
        "redrive it once the cause is fixed"
    )


def test_too_old_keeps_the_last_failure_as_what_it_was():
    assert too_old("503 from the target; retrying later") == (
        "older than REPLAY_MAX_EVENT_AGE_SECONDS: not retried (a redrive starts its age again); "
        "the last error was: 503 from the target"
    )
