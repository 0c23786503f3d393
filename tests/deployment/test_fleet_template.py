"""deploy/fleet.yaml, the worker fleet on ECS Fargate: what it runs, how it scales, what it
alarms on, and that every alarm of both templates reads a metric the code puts.

The template is read as the tests read template.yaml (tests/cfn.py's loader); the stack is
created on moto's CloudFormation; the backlog publisher runs against moto's SQS and
CloudWatch and a real redis-server.
"""

from __future__ import annotations

import re
import subprocess
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
import redis
from cfn import load_template
from helpers import REPO

from dlq.clock import FakeClock
from dlq.metrics.counters import OutcomeCounters
from dlq.metrics.emf import INGEST_METRICS, NAMESPACE
from dlq.metrics.fleet import (
    BACKLOG,
    BACKLOG_PER_WORKER,
    HEARTBEAT,
    REPLAY_WORKERS,
    FleetPublisher,
    seconds_to_next_pass,
)
from dlq.observe import Outcome
from dlq.settings import Settings
from tasks.fleetbeat import REPLAY_NODE_PREFIX
from tasks.names import REPLAY_QUEUE

BIN = REPO / ".venv" / "bin"
FLEET = REPO / "deploy" / "fleet.yaml"
#: Fargate kills a container at most this long after SIGTERM (ECS ContainerDefinition
#: stopTimeout: "the max stop timeout value is 120 seconds" for Fargate).
FARGATE_MAX_STOP_TIMEOUT = 120
#: The resource types moto's CloudFormation did not create when the stack was deployed
#: to it (moto 5.2): the stack still reaches CREATE_COMPLETE, with these left out
#: silently (the alarms too: no stack event, no alarm in moto's CloudWatch), or, for the
#: replication group, fails validation (its Fn::GetAtt), so the moto stack names an
#: existing Redis. They are tested by reading the template instead (the tests below
#: each name theirs).
MOTO_UNSUPPORTED = frozenset(
    {
        "AWS::CloudWatch::Alarm",
        "AWS::ElastiCache::ParameterGroup",
        "AWS::ElastiCache::ReplicationGroup",
        "AWS::ElastiCache::SubnetGroup",
        "AWS::ApplicationAutoScaling::ScalableTarget",
        "AWS::ApplicationAutoScaling::ScalingPolicy",
    }
)


def fleet() -> dict[str, Any]:
    return load_template("deploy/fleet.yaml")


def resources(of_type: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in fleet()["Resources"].items() if r["Type"] == of_type}


def containers() -> dict[str, dict[str, Any]]:
    """Each task definition's one container, by resource name."""
    return {
        name: r["Properties"]["ContainerDefinitions"][0]
        for name, r in resources("AWS::ECS::TaskDefinition").items()
    }


def env(container: dict[str, Any]) -> dict[str, Any]:
    return {
        item["Name"]: item["Value"]
        for item in container.get("Environment", [])
        if isinstance(item, dict) and "Name" in item
    }


# --- The template as written --------------------------------------------------------


def test_fleet_template_passes_cfn_lint() -> None:
    result = subprocess.run(
        [str(BIN / "cfn-lint"), "deploy/fleet.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_fleet_has_a_service_per_part_and_the_poller_only_for_its_front_door() -> None:
    services = resources("AWS::ECS::Service")
    names = {r["Properties"]["ServiceName"] for r in services.values()}
    assert names == {"replay", "track", "beat", "poller", "flower"}
    assert services["PollerService"]["Condition"] == "UsePoller"
    assert fleet()["Conditions"]["UsePoller"] == {
        "Fn::Equals": [{"Ref": "IngestFrontDoor"}, "poller"]
    }
    for service in services.values():
        network = service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]
        assert network["AssignPublicIp"] == "DISABLED"


def test_the_workers_consume_their_queues_with_their_node_names() -> None:
    replay = containers()["ReplayTaskDefinition"]["Command"]
    track = containers()["TrackTaskDefinition"]["Command"]
    assert replay[:4] == ["celery", "-A", "tasks", "worker"]
    assert replay[replay.index("-Q") + 1] == "replay,verify"
    assert replay[replay.index("-n") + 1] == f"{REPLAY_NODE_PREFIX}%h"
    assert replay[replay.index("--pool") + 1] == "threads"
    assert track[track.index("-Q") + 1] == "track"


def test_a_replay_task_is_one_thread_pool_process_on_one_vcpu() -> None:
    """The layout docs/performance.md measured ("Worker layout"): one thread-pool process
    per vCPU, scaled by tasks: by default a task of the one vCPU its process can use (the
    larger sizes stay allowed, so that a stack made with them still updates)."""
    parameters = fleet()["Parameters"]
    replay = containers()["ReplayTaskDefinition"]
    command = replay["Command"]
    assert command[command.index("--pool") + 1] == "threads"
    assert command[command.index("--concurrency") + 1] == {"Ref": "ReplayConcurrency"}
    task = resources("AWS::ECS::TaskDefinition")["ReplayTaskDefinition"]["Properties"]
    assert task["Cpu"] == {"Ref": "WorkerCpu"}
    assert parameters["WorkerCpu"]["Default"] == 1024
    assert {2048, 4096} <= set(parameters["WorkerCpu"]["AllowedValues"])
    assert parameters["ReplayConcurrency"]["Default"] == 16
    # The scaling policy asks for one task per ReplayConcurrency tasks waiting or running.
    target = parameters["BacklogPerWorkerTarget"]["Default"]
    assert target == parameters["ReplayConcurrency"]["Default"]


#: Fargate's task sizes: CPU units -> the memory (MiB) it runs them with (Linux, 1 GB steps).
FARGATE_MEMORY = {
    256: {512, 1024, 2048},
    512: set(range(1024, 4096 + 1, 1024)),
    1024: set(range(2048, 8192 + 1, 1024)),
    2048: set(range(4096, 16384 + 1, 1024)),
    4096: set(range(8192, 30720 + 1, 1024)),
}


def rule_holds(value: Any, parameters: dict[str, str]) -> bool | str | list[Any]:
    """A Rules assertion evaluated as CloudFormation does, for these parameter values."""
    if isinstance(value, list):
        return [rule_holds(item, parameters) for item in value]
    if not isinstance(value, dict):
        return str(value)
    ((key, argument),) = value.items()
    if key == "Ref":
        return parameters[argument]
    arguments = rule_holds(argument, parameters)
    assert isinstance(arguments, list), value
    if key == "Fn::Or":
        return any(arguments)
    if key == "Fn::And":
        return all(arguments)
    if key == "Fn::Equals":
        return arguments[0] == arguments[1]
    if key == "Fn::Contains":
        return arguments[1] in arguments[0]
    raise AssertionError(f"a rule function this test does not know: {key}")


def test_the_replay_task_size_rule_admits_exactly_the_sizes_fargate_runs() -> None:
    parameters = fleet()["Parameters"]
    (assertion,) = fleet()["Rules"]["ReplayTaskSize"]["Assertions"]
    for cpu in parameters["WorkerCpu"]["AllowedValues"]:
        for memory in parameters["WorkerMemory"]["AllowedValues"]:
            values = {"WorkerCpu": str(cpu), "WorkerMemory": str(memory)}
            assert rule_holds(assertion["Assert"], values) is (memory in FARGATE_MEMORY[cpu]), (
                values
            )
    assert (
        parameters["WorkerMemory"]["Default"] in FARGATE_MEMORY[parameters["WorkerCpu"]["Default"]]
    )


def test_beat_runs_exactly_once_even_during_a_deployment() -> None:
    beat = resources("AWS::ECS::Service")["BeatService"]["Properties"]
    assert beat["DesiredCount"] == 1
    assert beat["DeploymentConfiguration"]["MaximumPercent"] == 100
    assert beat["DeploymentConfiguration"]["MinimumHealthyPercent"] == 0
    assert "BeatService" not in {
        r["Properties"]["ResourceId"]["Fn::Sub"].split("${")[-1].split(".")[0]
        for r in resources("AWS::ApplicationAutoScaling::ScalableTarget").values()
    }


def test_beat_runs_the_scheduler_that_puts_the_fleet_metrics() -> None:
    command = containers()["BeatTaskDefinition"]["Command"]
    assert command[command.index("--scheduler") + 1] == "tasks.fleetbeat:FleetMetricsScheduler"


#: Each long-running container's service for `dlq-replay health` (tests/integration/
#: test_health.py runs the command against healthy and stuck processes).
HEALTH_SERVICES = {
    "ReplayTaskDefinition": "worker",
    "TrackTaskDefinition": "worker",
    "BeatTaskDefinition": "beat",
    "PollerTaskDefinition": "poller",
}


def test_workers_beat_and_the_poller_are_checked_by_their_proof_of_work() -> None:
    for name, service in HEALTH_SERVICES.items():
        command = containers()[name]["HealthCheck"]["Command"]
        assert command[:5] == ["CMD", "dlq-replay", "health", "--service", service], name


def test_no_health_check_asks_the_broker_a_broadcast_per_probe() -> None:
    for name, container in containers().items():
        assert "inspect" not in " ".join(container["HealthCheck"]["Command"]), name


# AWS::ApplicationAutoScaling::* is in MOTO_UNSUPPORTED: read here.
def test_the_redelivery_service_scales_on_the_metric_beat_puts() -> None:
    target = resources("AWS::ApplicationAutoScaling::ScalableTarget")["ReplayScalableTarget"]
    assert target["Properties"]["ResourceId"] == {
        "Fn::Sub": "service/${Cluster}/${ReplayService.Name}"
    }
    assert target["Properties"]["MinCapacity"] == {"Ref": "ReplayMinCount"}
    assert target["Properties"]["MaxCapacity"] == {"Ref": "ReplayMaxCount"}
    policy = resources("AWS::ApplicationAutoScaling::ScalingPolicy")["ReplayScalingPolicy"]
    config = policy["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    metric = config["CustomizedMetricSpecification"]
    assert (metric["Namespace"], metric["MetricName"]) == (NAMESPACE, BACKLOG_PER_WORKER)
    assert "Dimensions" not in metric  # the publisher puts it without dimensions
    assert config["ScaleInCooldown"] >= 300
    assert config.get("DisableScaleIn") is not True


def test_only_the_tracking_worker_count_is_bounded_small() -> None:
    count = fleet()["Parameters"]["TrackCount"]
    assert count["MaxValue"] <= 2


def test_every_container_has_a_health_check() -> None:
    for name, container in containers().items():
        check = container.get("HealthCheck")
        assert check and check["Command"][0] in {"CMD", "CMD-SHELL"}, name
        assert check["Retries"] >= 2, name


def test_workers_finish_their_tasks_before_fargate_kills_them() -> None:
    """The hard time limit (soft + 20 s, celeryconfig) ends before StopTimeout, which
    Fargate caps at 120 s; the settings the template gives the workers are valid."""
    for name in ("ReplayTaskDefinition", "TrackTaskDefinition"):
        container = containers()[name]
        values: dict[str, Any] = {
            key.lower(): value
            for key, value in env(container).items()
            if key.startswith(("REPLAY_", "GENESYS_READ", "LEDGER_")) and isinstance(value, str)
        }
        settings = Settings(_env_file=None, **values)
        hard_limit = settings.replay_task_soft_time_limit + 20
        assert hard_limit <= container["StopTimeout"] <= FARGATE_MAX_STOP_TIMEOUT, name
        assert settings.attempt_bound_seconds <= settings.replay_task_soft_time_limit


def test_the_settings_default_soft_limit_would_not_fit_fargate() -> None:
    # Why the template sets REPLAY_TASK_SOFT_TIME_LIMIT: the default's hard limit is 180 s.
    default = Settings.model_fields["replay_task_soft_time_limit"].default
    assert default + 20 > FARGATE_MAX_STOP_TIMEOUT


def test_every_log_group_keeps_logs_for_the_retention_parameter() -> None:
    groups = resources("AWS::Logs::LogGroup")
    assert len(groups) == 5
    for group in groups.values():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert fleet()["Parameters"]["LogRetentionDays"]["Default"] == 30
    used = {c["LogConfiguration"]["Options"]["awslogs-group"]["Ref"] for c in containers().values()}
    assert used == set(groups)


# AWS::ElastiCache::* is in MOTO_UNSUPPORTED: read here.
def test_elasticache_uses_tls_auth_failover_and_never_evicts() -> None:
    group = resources("AWS::ElastiCache::ReplicationGroup")["Redis"]["Properties"]
    assert group["TransitEncryptionEnabled"] is True
    assert group["AtRestEncryptionEnabled"] is True
    assert group["AutomaticFailoverEnabled"] is True
    assert group["NumCacheClusters"] == 2
    assert group["SnapshotRetentionLimit"] == {"Ref": "SnapshotRetentionDays"}
    assert group["AuthToken"] == {
        "Fn::Sub": "{{resolve:secretsmanager:${RedisAuthSecret}:SecretString:password}}"
    }
    params = resources("AWS::ElastiCache::ParameterGroup")["RedisParameterGroup"]["Properties"]
    assert params["Properties"] == {"maxmemory-policy": "noeviction"}
    secret = resources("AWS::SecretsManager::Secret")["RedisAuthSecret"]["Properties"]
    assert "GenerateSecretString" in secret and "SecretString" not in secret


def test_flower_is_reachable_from_the_vpc_only_and_authenticates_from_a_secret() -> None:
    group = resources("AWS::EC2::SecurityGroup")["FlowerSecurityGroup"]["Properties"]
    assert [rule["CidrIp"] for rule in group["SecurityGroupIngress"]] == [{"Ref": "VpcCidr"}]
    flower = containers()["FlowerTaskDefinition"]
    assert flower["Secrets"] == [
        {"Name": "FLOWER_BASIC_AUTH", "ValueFrom": {"Ref": "FlowerBasicAuthSecretArn"}}
    ]
    assert "FLOWER_BASIC_AUTH" not in env(flower)


def test_only_the_roles_that_call_genesys_may_read_its_secrets() -> None:
    text = {name: str(r) for name, r in resources("AWS::IAM::Role").items()}
    readers = {name for name, body in text.items() if "GenesysClientSecretArn" in body}
    assert readers == {"ReplayTaskRole", "TrackTaskRole"}
    assert "cloudwatch:PutMetricData" in text["BeatTaskRole"]
    assert [n for n, body in text.items() if "PutMetricData" in body] == ["BeatTaskRole"]


def literals(value: Any) -> list[str]:
    """Every plain string in `value`, intrinsics' arguments included."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in literals(item)]
    if isinstance(value, list):
        return [s for item in value for s in literals(item)]
    return []


def test_no_secret_value_is_written_in_the_template() -> None:
    for parameter in fleet()["Parameters"].values():
        if re.search(r"(?i)password|secret|token", str(parameter.get("Description", ""))):
            assert parameter.get("Default", "") == ""
    # A token-like literal (long, letters and digits, no path or ARN punctuation).
    token = re.compile(r"^(?=.*[0-9])(?=.*[A-Za-z])[A-Za-z0-9+=_-]{20,}$")
    assert [s for s in literals(fleet()["Resources"]) if token.match(s)] == []
    for secret in resources("AWS::SecretsManager::Secret").values():
        assert "SecretString" not in secret["Properties"]  # generated, never written
    for container in containers().values():
        for key in env(container):
            assert not re.search(r"PASSWORD$|SECRET$|TOKEN$|BASIC_AUTH$", key), key


# --- The stack on moto --------------------------------------------------------------


def stack_parameters(front_door: str) -> list[dict[str, str]]:
    account = "123456789012"
    values = {
        "VpcId": "vpc-0123456789abcdef0",
        "VpcCidr": "10.0.0.0/16",
        "PrivateSubnetIds": "subnet-0123456789abcdef0,subnet-0123456789abcdef1",
        "ImageUri": f"{account}.dkr.ecr.us-east-1.amazonaws.com/dlq-replay:1.0.0",
        "WorkerPolicyArn": f"arn:aws:iam::{account}:policy/dlq-replay-worker",
        "DeadLetterQueueUrl": f"https://sqs.us-east-1.amazonaws.com/{account}/dlq",
        "DeadLetterQueueArn": f"arn:aws:sqs:us-east-1:{account}:dlq",
        "IngestFrontDoor": front_door,
        # An existing Redis: moto has no ElastiCache replication group (MOTO_UNSUPPORTED),
        # and Fn::GetAtt on one fails the whole stack.
        "RedisUrl": "rediss://redis.example.internal:6379/0",
        "RedisPasswordSecretArn": f"arn:aws:secretsmanager:us-east-1:{account}:secret:rp-AbCdEf",
        "GenesysClientIdSecretArn": f"arn:aws:secretsmanager:us-east-1:{account}:secret:gid-AbCdEf",
        "GenesysClientSecretArn": f"arn:aws:secretsmanager:us-east-1:{account}:secret:gsec-AbCdEf",
        "FlowerBasicAuthSecretArn": f"arn:aws:secretsmanager:us-east-1:{account}:secret:fl-AbCdEf",
    }
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


def test_the_stack_deploys_on_moto(moto_server: Any, unique: str) -> None:
    cloudformation = boto3.client("cloudformation", region_name="us-east-1")
    name = f"fleet-{unique}"
    cloudformation.create_stack(
        StackName=name,
        TemplateBody=FLEET.read_text(),
        Parameters=stack_parameters("poller"),
        Capabilities=["CAPABILITY_IAM"],
    )
    stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    created = {
        r["LogicalResourceId"]: r["ResourceType"]
        for r in cloudformation.list_stack_resources(StackName=name)["StackResourceSummaries"]
    }
    # The poller front door and an existing Redis: the CreateRedis resources are left out.
    expected = {
        logical: r["Type"]
        for logical, r in fleet()["Resources"].items()
        if r.get("Condition") != "CreateRedis"
    }
    missing = {logical for logical, kind in expected.items() if logical not in created}
    assert {expected[logical] for logical in missing} <= MOTO_UNSUPPORTED, missing
    ecs = boto3.client("ecs", region_name="us-east-1")
    services = ecs.list_services(cluster=name)["serviceArns"]
    assert {arn.rsplit("/", 1)[-1] for arn in services} == {
        "replay",
        "track",
        "beat",
        "poller",
        "flower",
    }
    groups = boto3.client("logs", region_name="us-east-1").describe_log_groups(
        logGroupNamePrefix=f"/dlq-replay/{name}/"
    )["logGroups"]
    assert {g["retentionInDays"] for g in groups} == {30} and len(groups) == 5


# --- The publisher, against moto and Redis --------------------------------------------


@pytest.fixture()
def published(moto_server: Any, redis_client: redis.Redis, unique: str) -> dict[str, Any]:
    """One publishing pass after a minute in which 2 events were exhausted and 1 rejected,
    with 3 replays queued, 2 DLQ messages visible, 2 replay workers running 3 tasks."""
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName=f"dlq-{unique}")["QueueUrl"]
    for n in range(2):
        sqs.send_message(QueueUrl=url, MessageBody=f"dead letter {n}")
    for n in range(3):
        redis_client.lpush(REPLAY_QUEUE, f"task {n}")
    scope = f"ledger-{unique}"
    minute = int(time.time() // 60) * 60 - 120
    clock = FakeClock(start=minute + 10)
    counters = OutcomeCounters(redis_client, scope, clock=clock)
    target = "arn:aws:sqs:us-east-1:123456789012:crm-events"
    for _ in range(2):
        counters.finished(Outcome(status="exhausted", target_arn=target, failure_code="HTTP503"))
    counters.ingested("rejected", target_arn=None, dlq_error_code=None)
    clock.sleep(60)  # the next minute, settled: the one counted is complete
    from dlq.metrics.sampling import sqs_queue_depth

    namespace = f"DlqReplayTest{unique}"
    publisher = FleetPublisher(
        boto3.client("cloudwatch", region_name="us-east-1"),
        redis_client,
        scope,
        queue_keys=(REPLAY_QUEUE,),
        dlq_depth=sqs_queue_depth(sqs, url),
        replay_workers=lambda: (2, 3),
        ingest_counts=True,
        namespace=namespace,
        clock=clock,
    )
    assert publisher.publish()
    return {
        "namespace": namespace,
        "publisher": publisher,
        "clock": clock,
        "redis": redis_client,
        "scope": scope,
    }


def statistic(namespace: str, metric: str, statistic: str = "Sum") -> float:
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    now = datetime.now(UTC)
    points = cloudwatch.get_metric_statistics(
        Namespace=namespace,
        MetricName=metric,
        StartTime=now - timedelta(hours=1),
        EndTime=now + timedelta(hours=1),
        Period=3600 * 2,
        Statistics=[statistic],
    )["Datapoints"]
    return sum(point[statistic] for point in points)


def test_the_backlog_counts_queued_dead_lettered_and_running_work(published: dict) -> None:
    assert statistic(published["namespace"], BACKLOG, "Maximum") == 3 + 2 + 3
    assert statistic(published["namespace"], BACKLOG_PER_WORKER, "Maximum") == 4.0
    assert statistic(published["namespace"], REPLAY_WORKERS, "Maximum") == 2
    assert statistic(published["namespace"], HEARTBEAT) == 1


def test_the_minute_counts_are_put_once(published: dict) -> None:
    assert statistic(published["namespace"], "EventsExhausted") == 2
    assert statistic(published["namespace"], "EventsRejected") == 1
    assert not published["publisher"].publish()  # a second beat: this pass is taken
    published["clock"].sleep(60)
    assert published["publisher"].publish()  # the next minute's pass
    assert statistic(published["namespace"], "EventsExhausted") == 2
    assert statistic(published["namespace"], HEARTBEAT) == 2


def test_every_alarm_of_both_templates_reads_a_metric_the_code_puts(published: dict) -> None:
    """Every `DlqReplay` alarm's metric is listed by CloudWatch after one pass of the
    publisher (the EventsRejected of a Lambda front door is also the ingest's EMF line);
    the rest are AWS's own (`AWS/SQS`, `AWS/Lambda`)."""
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    listed = {
        m["MetricName"]
        for m in cloudwatch.list_metrics(Namespace=published["namespace"])["Metrics"]
    }
    alarms = [
        r["Properties"]
        for template in (load_template(), fleet())
        for r in template["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    ]
    ours = [a for a in alarms if a["Namespace"] == NAMESPACE]
    assert {a["MetricName"] for a in ours} >= {"EventsExhausted", "EventsRejected", HEARTBEAT}
    for alarm in ours:
        assert alarm["MetricName"] in listed, alarm["MetricName"]
        assert "Dimensions" not in alarm
    assert INGEST_METRICS["rejected"] == "EventsRejected"
    assert {a["Namespace"] for a in alarms} <= {NAMESPACE, "AWS/SQS", "AWS/Lambda"}


@pytest.mark.parametrize(
    ("second", "wait"), [(0, 5), (4.9, 0.1), (5, 60), (5.1, 59.9), (59, 6), (65, 60)]
)
def test_passes_run_five_seconds_after_each_minute(second: float, wait: float) -> None:
    assert seconds_to_next_pass(1_800_000_000 + second) == pytest.approx(wait)


# AWS::CloudWatch::Alarm is in MOTO_UNSUPPORTED: read here and in the test above.
def test_the_heartbeat_alarm_fires_when_beat_is_silent() -> None:
    alarm = resources("AWS::CloudWatch::Alarm")["HeartbeatAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == (NAMESPACE, HEARTBEAT)
    assert alarm["TreatMissingData"] == "breaching"
    assert alarm["ComparisonOperator"] == "LessThanThreshold" and alarm["Threshold"] == 1
    assert alarm["Period"] == 60
