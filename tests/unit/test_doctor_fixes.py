"""Every fix `doctor` and `setup` print is an action: it begins with what to do.

Each scenario makes one dependency fail (or warn) the way it does in the field, through
the check's own code with its collaborator (SQS, DynamoDB, Redis, EventBridge, Genesys)
played by a stand-in; the fix of every check that does not simply pass must start with
an imperative verb ("set GENESYS_CLIENT_SECRET to ..."), never a description ("the
Genesys client needs it") or a pointer ("see the detail").
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    ProfileNotFound,
    ReadTimeoutError,
)
from helpers import ORG, RULE, genesys_event, received_message
from redis.exceptions import AuthenticationError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError

from dlq.awserrors import explain_aws
from dlq.doctor.boundary import check_boundary
from dlq.doctor.broker import _eviction, _persistence
from dlq.doctor.check import Check
from dlq.doctor.checks import finding_check
from dlq.doctor.explain import explain_redis
from dlq.doctor.genesys import check_genesys
from dlq.doctor.ledger import check_ledger
from dlq.doctor.queue import review_dlq
from dlq.doctor.rules import check_rule
from dlq.genesys.errors import GenesysConnectionError, GenesysTimeout
from dlq.genesys.transport import MockTransport, Request, Response
from dlq.ledger.schema import TTL_ATTRIBUTE, table_definition
from dlq.rulearn import RuleRef
from dlq.settings import Settings

#: The verbs a fix may begin with.
ACTIONS = frozenset(
    {
        "activate", "add", "allow", "check", "create", "enable", "encrypt", "fix",
        "make", "name", "pass", "point", "raise", "redeliver", "refresh", "remove",
        "replace", "route", "run", "set", "start", "try", "turn", "use", "wait", "widen",
    }
)  # fmt: skip

QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/genesys-eventbridge-dlq"
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:genesys-eventbridge-dlq"
TARGET = "arn:aws:sqs:us-east-1:123456789012:crm-events"
TABLE = "dlq-replay-ledger"


def client_error(code: str, operation: str, message: str = "refused", status: int = 400) -> Any:
    error = {"Code": code, "Message": message}
    return ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


# --- the stand-ins ---------------------------------------------------------------------


class Queue:
    """An SQS client with one DLQ of these attributes, or that refuses GetQueueAttributes."""

    def __init__(self, error: ClientError | None = None, **attributes: str) -> None:
        self.error = error
        self.attributes = {
            "QueueArn": QUEUE_ARN,
            "ApproximateNumberOfMessages": "0",
            "VisibilityTimeout": "360",
            "SqsManagedSseEnabled": "true",
            "Policy": json.dumps(
                {
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "events.amazonaws.com"},
                            "Action": "sqs:SendMessage",
                            "Resource": QUEUE_ARN,
                            "Condition": {"ArnEquals": {"aws:SourceArn": RULE}},
                        }
                    ]
                }
            ),
            **attributes,
        }

    def get_queue_attributes(self, **_: Any) -> Any:
        if self.error is not None:
            raise self.error
        return {"Attributes": {k: v for k, v in self.attributes.items() if v}}


class Config:
    """A Redis client answering CONFIG GET with these values (None: CONFIG is disabled)."""

    def __init__(self, **values: str) -> None:
        self.values: dict[str, str] | None = values or None

    def config_get(self, name: str) -> dict[str, str]:
        if self.values is None:
            raise ResponseError("unknown command 'CONFIG'")
        return {name: self.values[name]} if name in self.values else {}


class Tables:
    """A DynamoDB client describing one table (and its TTL), or refusing to."""

    def __init__(
        self,
        table: dict[str, Any] | None = None,
        ttl: dict[str, Any] | None = None,
        error: ClientError | None = None,
    ) -> None:
        self.table, self.ttl, self.error = table, ttl, error

    def describe_table(self, TableName: str) -> Any:
        if self.error is not None:
            raise self.error
        return {"Table": {"TableName": TableName, "TableStatus": "ACTIVE", **(self.table or {})}}

    def describe_time_to_live(self, TableName: str) -> Any:
        return {"TimeToLiveDescription": self.ttl or {"TimeToLiveStatus": "DISABLED"}}


class Rules:
    """An EventBridge client listing a rule's targets, or refusing to."""

    def __init__(self, targets: list[str] | None = None, error: ClientError | None = None):
        self.targets, self.error = targets or [], error

    def list_targets_by_rule(self, **_: Any) -> Any:
        if self.error is not None:
            raise self.error
        return {"Targets": [{"Id": str(n), "Arn": arn} for n, arn in enumerate(self.targets)]}


def genesys(answer: Callable[[Request], Response], **settings: Any) -> list[Check]:
    """check_genesys against a Genesys that answers so."""
    values = {
        "genesys_api_base_url": "https://api.genesys.test",
        "genesys_login_base_url": "https://login.genesys.test",
        "genesys_client_id": "client",
        "genesys_client_secret": "secret",
        **settings,
    }
    return check_genesys(Settings(_env_file=None, **values), transport=MockTransport(answer))


def token_then(status: int) -> Callable[[Request], Response]:
    """A login that issues a token, then `status` to every API call."""

    def answer(request: Request) -> Response:
        if request.url.endswith("/oauth/token"):
            return Response.of(200, {"access_token": "t", "expires_in": 60})
        return Response.of(status, {"message": "no", "code": "some.code", "status": status})

    return answer


def login(status: int) -> Callable[[Request], Response]:
    return lambda request: Response.of(status, {"message": "no", "code": "bad", "status": status})


def raising(error: Exception) -> Callable[[Request], Response]:
    def answer(request: Request) -> Response:
        raise error

    return answer


def dlq(sqs: Queue, *, lambda_timeout: int | None = 60) -> list[Check]:
    findings = review_dlq(sqs, QUEUE_URL, lambda_timeout=lambda_timeout, receive_visibility=120)
    return [finding_check(f) for f in findings]


def redis_config(**values: str) -> Any:
    """A Redis client as the broker checks see it (see `Config`)."""
    return Config(**values)


def ledger(**table: Any) -> list[Check]:
    return check_ledger(Tables(**table), TABLE)


def aws(exc: BotoCoreError | ClientError) -> list[Check]:
    explained = explain_aws(exc)
    return [Check("aws", False, explained.cause, explained.fix)]


def redis_failure(exc: Exception) -> list[Check]:
    explained = explain_redis(exc, "redis://:pw@127.0.0.1:6379/0")  # type: ignore[arg-type]
    return [Check("redis", False, explained.cause, explained.fix)]


def boundary(**settings: Any) -> list[Check]:
    other_org = genesys_event(org="0e0e0e0e-1111-2222-3333-444444444444")
    messages = [received_message(json.dumps(other_org), TARGET)]
    return check_boundary(Settings(_env_file=None, **settings), messages, lambda region: None)


def rule(events: Rules) -> list[Check]:
    parsed = RuleRef.parse(RULE)
    assert parsed is not None
    return [check_rule(events, parsed, {TARGET})]


WITHOUT_KEY = {**table_definition(TABLE), "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}]}
ONE_INDEX = {
    **table_definition(TABLE),
    "GlobalSecondaryIndexes": table_definition(TABLE)["GlobalSecondaryIndexes"][:1],
}

SCENARIOS: dict[str, Callable[[], list[Check]]] = {
    # the DLQ review (setup prints the same fixes)
    "no DLQ_QUEUE_URL": lambda: [finding_check(f) for f in review_dlq(
        Queue(), "", lambda_timeout=None, receive_visibility=120)],
    "no such queue": lambda: dlq(Queue(client_error("QueueDoesNotExist", "GetQueueAttributes"))),
    "queue access denied": lambda: dlq(Queue(client_error(
        "AccessDenied", "GetQueueAttributes", status=403))),
    "fifo queue": lambda: dlq(Queue(FifoQueue="true")),
    "visibility below the lambda timeout": lambda: dlq(Queue(VisibilityTimeout="30")),
    "visibility below six lambda timeouts": lambda: dlq(Queue(VisibilityTimeout="120")),
    "no policy": lambda: dlq(Queue(Policy="")),
    "anyone may send": lambda: dlq(Queue(Policy=json.dumps({"Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "sqs:*", "Resource": "*"}]}))),
    "eventbridge without a source": lambda: dlq(Queue(Policy=json.dumps({"Statement": [
        {"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
         "Action": "sqs:SendMessage", "Resource": QUEUE_ARN}]}))),
    "aws managed key": lambda: dlq(Queue(KmsMasterKeyId="alias/aws/sqs")),
    "customer managed key": lambda: dlq(Queue(KmsMasterKeyId="alias/dlq")),
    "not encrypted": lambda: dlq(Queue(SqsManagedSseEnabled="false")),
    "messages waiting": lambda: dlq(Queue(ApproximateNumberOfMessages="12")),
    "redrive policy": lambda: dlq(Queue(RedrivePolicy=json.dumps(
        {"maxReceiveCount": 3, "deadLetterTargetArn": QUEUE_ARN + "-2"}))),
    "unreadable redrive policy": lambda: dlq(Queue(RedrivePolicy="{not json")),
    # Redis
    "redis evicts": lambda: [_eviction(redis_config(**{"maxmemory-policy": "allkeys-lru"}))],
    "redis config refused": lambda: [_eviction(redis_config()), _persistence(redis_config())],
    "redis does not persist": lambda: [_persistence(redis_config(appendonly="no", save=""))],
    "redis refuses the password": lambda: redis_failure(AuthenticationError("WRONGPASS")),
    "redis unreachable": lambda: redis_failure(RedisConnectionError("Connection refused")),
    "redis answers an error": lambda: redis_failure(ResponseError("MISCONF")),
    # the ledger
    "no ledger table": lambda: ledger(error=client_error(
        "ResourceNotFoundException", "DescribeTable")),
    "ledger access denied": lambda: ledger(error=client_error(
        "AccessDeniedException", "DescribeTable", status=403)),
    "another table's key": lambda: ledger(table=WITHOUT_KEY),
    "ledger table creating": lambda: ledger(table={
        **table_definition(TABLE), "TableStatus": "CREATING"}),
    "ledger index missing": lambda: ledger(table=ONE_INDEX),
    "ledger ttl off": lambda: ledger(table=table_definition(TABLE)),
    "ledger ttl on another attribute": lambda: ledger(table=table_definition(TABLE), ttl={
        "TimeToLiveStatus": "ENABLED", "AttributeName": "not-" + TTL_ATTRIBUTE}),
    # Genesys
    "no client id": lambda: genesys(token_then(200), genesys_client_id=""),
    "no client secret": lambda: genesys(token_then(200), genesys_client_secret=""),
    "client refused": lambda: genesys(login(401)),
    "login down": lambda: genesys(login(503)),
    "login rate limited": lambda: genesys(login(429)),
    "login unreachable": lambda: genesys(raising(GenesysConnectionError("could not reach: x"))),
    "login times out": lambda: genesys(raising(GenesysTimeout("no answer: retry later"))),
    "permission missing": lambda: genesys(token_then(403)),
    "token refused by the api": lambda: genesys(token_then(401)),
    "api rate limited": lambda: genesys(token_then(429)),
    "api down": lambda: genesys(token_then(500)),
    # the trust boundary and the rules
    "allowed buses without an org": lambda: boundary(replay_allowed_buses=["genesys-*"]),
    "message from another org": lambda: boundary(genesys_org_id=ORG),
    "rule listing denied": lambda: rule(Rules(error=client_error(
        "AccessDeniedException", "ListTargetsByRule", status=403))),
    "rule gone": lambda: rule(Rules(error=client_error(
        "ResourceNotFoundException", "ListTargetsByRule"))),
    "target no longer the rule's": lambda: rule(Rules(targets=[TARGET + "-other"])),
    # AWS failures, as doctor prints them for any group it cannot check
    "aws throttled": lambda: aws(client_error("ThrottlingException", "Query")),
    "aws unavailable": lambda: aws(client_error("InternalError", "Query", status=500)),
    "aws busy": lambda: aws(client_error("ResourceConflictException", "Invoke")),
    "aws expired": lambda: aws(client_error("ExpiredToken", "Query")),
    "aws bad credentials": lambda: aws(client_error("InvalidClientTokenId", "Query")),
    "aws explicit deny": lambda: aws(client_error("AccessDenied", "Query", status=403, message=(
        "User: arn:aws:iam::1:user/x is not authorized to perform: dynamodb:Query with an "
        "explicit deny"))),
    "aws kms": lambda: aws(client_error("KMSAccessDeniedException", "ReceiveMessage")),
    "aws invalid": lambda: aws(client_error("ValidationException", "Query")),
    "aws unknown": lambda: aws(client_error("Weird", "Query")),
    "no aws credentials": lambda: aws(NoCredentialsError()),
    "no aws profile": lambda: aws(ProfileNotFound(profile="nope")),
    "no aws region": lambda: aws(NoRegionError()),
    "invalid aws call": lambda: aws(ParamValidationError(report="QueueUrl is empty")),
    "aws unreachable": lambda: aws(EndpointConnectionError(endpoint_url="http://x")),
    "aws slow": lambda: aws(ReadTimeoutError(endpoint_url="http://x")),
    "aws client failed": lambda: aws(BotoCoreError()),
}  # fmt: skip


def first_word(fix: str) -> str:
    return fix.split(maxsplit=1)[0].strip("`").lower() if fix.strip() else ""


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_check_that_does_not_pass_says_what_to_do_first(scenario):
    checks = SCENARIOS[scenario]()
    flagged = [c for c in checks if c.status != "pass" and (c.ok is False or c.fix)]

    assert flagged, f"{scenario}: no check failed or warned"
    for check in flagged:
        assert first_word(check.fix) in ACTIONS, (check.name, check.fix)


def test_a_missing_client_secret_is_fixed_by_setting_it():
    checks = SCENARIOS["no client secret"]()

    token = checks[0]
    assert (token.name, token.ok) == ("genesys token", False)
    assert token.fix.startswith("set GENESYS_CLIENT_SECRET to the OAuth client's secret")


def test_a_description_is_not_taken_for_an_action():
    assert first_word("the Genesys client needs it") not in ACTIONS
    assert first_word("see the detail") not in ACTIONS
    assert first_word("`aws dynamodb update-time-to-live ...`") not in ACTIONS
