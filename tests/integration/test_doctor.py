"""`dlq-replay doctor` against the real stand-ins: each dependency passes, or fails with its fix.

Redis servers are started per module with the configurations under test; AWS is the
moto server; Genesys is the simulator, whose OAuth client can be made to lack a
permission. doctor runs in-process through click's runner, configured by `env=`.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner, Result
from helpers import SIM_CLIENT_ID, SIM_CLIENT_SECRET

from cli.main import main
from devstack.process import ChildServer, free_port
from devstack.queues import create_local_dlq
from dlq.aws import aws_client
from dlq.doctor.checks import Check, check_genesys, check_rule
from dlq.genesys.transport import MockTransport, Request, Response
from dlq.ledger import create_table, table_definition
from dlq.settings import load_settings
from dlq.targets.rules import RuleRef

CONVERSATION_VIEW = "conversation:communication:view"
TARGET = "arn:aws:sqs:us-east-1:123456789012:crm-events"


def redis_server(workdir: Path, *options: str) -> ChildServer:
    """A redis-server on loopback with these options (persistence, eviction...)."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed"
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir), *options]
    return ChildServer(argv, port, log=workdir / "redis.log")


@pytest.fixture(scope="module")
def durable_redis(tmp_path_factory) -> Iterator[str]:
    """Redis as deployments should run it: AOF on, never evicting."""
    with redis_server(
        tmp_path_factory.mktemp("durable"), "--appendonly", "yes", "--maxmemory-policy",
        "noeviction",
    ) as server:  # fmt: skip
        yield f"redis://127.0.0.1:{server.port}/0"


@pytest.fixture(scope="module")
def evicting_redis(tmp_path_factory) -> Iterator[str]:
    """Redis that drops keys when memory runs short."""
    with redis_server(
        tmp_path_factory.mktemp("evicting"), "--appendonly", "yes", "--maxmemory-policy",
        "allkeys-lru",
    ) as server:  # fmt: skip
        yield f"redis://127.0.0.1:{server.port}/0"


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, ["doctor", *args], env=env, catch_exceptions=False)


def checks(result: Result) -> dict[str, dict[str, Any]]:
    """The JSON report's checks by name."""
    return {c["name"]: c for c in json.loads(result.stdout)["checks"]}


def rule_arn(name: str, bus: str = "default") -> str:
    path = name if bus == "default" else f"{bus}/{name}"
    return f"arn:aws:events:us-east-1:123456789012:rule/{path}"


def dlq_message(sqs, queue_url: str, rule: str, target: str = TARGET) -> None:
    """A DLQ message as EventBridge leaves it, naming its rule and target."""
    attributes = {"RULE_ARN": rule, "TARGET_ARN": target, "ERROR_CODE": "THROTTLING"}
    sqs.send_message(
        QueueUrl=queue_url,
        MessageBody=json.dumps({"id": str(uuid.uuid4()), "detail": {}}),
        MessageAttributes={
            k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()
        },
    )


@pytest.fixture()
def aws(moto_server) -> dict[str, Any]:
    settings = load_settings(_env_file=None)
    return {
        "sqs": aws_client("sqs", settings),
        "dynamodb": aws_client("dynamodb", settings),
        "events": aws_client("events", settings),
    }


@pytest.fixture()
def env(aws, moto_server, durable_redis, genesys_sim, unique) -> dict[str, str]:
    """A healthy stack: durable Redis, a complete ledger, a well-set DLQ holding one
    message of an existing rule that targets its TARGET_ARN, a Genesys client with
    every permission."""
    table = f"ledger-{unique}"
    create_table(aws["dynamodb"], table)
    dlq_url = f"{moto_server.url}/123456789012/dlq-{unique}"
    create_local_dlq(aws["sqs"], dlq_url)
    rule = f"genesys-to-crm-{unique}"
    aws["events"].put_rule(Name=rule, EventPattern=json.dumps({"source": ["x"]}))
    aws["events"].put_targets(Rule=rule, Targets=[{"Id": "crm", "Arn": TARGET}])
    dlq_message(aws["sqs"], dlq_url, rule_arn(rule))
    return {
        "REDIS_URL": durable_redis,
        "LEDGER_TABLE": table,
        "DLQ_QUEUE_URL": dlq_url,
        "GENESYS_API_BASE_URL": genesys_sim.url,
        "GENESYS_LOGIN_BASE_URL": genesys_sim.url,
        "GENESYS_CLIENT_ID": SIM_CLIENT_ID,
        "GENESYS_CLIENT_SECRET": SIM_CLIENT_SECRET,
        "REPLAY_VERIFY_CONVERSATION": "true",
    }


# --- a healthy stack -------------------------------------------------------------------


def test_doctor_passes_on_a_healthy_stack(env):
    result = run(env, "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert [c for c in report["checks"] if c["status"] == "fail"] == []
    found = checks(result)
    for name in ("redis", "redis eviction", "redis persistence", "ledger table",
                 "ledger indexes", "ledger ttl", "dlq", "dlq policy", "genesys token",
                 f"genesys {CONVERSATION_VIEW}"):  # fmt: skip
        assert found[name]["status"] == "pass", found[name]


def test_doctor_prints_a_table_of_each_check_its_result_and_fix(env):
    result = run(env)

    assert result.exit_code == 0, result.output
    assert "# doctor\ncheck\tresult\tdetail\tfix\n" in result.stdout
    assert "\nredis eviction\tpass\tmaxmemory-policy noeviction\t-\n" in result.stdout
    assert result.stdout.rstrip().endswith("all good")


ANALYTICS_VIEW = "analytics:conversationDetail:view"


def test_doctor_checks_the_analytics_permission_batch_verification_needs(env):
    found = checks(run(env, "--json"))[f"genesys {ANALYTICS_VIEW}"]

    assert found["status"] == "pass"
    assert "answered 200" in found["detail"]


def test_a_genesys_client_without_analytics_view_fails_naming_the_permission(env, sim_admin):
    sim_admin.configure(denied_permissions=[ANALYTICS_VIEW])

    result = run(env, "--json")

    assert result.exit_code == 1
    found = checks(result)
    assert found[f"genesys {CONVERSATION_VIEW}"]["status"] == "pass"
    permission = found[f"genesys {ANALYTICS_VIEW}"]
    assert permission["status"] == "fail"
    assert "403" in permission["detail"]
    assert f"add {ANALYTICS_VIEW} to a role of the OAuth client" in permission["fix"]


def test_the_analytics_permission_is_not_needed_without_verification(env, sim_admin):
    sim_admin.configure(denied_permissions=[ANALYTICS_VIEW])

    found = checks(run({**env, "REPLAY_VERIFY_CONVERSATION": "false"}, "--json"))

    assert found[f"genesys {ANALYTICS_VIEW}"]["status"] == "skip"
    assert found[f"genesys {CONVERSATION_VIEW}"]["status"] == "pass"


def test_the_analytics_permission_is_not_checked_where_the_route_is_absent(make_settings):
    def answer(request: Request) -> Response:
        if request.url.endswith("/oauth/token"):
            return Response.of(200, {"access_token": "t", "token_type": "bearer", "expires_in": 60})
        if "/analytics/" in request.url:
            return Response.of(404, {"message": "no route", "code": "not.found", "status": 404})
        return Response.of(404, {"message": "not found", "code": "not.found", "status": 404})

    settings = make_settings(
        genesys_api_base_url="https://api.genesys.test",
        genesys_login_base_url="https://login.genesys.test",
        genesys_client_id="client",
        genesys_client_secret="secret",
    )
    found = {c.name: c for c in check_genesys(settings, transport=MockTransport(answer))}

    assert found[f"genesys {ANALYTICS_VIEW}"].ok is None
    assert "does not serve /api/v2/analytics/conversations/details" in (
        found[f"genesys {ANALYTICS_VIEW}"].detail
    )


def test_doctor_checks_the_rule_a_dlq_message_names_and_finds_its_target(env, unique):
    found = checks(run(env, "--json"))[f"rule genesys-to-crm-{unique}"]

    assert found["status"] == "pass"
    assert found["detail"] == "1 targets, every TARGET_ARN peeked among them"


def test_doctor_peeks_at_the_dlq_without_consuming_a_message(env, aws):
    run(env, "--json")

    attributes = aws["sqs"].get_queue_attributes(
        QueueUrl=env["DLQ_QUEUE_URL"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert attributes == {
        "ApproximateNumberOfMessages": "1",
        "ApproximateNumberOfMessagesNotVisible": "0",
    }


def test_doctor_output_never_shows_the_client_secret_or_a_token(env):
    result = run(env, "--json")

    assert SIM_CLIENT_SECRET not in result.output
    assert "Bearer" not in result.output


# --- Redis ------------------------------------------------------------------------------


def test_a_redis_that_evicts_keys_fails_with_the_noeviction_fix(env, evicting_redis):
    result = run({**env, "REDIS_URL": evicting_redis}, "--json")

    assert result.exit_code == 1
    found = checks(result)["redis eviction"]
    assert found["status"] == "fail"
    assert "maxmemory-policy is allkeys-lru" in found["detail"]
    assert "maxmemory-policy noeviction" in found["fix"]


def test_a_redis_without_persistence_fails_with_the_aof_fix(env, redis_url):
    result = run({**env, "REDIS_URL": redis_url}, "--json")  # the tests' throwaway Redis

    assert result.exit_code == 1
    found = checks(result)["redis persistence"]
    assert found["status"] == "fail"
    assert "--appendonly yes" in found["fix"]


def test_an_unreachable_redis_fails_naming_the_url_without_its_password(env):
    url = f"redis://:hunter2-secret@127.0.0.1:{free_port()}/0"

    result = run({**env, "REDIS_URL": url}, "--json")

    assert result.exit_code == 1
    found = checks(result)
    assert found["redis"]["status"] == "fail"
    assert "redis://:***@127.0.0.1:" in found["redis"]["detail"]
    assert "start Redis or fix REDIS_URL" in found["redis"]["fix"]
    assert found["redis eviction"]["status"] == "skip"
    assert "hunter2-secret" not in result.output


# --- the ledger ------------------------------------------------------------------------


def test_a_missing_ledger_table_fails_with_the_setup_fix(env, unique):
    result = run({**env, "LEDGER_TABLE": f"no-such-table-{unique}"}, "--json")

    assert result.exit_code == 1
    found = checks(result)
    assert found["ledger table"]["status"] == "fail"
    assert f"no table no-such-table-{unique} (LEDGER_TABLE)" in found["ledger table"]["detail"]
    assert "run `dlq-replay setup`" in found["ledger table"]["fix"]
    assert found["ledger indexes"]["status"] == "skip"


def test_a_ledger_table_without_ttl_fails_with_the_command_that_enables_it(env, aws, unique):
    table = f"no-ttl-{unique}"
    aws["dynamodb"].create_table(**table_definition(table))

    result = run({**env, "LEDGER_TABLE": table}, "--json")

    found = checks(result)["ledger ttl"]
    assert found["status"] == "fail"
    assert "items never expire" in found["detail"]
    assert f"update-time-to-live --table-name {table}" in found["fix"]


def test_a_ledger_table_without_an_index_fails_naming_it(env, aws, unique):
    table = f"one-index-{unique}"
    definition = table_definition(table)
    definition["GlobalSecondaryIndexes"] = definition["GlobalSecondaryIndexes"][:1]
    definition["AttributeDefinitions"] = [
        a for a in definition["AttributeDefinitions"] if a["AttributeName"] != "conversation_id"
    ]
    aws["dynamodb"].create_table(**definition)

    found = checks(run({**env, "LEDGER_TABLE": table}, "--json"))["ledger indexes"]

    assert found["status"] == "fail"
    assert "by-conversation is missing" in found["detail"]


# --- the DLQ ---------------------------------------------------------------------------


def test_a_dlq_that_does_not_exist_fails_with_the_fix(env, moto_server, unique):
    missing = f"{moto_server.url}/123456789012/no-such-dlq-{unique}"

    result = run({**env, "DLQ_QUEUE_URL": missing}, "--json")

    assert result.exit_code == 1
    found = checks(result)
    assert found["dlq"]["status"] == "fail"
    assert f"no queue at DLQ_QUEUE_URL {missing}" in found["dlq"]["detail"]
    assert "set DLQ_QUEUE_URL to the existing dead-letter queue" in found["dlq"]["fix"]
    assert found["eventbridge rules"]["status"] == "skip"


def test_a_dlq_eventbridge_may_not_send_to_fails(env, aws, unique):
    url = aws["sqs"].create_queue(QueueName=f"plain-{unique}")["QueueUrl"]

    found = checks(run({**env, "DLQ_QUEUE_URL": url}, "--json"))["dlq policy"]

    assert found["status"] == "fail"
    assert "events.amazonaws.com" in found["fix"]


# --- Genesys Cloud ---------------------------------------------------------------------


def test_a_genesys_client_without_conversation_view_fails_naming_the_permission(env, sim_admin):
    sim_admin.configure(denied_permissions=[CONVERSATION_VIEW])

    result = run(env, "--json")

    assert result.exit_code == 1
    found = checks(result)
    assert found["genesys token"]["status"] == "pass"
    permission = found[f"genesys {CONVERSATION_VIEW}"]
    assert permission["status"] == "fail"
    assert "403" in permission["detail"]
    assert f"add {CONVERSATION_VIEW} to a role of the OAuth client" in permission["fix"]


def test_a_refused_genesys_client_fails_the_token_check_without_showing_the_secret(env):
    result = run({**env, "GENESYS_CLIENT_SECRET": "not-the-secret-9f8e"}, "--json")

    assert result.exit_code == 1
    found = checks(result)
    assert found["genesys token"]["status"] == "fail"
    assert "GENESYS_CLIENT_ID / GENESYS_CLIENT_SECRET" in found["genesys token"]["fix"]
    assert found[f"genesys {CONVERSATION_VIEW}"]["status"] == "skip"
    assert "not-the-secret-9f8e" not in result.output


def test_genesys_is_skipped_when_verification_is_off_and_no_client_is_configured(env):
    result = run({**env, "REPLAY_VERIFY_CONVERSATION": "false", "GENESYS_CLIENT_ID": ""}, "--json")

    found = checks(result)
    for name in ("genesys token", f"genesys {CONVERSATION_VIEW}"):
        assert found[name]["status"] == "skip"
        assert "REPLAY_VERIFY_CONVERSATION is false" in found[name]["detail"]


# --- EventBridge rules -----------------------------------------------------------------


def test_a_rule_that_no_longer_exists_is_a_warning_saying_it_is_gone(env, aws, unique):
    dlq_message(aws["sqs"], env["DLQ_QUEUE_URL"], rule_arn(f"deleted-{unique}"))

    result = run(env, "--json")

    found = checks(result)[f"rule deleted-{unique}"]
    assert found["status"] == "warn"
    assert found["detail"].startswith("rule gone")
    assert result.exit_code == 0


def test_a_rule_on_a_custom_bus_is_looked_up_on_that_bus(env, aws, unique):
    bus, rule = f"genesys-{unique}", f"on-bus-{unique}"
    aws["events"].create_event_bus(Name=bus)
    aws["events"].put_rule(Name=rule, EventBusName=bus, EventPattern='{"source": ["x"]}')
    aws["events"].put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "crm", "Arn": TARGET}])
    dlq_message(aws["sqs"], env["DLQ_QUEUE_URL"], rule_arn(rule, bus))

    found = checks(run(env, "--json"))[f"rule {rule} (bus {bus})"]

    assert found["status"] == "pass"


def test_a_target_no_longer_among_its_rule_s_targets_is_a_warning(env, aws, unique):
    gone = "arn:aws:lambda:us-east-1:123456789012:function:retired"
    dlq_message(aws["sqs"], env["DLQ_QUEUE_URL"], rule_arn(f"genesys-to-crm-{unique}"), gone)

    found = checks(run(env, "--json"))[f"rule genesys-to-crm-{unique}"]

    assert found["status"] == "warn"
    assert gone in found["detail"]


def test_an_empty_dlq_leaves_the_rules_unchecked(env, aws):
    aws["sqs"].purge_queue(QueueUrl=env["DLQ_QUEUE_URL"])

    found = checks(run(env, "--json"))["eventbridge rules"]

    assert found["status"] == "skip"


class _DeniedEvents:
    """An EventBridge client whose ListTargetsByRule is denied, as IAM answers it."""

    def list_targets_by_rule(self, **_: Any) -> dict[str, Any]:
        message = (
            "User: arn:aws:sts::123456789012:assumed-role/dlq-replay-worker/i-0abc is not "
            "authorized to perform: events:ListTargetsByRule on resource: "
            f"{rule_arn('crm')} because no identity-based policy allows the "
            "events:ListTargetsByRule action"
        )
        raise ClientError(
            {"Error": {"Code": "AccessDeniedException", "Message": message}},
            "ListTargetsByRule",
        )


def test_a_denied_list_targets_by_rule_fails_with_the_iam_fix():
    rule = RuleRef.parse(rule_arn("crm"))
    assert rule is not None

    check = check_rule(_DeniedEvents(), rule, {TARGET})

    assert check == Check(
        "rule crm",
        False,
        f"events:ListTargetsByRule on {rule_arn('crm')} was denied: replay cannot check that "
        "a message's TARGET_ARN is one of its rule's targets",
        f"allow events:ListTargetsByRule on {rule_arn('crm')} (or "
        "arn:aws:events:us-east-1:*:rule/*) in the workers' IAM policy",
    )


@pytest.mark.parametrize(
    ("arn", "bus", "name"),
    [
        ("arn:aws:events:us-east-1:111122223333:rule/crm-sync", "default", "crm-sync"),
        ("arn:aws:events:eu-west-1:111122223333:rule/orders/crm-sync", "orders", "crm-sync"),
        (
            "arn:aws:events:us-east-1:111122223333:rule/aws.partner/genesys.com/cloud/"
            "5b1f0d2e/crm/r",
            "aws.partner/genesys.com/cloud/5b1f0d2e/crm",
            "r",
        ),
    ],
    ids=["default bus", "custom bus", "partner bus"],
)
def test_a_rule_arn_gives_its_bus_and_name(arn, bus, name):
    rule = RuleRef.parse(arn)

    assert rule is not None
    assert (rule.bus, rule.name) == (bus, name)


@pytest.mark.parametrize(
    "arn", ["arn:aws:sqs:us-east-1:111122223333:q", "rule/x", "arn:aws:events:us-east-1:1:rule/"]
)
def test_what_is_not_a_rule_arn_is_not_parsed(arn):
    assert RuleRef.parse(arn) is None
