"""`dlq-replay doctor`: every dependency checked with the real configuration.

Each check is a plain function returning `Check` values; none changes anything (the
DLQ is peeked at with a zero visibility timeout, never consumed). A check that cannot
run says why instead of raising, so one broken dependency never hides the others.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import redis
from botocore.exceptions import BotoCoreError, ClientError
from redis.exceptions import RedisError, ResponseError

from dlq.aws import aws_client
from dlq.doctor.explain import ACCESS_DENIED, aws_error, explain_aws, explain_redis, redact_url
from dlq.doctor.queue import Finding, Severity, review_dlq
from dlq.errors import DlqReplayError
from dlq.genesys.auth import fetch_token
from dlq.genesys.transport import Request, RequestsTransport, Response, Transport
from dlq.ledger.schema import TTL_ATTRIBUTE, table_definition
from dlq.settings import Settings
from dlq.targets.rules import RuleRef

CONVERSATION_PERMISSION = "conversation:communication:view"
ANALYTICS_PERMISSION = "analytics:conversationDetail:view"
#: The peek takes at most this many DLQ messages (one receive).
PEEK_MESSAGES = 10


@dataclass(frozen=True)
class Check:
    """One dependency checked: passed (True), failed (False) or not checked (None).

    `fix` says what to do when it failed; on a passing check it is a warning to heed.
    """

    name: str
    ok: bool | None
    detail: str
    fix: str = ""

    @property
    def status(self) -> str:
        """`pass`, `warn` (passed, with advice), `fail` or `skip`."""
        if self.ok is None:
            return "skip"
        if not self.ok:
            return "fail"
        return "warn" if self.fix else "pass"


def diagnose(
    settings: Settings, *, lambda_timeout: int | None, receive_visibility: int
) -> list[Check]:
    """Every check, in the order a reader fixes things: broker, ledger, DLQ, Genesys, rules."""
    return [
        *check_redis(settings.redis_url),
        *_guarded("ledger table", lambda: check_ledger(aws_client("dynamodb", settings),
                                                       settings.ledger_table)),
        *_guarded("dlq", lambda: check_dlq(aws_client("sqs", settings), settings.dlq_queue_url,
                                           lambda_timeout=lambda_timeout,
                                           receive_visibility=receive_visibility)),
        *check_genesys(settings),
        *_guarded("eventbridge rules", lambda: check_rules(settings)),
    ]  # fmt: skip


def _guarded(name: str, run: Callable[[], list[Check]]) -> list[Check]:
    # No credentials, no endpoint: one failing line for the group, not a crash.
    try:
        return run()
    except (BotoCoreError, ClientError) as exc:
        explained = explain_aws(exc)
        return [Check(name, False, explained.cause, explained.fix)]


# --- Redis ---------------------------------------------------------------------------


def check_redis(url: str) -> list[Check]:
    """Reachable, never evicting, persistent: the broker must not drop tasks."""
    shown = redact_url(url)
    client = redis.Redis.from_url(
        url, socket_connect_timeout=3, socket_timeout=5, decode_responses=True
    )
    try:
        client.ping()
    except RedisError as exc:
        explained = explain_redis(exc, url)
        return [
            Check("redis", False, explained.cause, explained.fix),
            Check("redis eviction", None, "not checked: Redis is unreachable"),
            Check("redis persistence", None, "not checked: Redis is unreachable"),
        ]
    try:
        return [
            Check("redis", True, f"{shown} answers PING"),
            _eviction(client),
            _persistence(client),
        ]
    finally:
        client.close()


def _config(client: redis.Redis, name: str) -> str | None:
    """A CONFIG value, or None where CONFIG is disabled (managed Redis services)."""
    try:
        values: dict[str, str] = client.config_get(name)  # type: ignore[assignment]
    except ResponseError:
        return None
    return values.get(name)


def _eviction(client: redis.Redis) -> Check:
    policy = _config(client, "maxmemory-policy")
    if policy is None:
        return Check(
            "redis eviction",
            None,
            "not checked: this Redis refuses CONFIG GET (a managed service?)",
            "make sure its parameter group sets maxmemory-policy noeviction",
        )
    if policy != "noeviction":
        return Check(
            "redis eviction",
            False,
            f"maxmemory-policy is {policy}: when memory runs short Redis silently drops keys "
            "(queued tasks, locks, the shared token)",
            "set maxmemory-policy noeviction (`redis-server --maxmemory-policy noeviction`, "
            "or CONFIG SET then CONFIG REWRITE; on ElastiCache, the parameter group)",
        )
    return Check("redis eviction", True, "maxmemory-policy noeviction")


def _persistence(client: redis.Redis) -> Check:
    appendonly, save = _config(client, "appendonly"), _config(client, "save")
    if appendonly is None and save is None:
        return Check(
            "redis persistence",
            None,
            "not checked: this Redis refuses CONFIG GET (a managed service?)",
            "make sure it persists (AOF, or snapshots with a backup policy)",
        )
    if appendonly == "yes":
        return Check("redis persistence", True, "AOF on (appendonly yes)")
    if save:
        return Check("redis persistence", True, f"RDB snapshots (save {save}), AOF off")
    return Check(
        "redis persistence",
        False,
        "no persistence (appendonly no, no save schedule): a restart loses every queued "
        "and scheduled task until the reconciler rebuilds them from the ledger",
        "turn on AOF: `redis-server --appendonly yes` (or CONFIG SET appendonly yes then "
        "CONFIG REWRITE)",
    )


# --- the ledger ----------------------------------------------------------------------


def check_ledger(dynamodb: Any, table: str) -> list[Check]:
    """The table exists, with the key, indexes and TTL that `setup` gives it."""
    try:
        described = dynamodb.describe_table(TableName=table)["Table"]
    except ClientError as exc:
        skipped = "not checked: the table could not be read"
        if aws_error(exc).code == "ResourceNotFoundException":
            failed = Check(
                "ledger table",
                False,
                f"no table {table} (LEDGER_TABLE) in this account and region",
                "run `dlq-replay setup` (it creates the table, its indexes and TTL), or "
                "deploy template.yaml; or fix LEDGER_TABLE / AWS_REGION",
            )
        else:
            explained = explain_aws(exc)
            failed = Check("ledger table", False, explained.cause, explained.fix)
        return [failed, Check("ledger indexes", None, skipped), Check("ledger ttl", None, skipped)]
    wanted = table_definition(table)
    checks = [_table(described, wanted), _indexes(described, wanted)]
    try:
        ttl = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    except ClientError as exc:
        explained = explain_aws(exc)
        return [*checks, Check("ledger ttl", False, explained.cause, explained.fix)]
    return [*checks, _ttl(ttl, table)]


def _table(described: dict[str, Any], wanted: dict[str, Any]) -> Check:
    status = described.get("TableStatus")
    if described.get("KeySchema") != wanted["KeySchema"]:
        return Check(
            "ledger table",
            False,
            f"{described['TableName']} has another key than the ledger's "
            "(event_id, target_arn): it is not a dlq-replay ledger",
            "point LEDGER_TABLE at the ledger, or a new name for `dlq-replay setup` to create",
        )
    if status != "ACTIVE":
        return Check(
            "ledger table", False, f"{described['TableName']} is {status}", "wait, then run again"
        )
    return Check("ledger table", True, f"{described['TableName']} is ACTIVE")


def _indexes(described: dict[str, Any], wanted: dict[str, Any]) -> Check:
    found = {i["IndexName"]: i for i in described.get("GlobalSecondaryIndexes", [])}
    problems = []
    for index in wanted["GlobalSecondaryIndexes"]:
        name = index["IndexName"]
        there = found.get(name)
        if there is None:
            problems.append(f"{name} is missing")
        elif there.get("KeySchema") != index["KeySchema"]:
            problems.append(f"{name} has another key")
        elif there.get("IndexStatus", "ACTIVE") != "ACTIVE":
            problems.append(f"{name} is {there['IndexStatus']}")
    names = ", ".join(i["IndexName"] for i in wanted["GlobalSecondaryIndexes"])
    if problems:
        return Check(
            "ledger indexes",
            False,
            "; ".join(problems) + " (the reconciler, redrive and tracking query them)",
            "add the index as template.yaml's LedgerTable defines it (or create a new table "
            "with `dlq-replay setup` and a new LEDGER_TABLE)",
        )
    return Check("ledger indexes", True, f"{names} present and ACTIVE")


def _ttl(ttl: dict[str, Any], table: str) -> Check:
    status, attribute = ttl.get("TimeToLiveStatus"), ttl.get("AttributeName")
    if status in ("ENABLED", "ENABLING") and attribute == TTL_ATTRIBUTE:
        return Check("ledger ttl", True, f"TTL {status.lower()} on {TTL_ATTRIBUTE}")
    return Check(
        "ledger ttl",
        False,
        f"TTL is {status or 'DISABLED'}"
        + (f" on {attribute}" if attribute else "")
        + ": items never expire (LEDGER_TTL_DAYS is not applied)",
        f"`aws dynamodb update-time-to-live --table-name {table} "
        f"--time-to-live-specification Enabled=true,AttributeName={TTL_ATTRIBUTE}`",
    )


# --- the DLQ -------------------------------------------------------------------------


def check_dlq(
    sqs: Any, queue_url: str, *, lambda_timeout: int | None, receive_visibility: int
) -> list[Check]:
    """The DLQ readable, and the review `setup` prints, as checks."""
    findings = review_dlq(
        sqs, queue_url, lambda_timeout=lambda_timeout, receive_visibility=receive_visibility
    )
    return [finding_check(f) for f in findings]


def finding_check(finding: Finding) -> Check:
    """A finding of the DLQ review as a check: a warning passes, with its fix."""
    if finding.severity is Severity.FAIL:
        return Check(finding.check, False, finding.found, finding.fix)
    if finding.severity is Severity.WARN and not finding.fix:
        return Check(finding.check, True, finding.found, "see the detail")
    return Check(finding.check, True, finding.found, finding.fix)


# --- Genesys Cloud -------------------------------------------------------------------


def check_genesys(settings: Settings, *, transport: Transport | None = None) -> list[Check]:
    """A token, then each permission the configuration needs, one cheap call each."""
    names = (
        "genesys token",
        f"genesys {CONVERSATION_PERMISSION}",
        f"genesys {ANALYTICS_PERMISSION}",
    )
    if not settings.genesys_client_id and not settings.replay_verify_conversation:
        why = "skipped: REPLAY_VERIFY_CONVERSATION is false and no GENESYS_CLIENT_ID is set"
        return [Check(name, None, why) for name in names]
    transport = transport or RequestsTransport()
    try:
        token = fetch_token(settings, transport).access_token.get_secret_value()
    except DlqReplayError as exc:
        skipped = "not checked: no token"
        return [
            Check(names[0], False, *_cause_fix(str(exc))),
            *(Check(name, None, skipped) for name in names[1:]),
        ]
    api = settings.genesys_api_url
    checks = [Check(names[0], True, f"the login host {settings.genesys_login_url} issued a token")]
    probe = str(uuid.uuid4())
    answer = _probe(transport, token, f"{api}/api/v2/conversations/{probe}")
    checks.append(_conversation_permission(names[1], answer))
    if not settings.replay_verify_conversation:
        # Only batch verification reads analytics.
        checks.append(Check(names[2], None, "not needed: REPLAY_VERIFY_CONVERSATION is false"))
        return checks
    answer = _probe(transport, token, f"{api}/api/v2/analytics/conversations/details?id={probe}")
    checks.append(_analytics_permission(names[2], answer))
    return checks


def _cause_fix(text: str) -> tuple[str, str]:
    cause, _, fix = text.rpartition(": ")
    return (cause, fix) if cause else (text, "")


def _probe(transport: Transport, token: str, url: str) -> Response | str:
    """The answer to one GET, or why there was none."""
    try:
        what = "GET /api/" + url.split("/api/", 1)[-1].split("?", 1)[0]
        request = Request(
            "GET", url, what, timeout=(3.05, 10.0), headers={"Authorization": f"Bearer {token}"}
        )
        return transport.send(request)
    except DlqReplayError as exc:
        return str(exc)


def _grant_fix(permission: str) -> str:
    return (
        f"add {permission} to a role of the OAuth client GENESYS_CLIENT_ID (Admin > OAuth > "
        "the client > Roles, and the role's divisions), then run doctor again"
    )


def _other_status(name: str, answer: Response) -> Check:
    correlation = answer.headers.get("inin-correlation-id")
    said = f"Genesys answered {answer.status_code} (correlation id {correlation})"
    if answer.status_code == 429:
        return Check(name, None, f"not checked: {said}, over the rate limit", "run doctor again")
    if answer.status_code == 401:
        return Check(
            name,
            False,
            f"{said}: the fresh token was refused",
            "check that the OAuth client is active and in this org and region",
        )
    return Check(name, False, said, "try again; if it persists, check the Genesys status page")


def _conversation_permission(name: str, answer: Response | str) -> Check:
    if isinstance(answer, str):
        return Check(name, False, *_cause_fix(answer))
    if answer.status_code in (200, 404):
        return Check(
            name, True, f"granted (a random conversation id answered {answer.status_code})"
        )
    if answer.status_code == 403:
        return Check(
            name,
            False,
            "missing: the OAuth client may not read conversations (403), so lookups and "
            "tracking fail",
            _grant_fix(CONVERSATION_PERMISSION),
        )
    return _other_status(name, answer)


def _analytics_permission(name: str, answer: Response | str) -> Check:
    if isinstance(answer, str):
        return Check(name, False, *_cause_fix(answer))
    if answer.status_code == 200:
        return Check(name, True, "granted (the conversation details query answered 200)")
    if answer.status_code == 404:
        return Check(
            name,
            None,
            "not checked: this API host does not serve /api/v2/analytics/conversations/details",
        )
    if answer.status_code == 403:
        return Check(
            name,
            False,
            "missing: the OAuth client may not query conversation details (403), so "
            "conversations cannot be verified in batches: each costs a lookup of its own",
            _grant_fix(ANALYTICS_PERMISSION),
        )
    return _other_status(name, answer)


# --- EventBridge rules named by the DLQ's messages ------------------------------------


def peek_rules(sqs: Any, queue_url: str) -> dict[str, set[str]]:
    """RULE_ARN -> TARGET_ARNs of up to ten DLQ messages, received without consuming them.

    A zero visibility timeout leaves each message visible (it is never deleted); the
    receive still counts towards a redrive policy's maxReceiveCount.
    """
    response = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=PEEK_MESSAGES,
        VisibilityTimeout=0,
        WaitTimeSeconds=0,
        MessageAttributeNames=["All"],
    )
    rules: dict[str, set[str]] = {}
    for message in response.get("Messages", []):
        attributes = message.get("MessageAttributes", {})
        rule = attributes.get("RULE_ARN", {}).get("StringValue")
        target = attributes.get("TARGET_ARN", {}).get("StringValue")
        if rule:
            rules.setdefault(rule, set()).update([target] if target else [])
    return rules


def check_rules(settings: Settings) -> list[Check]:
    """events:ListTargetsByRule on each rule the DLQ's messages name (a peek, no consuming)."""
    if not settings.dlq_queue_url:
        return [Check("eventbridge rules", None, "not checked: DLQ_QUEUE_URL is not set")]
    try:
        rules = peek_rules(aws_client("sqs", settings), settings.dlq_queue_url)
    except ClientError as exc:
        explained = explain_aws(exc)
        return [Check("eventbridge rules", None, f"not checked: {explained.cause}", explained.fix)]
    if not rules:
        return [
            Check("eventbridge rules", None, "not checked: no DLQ message to name a rule (empty)")
        ]
    clients: dict[str, Any] = {}

    def events_in(region: str) -> Any:
        if region not in clients:
            regional = settings.model_copy(update={"aws_region": region or settings.aws_region})
            clients[region] = aws_client("events", regional)
        return clients[region]

    checks = []
    for arn, targets in sorted(rules.items()):
        rule = RuleRef.parse(arn)
        if rule is None:
            checks.append(Check(f"rule {arn}", None, "not checked: not an EventBridge rule ARN"))
            continue
        checks.append(check_rule(events_in(rule.region), rule, targets))
    return checks


def _targets(events: Any, rule: RuleRef) -> Iterator[str]:
    token: str | None = None
    while True:
        page = events.list_targets_by_rule(
            Rule=rule.name, EventBusName=rule.bus, **({"NextToken": token} if token else {})
        )
        yield from (t["Arn"] for t in page.get("Targets", []))
        token = page.get("NextToken")
        if not token:
            return


def check_rule(events: Any, rule: RuleRef, targets: set[str]) -> Check:
    """events:ListTargetsByRule on one rule: allowed, the rule still there, `targets` its own."""
    name = f"rule {rule.name}" + ("" if rule.bus == "default" else f" (bus {rule.bus})")
    try:
        current = set(_targets(events, rule))
    except ClientError as exc:
        error = aws_error(exc)
        if error.code in ACCESS_DENIED or error.http_status == 403:
            return Check(
                name,
                False,
                f"events:ListTargetsByRule on {rule.arn} was denied: replay cannot check "
                "that a message's TARGET_ARN is one of its rule's targets",
                f"allow events:ListTargetsByRule on {rule.arn} (or "
                f"arn:aws:events:{rule.region}:*:rule/*) in the workers' IAM policy",
            )
        if error.code == "ResourceNotFoundException":
            return Check(
                name,
                True,
                f"rule gone: {rule.arn} no longer exists, so its events have no rule target "
                "to check against",
                "redeliver them through REPLAY_TARGET_OVERRIDES, or REPLAY_TRUST_TARGET_ARN"
                "=true if the targets still stand (set on the replay workers, which read them: "
                "restart them), then redrive",
            )
        explained = explain_aws(exc)
        return Check(name, False, explained.cause, explained.fix)
    missing = sorted(targets - current)
    if missing:
        return Check(
            name,
            True,
            f"{len(current)} targets; no longer among them: {', '.join(missing)}",
            "route those through REPLAY_TARGET_OVERRIDES on the replay workers (restart them "
            "with it), or accept that they fail",
        )
    return Check(name, True, f"{len(current)} targets, every TARGET_ARN peeked among them")
