"""template.yaml grants each role what it does and nothing more, action by action.

The ingest reads the dead-letter queue, writes the ledger and reaches Redis (a network
path, and the Redis password's one secret when there is one): nothing of EventBridge, no
other secret. The workers read only the rules
they may replay (the Genesys partner bus's, and ReplayAllowedRuleArns), and are the only
ones that may read a connection's secret. A dead-letter queue the stack creates takes
dead letters from EventBridge for those rules only; an existing one is left alone, and
the README says what to put on it. The ledger is encrypted with the given key, else
DynamoDB's AWS-owned key.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from cfn import (
    all_statements,
    as_list,
    condition_holds,
    deployed_statements,
    iam_matches,
    load_template,
    parameter_values,
    resolve,
)
from helpers import REPO

ORG = "0f2b6a3e-2c4d-4d2a-9b1e-7c3f5a9e8d10"
DLQ_ARN = "arn:aws:sqs:us-east-1:123456789012:genesys-eventbridge-dlq"
DLQ_KEY = "arn:aws:kms:us-east-1:123456789012:key/1a2b3c4d-0000-4000-8000-000000000001"
LEDGER_KEY = "arn:aws:kms:us-east-1:123456789012:key/1a2b3c4d-0000-4000-8000-000000000002"
#: A rule on the Genesys partner event bus: the bus name has slashes of its own.
PARTNER_RULE_ARN = (
    "arn:aws:events:us-east-1:123456789012:rule/aws.partner/genesys.com/cloud/"
    f"{ORG}/crm-sync/conversation-end-to-crm"
)
OTHER_ORG_RULE_ARN = (
    "arn:aws:events:us-east-1:123456789012:rule/aws.partner/genesys.com/cloud/"
    "99999999-2c4d-4d2a-9b1e-7c3f5a9e8d10/crm-sync/conversation-end-to-crm"
)
DEFAULT_BUS_RULE_ARN = "arn:aws:events:us-east-1:123456789012:rule/conversation-end"
CUSTOM_BUS_RULE_ARN = "arn:aws:events:us-east-1:123456789012:rule/crm-bus/to-crm"
OTHER_BUS_RULE_ARN = "arn:aws:events:us-east-1:123456789012:rule/billing-bus/to-billing"
OTHER_ACCOUNT_RULE_ARN = PARTNER_RULE_ARN.replace("123456789012", "210987654321")
REDIS_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:dlq-replay/redis-AbCdEf"
REDIS_PARAMETER = "arn:aws:ssm:us-east-1:123456789012:parameter/dlq-replay/redis"
CONNECTION_SECRET = (
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
    "events!connection/crm/9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d-AbCdEf"
)
#: Extra rules: every rule of the crm-bus, and one rule of the default bus.
EXTRA_RULES = "arn:aws:events:us-east-1:123456789012:rule/crm-bus/*," + DEFAULT_BUS_RULE_ARN

#: Parameter values: the defaults (the stack creates the DLQ; no key, no org, no parking,
#: no extra rules), and every option taken (an existing DLQ with its key, and so on).
DEFAULTS: dict[str, str] = {}
EVERYTHING = {
    "DeadLetterQueueArn": DLQ_ARN,
    "DeadLetterQueueKmsKeyArn": DLQ_KEY,
    "LedgerTableKmsKeyArn": LEDGER_KEY,
    "CreateParkingQueue": "true",
    "GenesysOrgId": ORG,
    "ReplayAllowedRuleArns": EXTRA_RULES,
    "RedisPasswordSecretArn": f"{REDIS_SECRET}#password",
}
#: The Redis password in SSM Parameter Store instead.
IN_PARAMETER_STORE = {**EVERYTHING, "RedisPasswordSecretArn": REDIS_PARAMETER}
SCENARIOS = pytest.mark.parametrize(
    "overrides", [DEFAULTS, EVERYTHING, IN_PARAMETER_STORE], ids=["defaults", "all", "ssm"]
)

#: What Lambda needs to attach a function to a VPC: these actions take no resource scope.
VPC_ACTIONS = {
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
}
#: DynamoDB's use of the ledger's customer-managed key on a caller's behalf.
LEDGER_KEY_ACTIONS = {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"}
INGEST_ACTIONS = {
    # the ledger: a new item, a duplicate counted, an item read
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:GetItem",
    # the dead-letter queue it drains
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:ChangeMessageVisibility",
    # its own log group
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    *VPC_ACTIONS,
}
WORKER_ACTIONS = {
    # the ledger and its indexes
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:DescribeTable",
    # the dead-letter queue
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
    # rule-aware routing: the rules it may replay, API destinations, connections, secrets
    "events:ListTargetsByRule",
    "events:DescribeRule",
    "events:DescribeApiDestination",
    "events:DescribeConnection",
    "secretsmanager:GetSecretValue",
}
#: What only some parameter values add: the DLQ's key, the parking queue, the ledger's key.
WORKER_OPTIONAL_ACTIONS = {"kms:Decrypt", "sqs:SendMessage", *LEDGER_KEY_ACTIONS}
INGEST_OPTIONAL_ACTIONS = {
    "kms:Decrypt",
    *LEDGER_KEY_ACTIONS,
    # the Redis password, in Secrets Manager or in Parameter Store
    "secretsmanager:GetSecretValue",
    "ssm:GetParameter",
}
#: The grants of the lookups besides the rules: EventBridge's own names for them.
ROUTING_GRANTS = {
    "ApiDestinations": (
        "events:DescribeApiDestination",
        "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:api-destination/*",
    ),
    "Connections": (
        "events:DescribeConnection",
        "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:connection/*",
    ),
    "ConnectionSecrets": (
        "secretsmanager:GetSecretValue",
        "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}"
        ":secret:events!connection/*",
    ),
}
IAM_TYPES = {"AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}


# --- reading the policies --------------------------------------------------------------


def _worker_document() -> dict[str, Any]:
    return load_template()["Resources"]["WorkerPolicy"]["Properties"]["PolicyDocument"]


def _ingest_documents() -> list[dict[str, Any]]:
    role = load_template()["Resources"]["IngestFunctionRole"]["Properties"]
    return [policy["PolicyDocument"] for policy in role["Policies"]]


def _deployed(documents: list[dict[str, Any]], overrides: dict[str, str]) -> list[dict[str, Any]]:
    template = load_template()
    return [s for d in documents for s in deployed_statements(template, d, **overrides)]


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    return {action for s in statements for action in as_list(s["Action"])}


def _every_policy_document() -> dict[str, list[dict[str, Any]]]:
    """Every IAM policy document of the template, by the resource that holds it."""
    found: dict[str, list[dict[str, Any]]] = {}
    for name, resource in load_template()["Resources"].items():
        props = resource.get("Properties", {})
        documents = []
        if resource["Type"] in IAM_TYPES:
            documents += [p["PolicyDocument"] for p in props.get("Policies", [])]
            if "PolicyDocument" in props:
                documents.append(props["PolicyDocument"])
        elif resource["Type"] == "AWS::Serverless::Function":
            documents += [p for p in props.get("Policies", []) if isinstance(p, dict)]
        if documents:
            found[name] = documents
    return found


def _granted(statements: list[dict[str, Any]], action: str) -> list[str]:
    """The resources `action` is allowed on (an action pattern like `events:*` counts)."""
    return [
        resource
        for s in statements
        if s["Effect"] == "Allow"
        and any(re.fullmatch(a.replace("*", ".*"), action) for a in as_list(s["Action"]))
        for resource in as_list(s["Resource"])
    ]


def _may(statements: list[dict[str, Any]], action: str, arn: str) -> bool:
    return any(iam_matches(pattern, arn) for pattern in _granted(statements, action))


def assert_least_privilege(statements: list[dict[str, Any]]) -> None:
    for statement in statements:
        actions = as_list(statement["Action"])
        assert statement["Effect"] == "Allow"
        assert "NotAction" not in statement and "NotResource" not in statement
        assert not [a for a in actions if "*" in a], statement
        if "*" in as_list(statement["Resource"]):
            # Only what attaching a function to a VPC needs takes no resource scope.
            assert set(actions) <= VPC_ACTIONS, statement


# --- the ingest ------------------------------------------------------------------------


@SCENARIOS
def test_ingest_role_grants_exactly_the_ledger_the_queue_its_logs_and_the_vpc(
    overrides: dict[str, str],
) -> None:
    extra: set[str] = set()
    if overrides:
        extra = {"kms:Decrypt", *LEDGER_KEY_ACTIONS}
        extra.add("ssm:GetParameter" if ":ssm:" in overrides["RedisPasswordSecretArn"]
                  else "secretsmanager:GetSecretValue")  # fmt: skip
    assert _actions(_deployed(_ingest_documents(), overrides)) == INGEST_ACTIONS | extra


def test_ingest_role_has_nothing_of_eventbridge() -> None:
    actions = _actions([s for d in _ingest_documents() for s in all_statements(d)])
    assert actions == INGEST_ACTIONS | INGEST_OPTIONAL_ACTIONS
    assert not [a for a in actions if a.startswith("events:")]


@SCENARIOS
def test_ingest_role_reads_no_secret_but_the_redis_password(overrides: dict[str, str]) -> None:
    statements = _deployed(_ingest_documents(), overrides)
    secrets = _granted(statements, "secretsmanager:GetSecretValue")
    parameters = _granted(statements, "ssm:GetParameter")
    redis = overrides.get("RedisPasswordSecretArn", "").partition("#")[0]
    assert secrets + parameters == ([redis] if redis else [])
    assert not _may(statements, "secretsmanager:GetSecretValue", CONNECTION_SECRET)


def test_ingest_role_is_least_privilege_and_its_own() -> None:
    role = load_template()["Resources"]["IngestFunctionRole"]["Properties"]
    assert "ManagedPolicyArns" not in role
    assert_least_privilege([s for d in _ingest_documents() for s in all_statements(d)])
    function = load_template()["Resources"]["IngestFunction"]["Properties"]
    assert function["Role"] == {"Fn::GetAtt": ["IngestFunctionRole", "Arn"]}
    assert "Policies" not in function


@pytest.mark.parametrize(
    ("overrides", "queue"),
    [(DEFAULTS, {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}), (EVERYTHING, DLQ_ARN)],
    ids=["created", "existing"],
)
def test_ingest_and_workers_drain_the_dead_letter_queue_the_function_is_triggered_by(
    overrides: dict[str, str], queue: Any
) -> None:
    for statements in (_deployed(_ingest_documents(), overrides),
                       _deployed([_worker_document()], overrides)):  # fmt: skip
        grants = {s["Sid"]: s for s in statements}
        assert grants["DeadLetterQueue"]["Resource"] == queue
        assert grants["Ledger"]["Resource"] in (
            {"Fn::GetAtt": ["LedgerTable", "Arn"]},
            [{"Fn::GetAtt": ["LedgerTable", "Arn"]}, "${LedgerTable.Arn}/index/*"],
        )


# --- the workers ------------------------------------------------------------------------


@SCENARIOS
def test_worker_policy_grants_exactly_the_workers_actions(overrides: dict[str, str]) -> None:
    extra = WORKER_OPTIONAL_ACTIONS if overrides else set()
    assert _actions(_deployed([_worker_document()], overrides)) == WORKER_ACTIONS | extra


def test_worker_policy_is_least_privilege_scoped_and_exported() -> None:
    template = load_template()
    statements = all_statements(_worker_document())
    assert _actions(statements) == WORKER_ACTIONS | WORKER_OPTIONAL_ACTIONS
    assert_least_privilege(statements)
    assert not [s for s in statements if "*" in as_list(s["Resource"])]
    assert template["Outputs"]["WorkerPolicyArn"]["Value"] == {"Ref": "WorkerPolicy"}


@SCENARIOS
def test_no_policy_but_the_workers_may_read_connection_secrets(overrides: dict[str, str]) -> None:
    readers = {
        holder
        for holder, documents in _every_policy_document().items()
        if _may(_deployed(documents, overrides), "secretsmanager:GetSecretValue", CONNECTION_SECRET)
    }
    assert readers == {"WorkerPolicy"}


@pytest.mark.parametrize(
    ("overrides", "readable", "unreadable"),
    [
        (
            DEFAULTS,
            [PARTNER_RULE_ARN, OTHER_ORG_RULE_ARN],
            [DEFAULT_BUS_RULE_ARN, CUSTOM_BUS_RULE_ARN, OTHER_ACCOUNT_RULE_ARN],
        ),
        (
            {"GenesysOrgId": ORG},
            [PARTNER_RULE_ARN],
            [OTHER_ORG_RULE_ARN, DEFAULT_BUS_RULE_ARN, CUSTOM_BUS_RULE_ARN],
        ),
        (
            {"GenesysOrgId": ORG, "ReplayAllowedRuleArns": EXTRA_RULES},
            [PARTNER_RULE_ARN, CUSTOM_BUS_RULE_ARN, DEFAULT_BUS_RULE_ARN],
            [OTHER_ORG_RULE_ARN, OTHER_BUS_RULE_ARN, OTHER_ACCOUNT_RULE_ARN,
             "arn:aws:events:us-east-1:123456789012:rule/other-default-bus-rule"],
        ),
    ],
    ids=["any-genesys-org", "one-org", "one-org-and-extra-rules"],
)  # fmt: skip
def test_workers_read_targets_and_patterns_of_only_the_rules_they_may_replay(
    overrides: dict[str, str], readable: list[str], unreadable: list[str]
) -> None:
    statements = _deployed([_worker_document()], overrides)
    for action in ("events:ListTargetsByRule", "events:DescribeRule"):
        for arn in readable:
            assert _may(statements, action, arn), (action, arn)
        for arn in unreadable:
            assert not _may(statements, action, arn), (action, arn)


def test_both_rule_actions_are_granted_on_the_same_rules() -> None:
    for statement in all_statements(_worker_document()):
        actions = set(as_list(statement["Action"]))
        if actions & {"events:ListTargetsByRule", "events:DescribeRule"}:
            assert actions == {"events:ListTargetsByRule", "events:DescribeRule"}, statement


def test_routing_lookups_are_granted_on_destinations_connections_and_secrets() -> None:
    grants = {s.get("Sid"): s for s in all_statements(_worker_document())}
    for sid, (action, resource) in ROUTING_GRANTS.items():
        assert grants[sid]["Effect"] == "Allow", sid
        assert grants[sid]["Action"] == action, sid
        assert grants[sid]["Resource"] == {"Fn::Sub": resource}, sid


@pytest.mark.parametrize(
    ("action", "arn"),
    [
        (
            "events:DescribeApiDestination",
            "arn:aws:events:us-east-1:123456789012:api-destination/crm/6f1c2d3e-4a5b-4c6d",
        ),
        (
            "events:DescribeConnection",
            "arn:aws:events:us-east-1:123456789012:connection/crm/9a8b7c6d-5e4f",
        ),
        (
            "secretsmanager:GetSecretValue",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
            "events!connection/crm/9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d-AbCdEf",
        ),
    ],
)
def test_routing_grants_cover_what_eventbridge_names(action: str, arn: str) -> None:
    assert _may(_deployed([_worker_document()], DEFAULTS), action, arn)


def test_connection_secret_grant_reaches_no_other_secret() -> None:
    statements = _deployed([_worker_document()], EVERYTHING)
    for other in (
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:genesys/client-secret-AbCdEf",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:events!other/x-AbCdEf",
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:events!connection/crm/x-AbCdEf",
    ):
        assert not _may(statements, "secretsmanager:GetSecretValue", other), other


def test_worker_policy_decrypts_only_with_the_dead_letter_queue_key_when_it_is_set() -> None:
    conditionals = [s["Fn::If"] for s in _worker_document()["Statement"] if "Fn::If" in s]
    (conditional,) = [c for c in conditionals if c[1]["Sid"] == "DeadLetterQueueKey"]
    condition, statement, otherwise = conditional
    assert condition == "HasDeadLetterQueueKey"
    assert otherwise == {"Ref": "AWS::NoValue"}
    assert statement["Action"] == "kms:Decrypt"
    assert statement["Resource"] == {"Ref": "DeadLetterQueueKmsKeyArn"}
    assert not condition_holds("HasDeadLetterQueueKey")


# --- the dead-letter queue's policy ----------------------------------------------------------


def _queue_policy() -> dict[str, Any]:
    return load_template()["Resources"]["DeadLetterQueuePolicy"]


def _queue_statements(overrides: dict[str, str]) -> list[dict[str, Any]]:
    return _deployed([_queue_policy()["Properties"]["PolicyDocument"]], overrides)


def test_queue_policy_is_on_by_default_for_the_queue_the_stack_creates_and_only_for_it() -> None:
    template = load_template()
    assert template["Parameters"]["DeadLetterQueueArn"]["Default"] == ""
    assert template["Resources"]["DeadLetterQueue"]["Condition"] == "CreateDeadLetterQueue"
    assert _queue_policy()["Condition"] == "CreateDeadLetterQueue"
    assert condition_holds("CreateDeadLetterQueue")
    assert not condition_holds("CreateDeadLetterQueue", DeadLetterQueueArn=DLQ_ARN)
    assert _queue_policy()["Properties"]["Queues"] == [{"Ref": "DeadLetterQueue"}]


@pytest.mark.parametrize(
    ("overrides", "may_send", "may_not_send"),
    [
        (DEFAULTS, [PARTNER_RULE_ARN], [DEFAULT_BUS_RULE_ARN, CUSTOM_BUS_RULE_ARN]),
        (
            {"GenesysOrgId": ORG, "ReplayAllowedRuleArns": EXTRA_RULES},
            [PARTNER_RULE_ARN, CUSTOM_BUS_RULE_ARN, DEFAULT_BUS_RULE_ARN],
            [OTHER_ORG_RULE_ARN, OTHER_BUS_RULE_ARN, OTHER_ACCOUNT_RULE_ARN],
        ),
    ],
    ids=["defaults", "one-org-and-extra-rules"],
)
def test_queue_policy_lets_only_eventbridge_send_and_only_for_the_rules_the_workers_replay(
    overrides: dict[str, str], may_send: list[str], may_not_send: list[str]
) -> None:
    statements = _queue_statements(overrides)
    sources = []
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert statement["Principal"] == {"Service": "events.amazonaws.com"}
        assert statement["Action"] == "sqs:SendMessage"
        assert statement["Resource"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
        (operator,) = statement["Condition"]
        assert operator == "ArnLike"
        sources += as_list(statement["Condition"]["ArnLike"]["aws:SourceArn"])
    for rule in may_send:
        assert any(iam_matches(source, rule) for source in sources), rule
    for rule in may_not_send:
        assert not any(iam_matches(source, rule) for source in sources), rule


def test_queue_policy_and_workers_name_the_same_rules() -> None:
    overrides = {"GenesysOrgId": ORG, "ReplayAllowedRuleArns": EXTRA_RULES}
    sources = {
        source
        for s in _queue_statements(overrides)
        for source in as_list(s["Condition"]["ArnLike"]["aws:SourceArn"])
    }
    readable = set(_granted(_deployed([_worker_document()], overrides), "events:DescribeRule"))
    assert sources == readable


def test_the_created_queue_and_its_policy_stay_when_the_stack_lets_go_of_them() -> None:
    # Removing them would lose events not yet ingested, or leave EventBridge unable to
    # dead-letter: events lost, not parked.
    queue = load_template()["Resources"]["DeadLetterQueue"]
    for resource in (queue, _queue_policy()):
        assert resource["DeletionPolicy"] == "Retain"
        assert resource["UpdateReplacePolicy"] == "Retain"
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    # Six times the longest FunctionTimeout: AWS's advice for an SQS-triggered function.
    longest = load_template()["Parameters"]["FunctionTimeout"]["MaxValue"]
    assert queue["Properties"]["VisibilityTimeout"] >= 6 * longest


def test_readme_gives_the_policy_for_a_queue_the_stack_does_not_create() -> None:
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```json\n(.*?)```", readme, flags=re.DOTALL)
    policies = [json.loads(b) for b in blocks if '"events.amazonaws.com"' in b]
    assert policies, "README: no queue policy statement for EventBridge"
    (statement,) = policies[0]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert "aws:SourceArn" in json.dumps(statement["Condition"])


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("", True),
        (DEFAULT_BUS_RULE_ARN, True),
        (PARTNER_RULE_ARN, True),
        ("arn:aws:events:us-east-1:123456789012:rule/crm-bus/*", True),
        ("arn:aws-us-gov:events:us-gov-west-1:123456789012:rule/bus/rule", True),
        ("arn:aws:events:us-east-1:123456789012:rule/crm-*/*", True),
        ("arn:aws:events:us-east-1:123456789012:rule/*", False),
        ("arn:aws:events:us-east-1:123456789012:rule/*/to-crm", False),
        (f" {DEFAULT_BUS_RULE_ARN}", False),
        (DLQ_ARN, False),
        ("arn:aws:events:us-east-1:123456789012:event-bus/default", False),
    ],
)
def test_allowed_rules_parameter_takes_rules_and_whole_buses_and_nothing_wider(
    value: str, accepted: bool
) -> None:
    # CloudFormation applies a list parameter's pattern to each item.
    pattern = load_template()["Parameters"]["ReplayAllowedRuleArns"]["AllowedPattern"]
    assert (re.fullmatch(pattern, value) is not None) is accepted


# --- the ledger's encryption ----------------------------------------------------------------


def test_ledger_uses_the_aws_owned_key_unless_a_key_is_given() -> None:
    template = load_template()
    sse = template["Resources"]["LedgerTable"]["Properties"]["SSESpecification"]
    assert resolve(template, sse, parameter_values(template)) == {"SSEEnabled": False}
    given = parameter_values(template, LedgerTableKmsKeyArn=LEDGER_KEY)
    assert resolve(template, sse, given) == {
        "SSEEnabled": True,
        "SSEType": "KMS",
        "KMSMasterKeyId": LEDGER_KEY,
    }


@pytest.mark.parametrize(
    "documents", [_ingest_documents, lambda: [_worker_document()]], ids=["ingest", "workers"]
)
def test_ledger_key_is_granted_only_when_given_and_only_through_dynamodb(documents: Any) -> None:
    assert not [s for s in _deployed(documents(), DEFAULTS) if s.get("Sid") == "LedgerKey"]
    statements = _deployed(documents(), {"LedgerTableKmsKeyArn": LEDGER_KEY})
    (grant,) = [s for s in statements if s.get("Sid") == "LedgerKey"]
    assert set(grant["Action"]) == LEDGER_KEY_ACTIONS
    assert grant["Resource"] == LEDGER_KEY
    assert grant["Condition"] == {
        "StringEquals": {"kms:ViaService": "dynamodb.us-east-1.amazonaws.com"}
    }
