"""`dlq.awserrors`: one AWS error vocabulary, read alike by targets, doctor and the poller.

Permanent (an operator must act): bad credentials, access denied, a KMS key, a missing
resource, invalid parameters. Retryable: throttling, failures on AWS's side, a busy
resource, and expired session tokens (role credentials renew themselves).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, NoCredentialsError, ParamValidationError

import ingest.poller
from dlq.awserrors import (
    VOCABULARY,
    AwsErrorKind,
    aws_error,
    explain_aws,
    is_permanent,
    kind_of,
)
from dlq.awserrors.codes import _KINDS
from dlq.errors import GiveUp, HandOffError, RetryLater
from dlq.targets.errors import TargetFatal, TargetRetryable, TargetUnavailable, classify
from ingest.poller import Poller

ROOT = Path(__file__).resolve().parents[2]
TARGET = "arn:aws:sqs:us-east-1:123456789012:crm"


def client_error(
    code: str, operation: str = "ReceiveMessage", status: int | None = 400, message: str = ""
) -> ClientError:
    metadata = {"HTTPStatusCode": status} if status is not None else {}
    return ClientError(
        {"Error": {"Code": code, "Message": message or code}, "ResponseMetadata": metadata},
        operation,
    )


class ScriptedSqs:
    """Receives raise the scripted errors in turn, then deliver `messages`, then nothing."""

    def __init__(self, *errors: Exception, messages: list[dict[str, Any]] | None = None) -> None:
        self.errors = list(errors)
        self.messages = list(messages or [])
        self.receives = 0

    def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        self.receives += 1
        if self.errors:
            raise self.errors.pop(0)
        batch, self.messages = self.messages, []
        return {"Messages": batch}

    def delete_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        return {}

    def change_message_visibility_batch(self, **kwargs: Any) -> dict[str, Any]:
        return {}


class RefusingDoor:
    """A front door whose ledger write fails with `cause` (by default, never reached)."""

    def __init__(self, cause: Exception | None = None) -> None:
        self.cause = cause

    def handle(self, message: Any, *, draining: bool = False) -> Any:
        if self.cause is None:
            raise AssertionError("no message should reach the front door")
        raise HandOffError("the ledger refused the item") from self.cause

    def received(self, count: int, *, wait_seconds: float) -> None:
        return None


def poller(sqs: ScriptedSqs, door: RefusingDoor | None = None) -> Poller:
    return Poller(
        sqs=sqs,
        queue_url="https://sqs/q",
        front_door=door or RefusingDoor(),  # type: ignore[arg-type]
        wait_seconds=0,
    )


@pytest.fixture()
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest.poller, "RECEIVE_BACKOFF_FIRST", 0.001)


# --- ExpiredToken, the code the two old tables disagreed on ------------------------------


@pytest.mark.parametrize("code", ["ExpiredToken", "ExpiredTokenException"])
def test_an_expired_token_is_retryable_in_the_vocabulary(code: str) -> None:
    assert kind_of(code, http_status=403) is AwsErrorKind.EXPIRED
    assert not AwsErrorKind.EXPIRED.permanent


def test_a_target_answering_expired_token_is_retried_later() -> None:
    error = classify(
        TARGET, "ExpiredToken", "The security token included in the request is expired"
    )

    assert isinstance(error, TargetUnavailable)
    assert isinstance(error, RetryLater)


def test_doctor_explains_an_expired_token_as_not_permanent() -> None:
    explained = explain_aws(client_error("ExpiredToken", "Query", 400))

    assert not explained.permanent
    assert "expired" in explained.cause
    assert "aws sso login" in explained.fix


def test_the_poller_rides_out_an_expired_token(quick_backoff: None) -> None:
    sqs = ScriptedSqs(client_error("ExpiredToken", status=403))

    poller(sqs).run(until_empty=True)

    assert sqs.receives == 2


# --- one verdict per code, whoever asks -------------------------------------------------


def test_no_code_has_two_kinds() -> None:
    assert sum(len(codes) for codes in _KINDS.values()) == len(VOCABULARY)


@pytest.mark.parametrize("code", sorted(VOCABULARY))
def test_doctor_and_the_poller_agree_with_the_vocabulary(code: str) -> None:
    error = client_error(code, "SendMessage")

    assert explain_aws(error).permanent is VOCABULARY[code].permanent
    assert is_permanent(error) is VOCABULARY[code].permanent


@pytest.mark.parametrize("code", sorted(VOCABULARY))
def test_targets_agree_with_the_vocabulary(code: str) -> None:
    error = classify(TARGET, code, "said", status=400)

    expected = TargetFatal if VOCABULARY[code].permanent else TargetRetryable
    assert isinstance(error, expected)


@pytest.mark.parametrize(
    ("code", "permanent"),
    [
        ("ThrottlingException", False),
        ("InternalError", False),
        ("ResourceConflictException", False),
        ("AccessDenied", True),
        ("InvalidClientTokenId", True),
        ("KMS.DisabledException", True),
        ("AWS.SimpleQueueService.NonExistentQueue", True),
        ("ResourceNotFoundException", True),
        ("ValidationException", True),
    ],
)
def test_a_code_is_permanent_only_when_an_operator_must_act(code: str, permanent: bool) -> None:
    assert kind_of(code).permanent is permanent


def test_a_code_that_names_throttling_is_throttling() -> None:
    assert kind_of("SomeServiceThrottledYou") is AwsErrorKind.THROTTLED


def test_an_unknown_code_answered_with_403_is_access_denied() -> None:
    assert kind_of("SomethingNew", http_status=403) is AwsErrorKind.ACCESS_DENIED


def test_an_unknown_code_answered_with_a_5xx_is_unavailable() -> None:
    assert kind_of("SomethingNew", http_status=502) is AwsErrorKind.UNAVAILABLE


def test_an_unknown_code_answered_with_another_4xx_does_not_stop_the_poller() -> None:
    assert kind_of("SomethingNew", http_status=400) is AwsErrorKind.UNKNOWN
    assert not is_permanent(client_error("SomethingNew"))


def test_missing_credentials_are_permanent() -> None:
    assert is_permanent(NoCredentialsError())


def test_invalid_call_parameters_are_permanent() -> None:
    assert is_permanent(ParamValidationError(report="Invalid type for parameter QueueUrl"))


def test_a_missing_table_is_explained_as_the_ledger_table() -> None:
    explained = explain_aws(client_error("ResourceNotFoundException", "PutItem"))

    assert explained.cause.startswith("the ledger table does not exist (PutItem: ")


def test_the_code_of_an_xml_answer_to_a_json_call_is_read_from_the_xml() -> None:
    xml = "<ErrorResponse><Error><Code>AccessDenied</Code><Message>no</Message></Error>"
    error = aws_error(client_error("403", "Query", 403, message=xml))

    assert (error.code, error.message, error.kind) == ("AccessDenied", "no", "access denied")


# --- the poller --------------------------------------------------------------------------


def test_a_permanent_receive_error_stops_the_poller() -> None:
    sqs = ScriptedSqs(client_error("AccessDenied", status=403))

    with pytest.raises(ClientError):
        poller(sqs).run()

    assert sqs.receives == 1


def test_an_item_the_ledger_refuses_as_invalid_does_not_stop_the_poller() -> None:
    message = {"MessageId": "m-1", "ReceiptHandle": "h", "Body": "{}", "Attributes": {}}
    sqs = ScriptedSqs(messages=[message])
    door = RefusingDoor(client_error("ValidationException", "PutItem"))

    stats = poller(sqs, door).run(until_empty=True)

    assert dict(stats.counts) == {"kept": 1}


def test_a_missing_ledger_table_on_hand_off_stops_the_poller() -> None:
    message = {"MessageId": "m-1", "ReceiptHandle": "h", "Body": "{}", "Attributes": {}}
    door = RefusingDoor(client_error("ResourceNotFoundException", "PutItem"))

    with pytest.raises(ClientError):
        poller(ScriptedSqs(messages=[message]), door).run()


def test_the_poller_does_not_import_the_diagnosis_package() -> None:
    probe = "import sys, ingest.poller; print(sorted(m for m in sys.modules if 'doctor' in m))"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
    )

    assert (done.returncode, done.stdout.strip()) == (0, "[]"), done.stderr[-2000:]


def test_a_permanent_target_error_is_a_give_up() -> None:
    assert isinstance(classify(TARGET, "AccessDeniedException", "no", status=403), GiveUp)
