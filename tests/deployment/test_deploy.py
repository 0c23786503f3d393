"""The deployment files agree with the code: compose, Dockerfile, .env.example, template.yaml.

Docker is not available on the build machines, so nothing here builds an image or starts a
container; what can be checked without it is: every command names a real entry point, every
variable is a setting, every copied file exists, and the SAM template lints clean and
matches the ledger the code creates.
"""

from __future__ import annotations

import copy
import fnmatch
import functools
import importlib
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices

from dlq.ledger import table_definition
from dlq.settings import PLACEHOLDER_PREFIX, Settings
from tasks import names

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

CLI_SUBCOMMANDS = {
    "demo",
    "setup",
    "doctor",
    "poll",
    "status",
    "inspect",
    "redrive",
    "seed",
    "genesys-sim",
}
CELERY_SUBCOMMANDS = {"worker", "beat", "flower"}
PRODUCTION_SERVICES = {"redis", "worker", "tracker", "beat", "poller", "flower"}
LOCAL_SERVICES = {"moto", "genesys-sim", "setup", "seed"}
#: AWS variables read by boto3 itself (not by the settings object).
AWS_VARIABLES = {
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
}
#: What Lambda needs to attach a function to a VPC: these actions take no resource scope.
VPC_ACTIONS = {
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
}
#: Variables only docker-compose.yml reads (interpolated into it from .env).
COMPOSE_VARIABLES = {"REDIS_PASSWORD"}
#: Variables of the images we do not build: redis-cli's password for the healthcheck.
IMAGE_VARIABLES = {"redis": {"REDISCLI_AUTH"}}
ENV_LINE = re.compile(r"^#? ?([A-Z][A-Z0-9_]*)=(.*)$")
#: `${NAME}`, `${NAME:?message}`, `${NAME:-default}`... in docker-compose.yml.
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")


# --- loading ------------------------------------------------------------------------


class CloudFormationLoader(yaml.SafeLoader):
    """PyYAML's safe loader, reading `!Ref X` as {"Ref": X} and `!Sub s` as {"Fn::Sub": s}."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


CloudFormationLoader.add_multi_constructor("!", _intrinsic)


@functools.cache
def _parsed_template() -> dict[str, Any]:
    text = (REPO / "template.yaml").read_text()
    return yaml.load(text, Loader=CloudFormationLoader)  # noqa: S506 (safe loader subclass)


def load_template() -> dict[str, Any]:
    """The template, parsed once per session (a copy each time: tests may not share edits)."""
    return copy.deepcopy(_parsed_template())


def load_compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def env_example() -> dict[str, str]:
    """Every variable .env.example documents, set or commented out, with its value."""
    found: dict[str, str] = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        match = ENV_LINE.match(line)
        if match:
            found.setdefault(match.group(1), match.group(2))
    return found


def settings_variables() -> dict[str, set[str]]:
    """Each settings field and the environment variable name(s) it is read from."""
    names: dict[str, set[str]] = {}
    for field_name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names[field_name] = {str(choice).upper() for choice in alias.choices}
        elif isinstance(alias, str):
            names[field_name] = {alias.upper()}
        else:
            names[field_name] = {field_name.upper()}
    return names


def flower_variables() -> set[str]:
    """FLOWER_<option> for each of Flower's own options, plus flowerconfig.py's switch."""
    from flower.options import default_options

    return {f"FLOWER_{name.upper()}" for name in default_options.as_dict()} | {
        "FLOWER_ALLOW_NO_AUTH"
    }


def allowed_variables() -> set[str]:
    known = set().union(*settings_variables().values())
    return known | AWS_VARIABLES | flower_variables()


def built_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in compose["services"].items() if "build" in svc}


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            result.append((instruction.upper(), rest.strip()))
    return result


# --- docker-compose.yml --------------------------------------------------------------


def test_compose_has_the_services_and_the_local_profile() -> None:
    services = load_compose()["services"]
    assert set(services) == PRODUCTION_SERVICES | LOCAL_SERVICES
    for name in PRODUCTION_SERVICES:
        assert "profiles" not in services[name], name
    for name in LOCAL_SERVICES:
        assert services[name]["profiles"] == ["local"], name


def test_redis_persists_and_never_evicts() -> None:
    redis = load_compose()["services"]["redis"]
    assert redis["image"] == "redis:7"
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    assert "--maxmemory-policy noeviction" in command
    assert any(volume.endswith(":/data") for volume in redis["volumes"])


def test_redis_requires_the_password_from_dotenv_and_so_does_its_healthcheck() -> None:
    redis = load_compose()["services"]["redis"]
    command = redis["command"]
    password = command[command.index("--requirepass") + 1]
    assert password.startswith("${REDIS_PASSWORD:?")  # compose stops when it is not set
    assert redis["environment"]["REDISCLI_AUTH"] == "${REDIS_PASSWORD}"
    # redis-cli exits 0 on NOAUTH: healthy must mean PONG (tests/test_compose.py runs it).
    assert redis["healthcheck"]["test"][0] == "CMD-SHELL"
    assert "grep -q PONG" in redis["healthcheck"]["test"][1]


def test_every_service_that_reads_settings_gets_redis_url_with_the_password() -> None:
    services = load_compose()["services"]
    for name, service in built_services(load_compose()).items():
        if name == "genesys-sim":  # reads no setting
            continue
        url = service["environment"]["REDIS_URL"]
        assert url.startswith("redis://:${REDIS_PASSWORD:?"), name
        assert url.endswith("}@redis:6379/0"), name
    assert "environment" not in services["genesys-sim"] or (
        "REDIS_URL" not in services["genesys-sim"]["environment"]
    )


def test_the_poller_is_given_time_to_finish_its_longest_receive() -> None:
    grace = load_compose()["services"]["poller"]["stop_grace_period"]
    (longest,) = [
        bound.le for bound in Settings.model_fields["poller_wait_seconds"].metadata
        if hasattr(bound, "le")
    ]  # fmt: skip
    assert grace.endswith("s") and int(grace[:-1]) > longest


def test_every_variable_the_compose_file_interpolates_is_in_env_example() -> None:
    used = set(INTERPOLATION.findall((REPO / "docker-compose.yml").read_text()))
    assert used == COMPOSE_VARIABLES
    assert used <= set(env_example())


def test_flower_reads_its_config_from_where_the_dockerfile_puts_it() -> None:
    command = load_compose()["services"]["flower"]["command"]
    (conf,) = [arg.partition("=")[2] for arg in command if arg.startswith("--conf=")]
    instructions = dockerfile_instructions()
    last_workdir = max(n for n, (name, _) in enumerate(instructions) if name == "WORKDIR")
    workdir = instructions[last_workdir][1]
    copied_there = [
        args.split()[:-1]
        for name, args in instructions[last_workdir:]
        if name == "COPY" and args.split()[-1] in {"./", "."}
    ]
    assert conf == f"{workdir}/flowerconfig.py"
    assert any("flowerconfig.py" in sources for sources in copied_there)


def test_every_app_service_is_built_here_and_reads_dotenv() -> None:
    compose = load_compose()
    services = built_services(compose)
    assert set(services) == {
        "worker",
        "tracker",
        "beat",
        "poller",
        "flower",
        "genesys-sim",
        "setup",
        "seed",
    }
    for name, service in services.items():
        assert service["build"] == ".", name
        assert service["env_file"] == ".env", name
        if name in PRODUCTION_SERVICES:
            assert service["depends_on"]["redis"]["condition"] == "service_healthy", name


def test_production_services_carry_no_local_settings() -> None:
    services = load_compose()["services"]
    for name in PRODUCTION_SERVICES:
        values = " ".join(str(v) for v in (services[name].get("environment") or {}).values())
        assert "moto" not in values and "genesys-sim" not in values, name


def test_local_setup_always_targets_moto() -> None:
    environment = load_compose()["services"]["setup"]["environment"]
    assert environment["AWS_ENDPOINT_URL"] == "http://moto:5000"
    assert load_compose()["services"]["moto"]["image"].startswith("motoserver/moto")


def test_flower_is_published_on_loopback_only() -> None:
    flower = load_compose()["services"]["flower"]
    assert flower["ports"]
    for port in flower["ports"]:
        assert str(port).startswith("127.0.0.1:"), port


def test_the_workers_consume_the_queues_celeryconfig_routes_to_one_each() -> None:
    import celeryconfig

    services = load_compose()["services"]

    def queues(name: str) -> set[str]:
        command = services[name]["command"]
        return set(command[command.index("-Q") + 1].split(","))

    assert queues("worker") == {names.REPLAY_QUEUE, names.VERIFY_QUEUE}
    assert queues("tracker") == {names.TRACK_QUEUE}
    routed = {route["queue"] for route in celeryconfig.task_routes.values()}
    assert routed <= queues("worker") | queues("tracker")


def _commands() -> list[tuple[str, list[str]]]:
    return [(name, svc["command"]) for name, svc in built_services(load_compose()).items()]


@pytest.mark.parametrize(("service", "command"), _commands(), ids=[n for n, _ in _commands()])
def test_service_command_names_a_real_entry_point(service: str, command: list[str]) -> None:
    assert isinstance(command, list), "use the exec form: a list, no shell"
    if command[0] == "celery":
        from celery import Celery

        assert command[1:3] == ["-A", "tasks"]
        assert command[3] in CELERY_SUBCOMMANDS
        assert isinstance(importlib.import_module("tasks").app, Celery)
    else:
        assert command[0] == "dlq-replay"
        assert_cli_accepts(command[1:])


def assert_cli_accepts(argv: list[str]) -> None:
    """The subcommand exists (and, once the CLI is there, takes every option used)."""
    subcommand = argv[0]
    assert subcommand in CLI_SUBCOMMANDS
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["dlq-replay"] == "cli.main:main"
    if not (REPO / "cli" / "main.py").exists():
        return
    result = subprocess.run(
        [str(BIN / "dlq-replay"), subcommand, "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for option in (arg for arg in argv[1:] if arg.startswith("--")):
        assert option in result.stdout, f"dlq-replay {subcommand} has no {option}"


# --- variables ---------------------------------------------------------------------


def test_compose_passes_only_known_variables() -> None:
    allowed = allowed_variables()
    for name, service in load_compose()["services"].items():
        environment = service.get("environment") or {}
        assert isinstance(environment, dict), f"{name}: use the mapping form"
        unknown = set(environment) - allowed - IMAGE_VARIABLES.get(name, set())
        assert not unknown, f"{name} passes variables nothing reads: {sorted(unknown)}"


def test_env_example_names_only_known_variables() -> None:
    unknown = set(env_example()) - allowed_variables() - COMPOSE_VARIABLES
    assert not unknown, f".env.example documents variables nothing reads: {sorted(unknown)}"


def test_env_example_documents_every_setting() -> None:
    documented = set(env_example())
    missing = {
        field
        for field, names in settings_variables().items()
        if not names & documented  # an aliased field needs one of its names
    }
    assert not missing, f"settings missing from .env.example: {sorted(missing)}"
    assert {"AWS_ENDPOINT_URL", "AWS_REGION", "FLOWER_BASIC_AUTH", "FLOWER_ALLOW_NO_AUTH"} <= (
        documented
    )


def test_env_example_values_are_valid_settings(tmp_path: Path) -> None:
    # Commented-out lines too: the defaults and examples shown must be accepted.
    known = set().union(*settings_variables().values())
    lines = [f"{k}={v}" for k, v in env_example().items() if k in known]
    env_file = tmp_path / "example.env"
    env_file.write_text("\n".join(lines) + "\n")
    Settings(_env_file=env_file)


def test_env_example_keeps_secrets_as_placeholders() -> None:
    values = env_example()
    assert values["FLOWER_BASIC_AUTH"].partition(":")[2].startswith(PLACEHOLDER_PREFIX)
    assert values["REDIS_PASSWORD"].startswith(PLACEHOLDER_PREFIX)
    assert values["GENESYS_CLIENT_SECRET"] == "sim-client-secret"  # the simulator's, not real
    assert values["AWS_SECRET_ACCESS_KEY"] == "testing"  # moto's


# --- Dockerfile ---------------------------------------------------------------------


def test_dockerfile_runs_as_non_root_on_python_311_slim() -> None:
    instructions = dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    users = [args for instruction, args in instructions if instruction == "USER"]
    assert users and users[-1] not in {"root", "0"}
    workdirs = [args for instruction, args in instructions if instruction == "WORKDIR"]
    assert workdirs[-1] == "/app"
    assert ("CMD", '["dlq-replay", "--help"]') in instructions


def test_dockerfile_installs_the_project_without_dev_extras() -> None:
    runs = " ".join(args for instruction, args in dockerfile_instructions() if instruction == "RUN")
    assert "pip install ." in runs
    assert "[dev" not in runs and "-e " not in runs


def _copy_sources() -> list[str]:
    sources = []
    for instruction, args in dockerfile_instructions():
        if instruction in {"COPY", "ADD"}:
            parts = [part for part in args.split() if not part.startswith("--")]
            sources.extend(parts[:-1])
    return sources


def test_dockerfile_copies_files_that_exist_and_are_not_ignored() -> None:
    ignored = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith(("#", "!"))
    ]
    for source in _copy_sources():
        assert (REPO / source).exists(), f"COPY {source}: no such file"
        assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), source
    assert {".venv", ".git", ".env"} <= set(ignored)


def _top_level_packages(setuptools: dict) -> set[str]:
    """The packages pyproject ships: `packages.find` include patterns (`dlq*` -> `dlq`)."""
    include = setuptools["packages"]["find"]["include"]
    return {pattern.rstrip("*").rstrip(".") for pattern in include}


def test_dockerfile_copies_what_pip_install_needs() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    setuptools = project["tool"]["setuptools"]
    sources = {source.rstrip("/") for source in _copy_sources()}
    needed = {"pyproject.toml", project["project"]["readme"]}
    needed |= _top_level_packages(setuptools)
    needed |= {f"{module}.py" for module in setuptools["py-modules"]}
    assert needed <= sources, f"not copied: {sorted(needed - sources)}"
    assert {"celeryconfig.py", "flowerconfig.py"} <= sources


def test_pip_install_ships_every_subpackage() -> None:
    # Packages are found by pattern, so a new subpackage (dlq/targets/) ships with its
    # parent; a new top-level package must be added to the patterns.
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    shipped = _top_level_packages(setuptools)
    product = {
        init.parent.name
        for init in REPO.glob("*/__init__.py")
        if init.parent.name not in {"tests", "bench"}
    }
    assert product <= shipped, f"add to [tool.setuptools.packages.find]: {product - shipped}"


# --- template.yaml -------------------------------------------------------------------


def test_template_passes_cfn_lint() -> None:
    result = subprocess.run(
        [str(BIN / "cfn-lint"), "template.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # 0 clean; bits 2 error, 4 warning, 8 informational.
    assert result.returncode == 0, result.stdout + result.stderr


def test_ledger_table_matches_the_code() -> None:
    table = load_template()["Resources"]["LedgerTable"]
    assert table["DeletionPolicy"] == "Retain"
    props = table["Properties"]
    expected = table_definition("unused")

    def by_name(items: list[dict[str, Any]], key: str) -> dict[str, Any]:
        return {item[key]: item for item in items}

    assert props["BillingMode"] == expected["BillingMode"]
    assert by_name(props["AttributeDefinitions"], "AttributeName") == by_name(
        expected["AttributeDefinitions"], "AttributeName"
    )
    assert props["KeySchema"] == expected["KeySchema"]
    assert by_name(props["GlobalSecondaryIndexes"], "IndexName") == by_name(
        expected["GlobalSecondaryIndexes"], "IndexName"
    )
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"]["SSEEnabled"] is True


def _function() -> dict[str, Any]:
    return load_template()["Resources"]["IngestFunction"]["Properties"]


def test_function_handler_exists_and_reads_settings() -> None:
    function = _function()
    module, _, name = function["Handler"].rpartition(".")
    assert callable(getattr(importlib.import_module(module), name))
    assert function["Runtime"] == "python3.11"
    assert function["Timeout"] == {"Ref": "FunctionTimeout"}
    known = set().union(*settings_variables().values())
    assert set(function["Environment"]["Variables"]) <= known
    assert {"LEDGER_TABLE", "REDIS_URL"} <= set(function["Environment"]["Variables"])


def test_dlq_trigger_reports_batch_item_failures() -> None:
    (event,) = _function()["Events"].values()
    assert event["Type"] == "SQS"
    props = event["Properties"]
    assert props["Queue"] == {"Ref": "DeadLetterQueueArn"}
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BatchSize"] == {"Ref": "BatchSize"}
    assert props["MaximumBatchingWindowInSeconds"] == {"Ref": "MaximumBatchingWindowInSeconds"}


def test_redis_url_parameter_is_not_echoed() -> None:
    assert load_template()["Parameters"]["RedisUrl"]["NoEcho"] is True


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    """A policy's statements, with both branches of a conditional statement."""
    found: list[dict[str, Any]] = []
    for statement in document["Statement"]:
        branches = statement["Fn::If"][1:] if "Fn::If" in statement else [statement]
        found.extend(b for b in branches if b != {"Ref": "AWS::NoValue"})
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def assert_least_privilege(statements: list[dict[str, Any]]) -> None:
    for statement in statements:
        actions = _as_list(statement["Action"])
        assert statement["Effect"] == "Allow"
        assert "NotAction" not in statement and "NotResource" not in statement
        assert not [a for a in actions if "*" in a], statement
        if "*" in _as_list(statement["Resource"]):
            # Only what attaching a function to a VPC needs takes no resource scope.
            assert set(actions) <= VPC_ACTIONS, statement


def test_function_role_is_least_privilege() -> None:
    role = load_template()["Resources"]["IngestFunctionRole"]["Properties"]
    assert "ManagedPolicyArns" not in role
    statements = [s for policy in role["Policies"] for s in _statements(policy["PolicyDocument"])]
    assert_least_privilege(statements)
    grants = {statement["Sid"]: statement for statement in statements}
    assert set(grants["Ledger"]["Action"]) == {
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:GetItem",
    }
    assert grants["Ledger"]["Resource"] == {"Fn::GetAtt": ["LedgerTable", "Arn"]}
    assert set(grants["DeadLetterQueue"]["Action"]) == {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ChangeMessageVisibility",
    }
    assert grants["DeadLetterQueue"]["Resource"] == {"Ref": "DeadLetterQueueArn"}
    assert _function()["Role"] == {"Fn::GetAtt": ["IngestFunctionRole", "Arn"]}
    assert "Policies" not in _function()


def test_worker_policy_is_scoped_and_exported() -> None:
    template = load_template()
    policy = template["Resources"]["WorkerPolicy"]["Properties"]["PolicyDocument"]
    statements = _statements(policy)
    assert_least_privilege(statements)
    assert not [s for s in statements if "*" in _as_list(s["Resource"])]
    assert {s["Sid"] for s in statements} >= {"Ledger", "DeadLetterQueue", "ParkingQueue"}
    assert template["Outputs"]["WorkerPolicyArn"]["Value"] == {"Ref": "WorkerPolicy"}


def test_sam_builds_the_function_with_the_makefile_target_it_names() -> None:
    function = load_template()["Resources"]["IngestFunction"]
    assert function["Metadata"]["BuildMethod"] == "makefile"
    makefile = (REPO / "Makefile").read_text()
    assert "\nbuild-IngestFunction:" in makefile
    assert '--target "$(ARTIFACTS_DIR)" .' in makefile


# --- template.yaml: a small evaluator of the intrinsics these tests need ---------------

#: The pseudo parameters, as in a stack in us-east-1 of the commercial partition.
PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "dlq-replay",
}
DLQ_ARN = "arn:aws:sqs:us-east-1:123456789012:genesys-eventbridge-dlq"
#: A rule on the Genesys partner event bus: the bus name has slashes of its own.
PARTNER_RULE_ARN = (
    "arn:aws:events:us-east-1:123456789012:rule/aws.partner/genesys.com/cloud/"
    "0f2b6a3e-2c4d-4d2a-9b1e-7c3f5a9e8d10/crm-sync/conversation-end-to-crm"
)
DEFAULT_BUS_RULE_ARN = "arn:aws:events:us-east-1:123456789012:rule/conversation-end"


def parameter_values(template: dict[str, Any], **overrides: str) -> dict[str, Any]:
    """Each parameter's value: its default unless overridden; list parameters as lists."""
    values: dict[str, Any] = {}
    for name, parameter in template["Parameters"].items():
        raw = overrides.get(name, parameter.get("Default"))
        if parameter["Type"] == "CommaDelimitedList" and raw is not None:
            raw = str(raw).split(",")
        values[name] = raw
    return values


def resolve(template: dict[str, Any], value: Any, params: dict[str, Any]) -> Any:
    """Evaluate Ref, Condition and the Fn:: functions the template's conditions, queue URL
    and ARNs use, the way CloudFormation would for these parameter values."""

    def go(v: Any) -> Any:
        return resolve(template, v, params)

    if isinstance(value, list):
        return [go(v) for v in value]
    if not isinstance(value, dict) or len(value) != 1:
        return value
    ((key, arg),) = value.items()
    if key == "Ref":
        return PSEUDO[arg] if arg in PSEUDO else params[arg]
    if key == "Condition":
        return go(template["Conditions"][arg])
    if key == "Fn::Equals":
        left, right = go(arg)
        return left == right
    if key == "Fn::Not":
        return not go(arg[0])
    if key == "Fn::And":
        return all(go(v) for v in arg)
    if key == "Fn::Or":
        return any(go(v) for v in arg)
    if key == "Fn::Join":
        separator, items = arg
        return separator.join(go(items))
    if key == "Fn::Split":
        separator, source = arg
        return go(source).split(separator)
    if key == "Fn::Select":
        index, items = arg
        return go(items)[int(index)]
    if key == "Fn::Sub":
        text, variables = (arg, {}) if isinstance(arg, str) else arg
        names = {k: go(v) for k, v in variables.items()}
        return re.sub(
            r"\$\{([^}!]+)\}",
            lambda m: str(names[m[1]] if m[1] in names else go({"Ref": m[1]})),
            text,
        )
    return value


def condition_holds(name: str, **overrides: str) -> bool:
    template = load_template()
    return bool(resolve(template, {"Condition": name}, parameter_values(template, **overrides)))


def iam_matches(pattern: str, arn: str) -> bool:
    """IAM's ARN wildcards: `*` any run of characters (slashes included), `?` one."""
    regex = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.fullmatch(regex, arn) is not None


# --- template.yaml: alarms -----------------------------------------------------------

_QUEUE_NAME = {"Fn::Select": [5, {"Fn::Split": [":", {"Ref": "DeadLetterQueueArn"}]}]}
_FUNCTION = {"Ref": "IngestFunction"}
#: alarm -> (namespace, metric, dimensions, statistic, threshold)
ALARMS: dict[str, tuple[str, str, dict[str, Any], str, Any]] = {
    "DeadLetterQueueAgeAlarm": (
        "AWS/SQS",
        "ApproximateAgeOfOldestMessage",
        {"QueueName": _QUEUE_NAME},
        "Maximum",
        {"Ref": "DeadLetterQueueAgeThreshold"},
    ),
    "DeadLetterQueueDepthAlarm": (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        {"QueueName": _QUEUE_NAME},
        "Maximum",
        {"Ref": "DeadLetterQueueDepthThreshold"},
    ),
    "EventsExhaustedAlarm": ("DlqReplay", "EventsExhausted", {}, "Sum", 0),
    "EventsRejectedAlarm": ("DlqReplay", "EventsRejected", {}, "Sum", 0),
    "IngestErrorsAlarm": ("AWS/Lambda", "Errors", {"FunctionName": _FUNCTION}, "Sum", 0),
    "IngestThrottlesAlarm": ("AWS/Lambda", "Throttles", {"FunctionName": _FUNCTION}, "Sum", 0),
}


def _alarms() -> dict[str, dict[str, Any]]:
    return {
        name: resource
        for name, resource in load_template()["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }


def test_the_template_has_exactly_the_alarms_tested_here() -> None:
    assert set(_alarms()) == set(ALARMS)


@pytest.mark.parametrize("alarm", sorted(ALARMS))
def test_alarm_watches_its_metric_above_its_threshold(alarm: str) -> None:
    namespace, metric, dimensions, statistic, threshold = ALARMS[alarm]
    props = _alarms()[alarm]["Properties"]
    assert (props["Namespace"], props["MetricName"]) == (namespace, metric)
    assert {d["Name"]: d["Value"] for d in props.get("Dimensions", [])} == dimensions
    assert props["Statistic"] == statistic
    assert props["Threshold"] == threshold
    assert props["ComparisonOperator"] == "GreaterThanThreshold"


def test_dead_letter_queue_alarms_watch_the_queue_the_function_drains() -> None:
    template = load_template()
    params = parameter_values(template, DeadLetterQueueArn=DLQ_ARN)
    for alarm in ("DeadLetterQueueAgeAlarm", "DeadLetterQueueDepthAlarm"):
        (dimension,) = template["Resources"][alarm]["Properties"]["Dimensions"]
        assert resolve(template, dimension["Value"], params) == "genesys-eventbridge-dlq"


def test_dead_letter_queue_thresholds_are_parameters_with_an_hour_of_age_by_default() -> None:
    parameters = load_template()["Parameters"]
    assert parameters["DeadLetterQueueAgeThreshold"]["Type"] == "Number"
    assert parameters["DeadLetterQueueAgeThreshold"]["Default"] == 3600
    assert parameters["DeadLetterQueueDepthThreshold"]["Type"] == "Number"
    assert parameters["DeadLetterQueueDepthThreshold"]["Default"] >= 1


def test_service_metric_alarms_sum_five_minutes_of_the_dimensionless_counter() -> None:
    for alarm in ("EventsExhaustedAlarm", "EventsRejectedAlarm"):
        props = _alarms()[alarm]["Properties"]
        assert "Dimensions" not in props, alarm
        assert (props["Period"], props["EvaluationPeriods"]) == (300, 1), alarm


def test_alarms_treat_missing_data_as_nothing_happened() -> None:
    for name, alarm in _alarms().items():
        assert alarm["Properties"]["TreatMissingData"] == "notBreaching", name


def test_alarm_actions_notify_the_topic_only_when_it_is_set() -> None:
    assert load_template()["Parameters"]["AlarmTopicArn"]["Default"] == ""
    assert not condition_holds("HasAlarmTopic")
    assert condition_holds(
        "HasAlarmTopic", AlarmTopicArn="arn:aws:sns:us-east-1:123456789012:dlq-replay-alarms"
    )
    notify = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
    for name, alarm in _alarms().items():
        props = alarm["Properties"]
        assert props["AlarmActions"] == notify, name
        assert props["OKActions"] == notify, name


def test_every_alarm_says_what_it_means_and_what_to_do() -> None:
    template = load_template()
    params = parameter_values(template, DeadLetterQueueArn=DLQ_ARN)
    for name, alarm in _alarms().items():
        text = resolve(template, alarm["Properties"]["AlarmDescription"], params)
        assert "${" not in text, f"{name}: unresolved substitution"
        assert len(text) <= 1024, f"{name}: CloudWatch keeps at most 1024 characters"
        # At least two sentences: what it means, then what to do.
        assert text.endswith(".") and ". " in text, name


def test_every_alarm_is_explained_in_the_operations_guide() -> None:
    operations = (REPO / "docs" / "operations.md").read_text()
    for name in _alarms():
        assert f"`{name}`" in operations, f"{name} is not in docs/operations.md"


# --- template.yaml: the dead-letter queue's policy ---------------------------------------


def _queue_policy() -> dict[str, Any]:
    return load_template()["Resources"]["DeadLetterQueuePolicy"]


def test_queue_policy_exists_only_when_rule_arns_are_given() -> None:
    assert _queue_policy()["Condition"] == "HasDeadLetterQueueRuleArns"
    assert load_template()["Parameters"]["DeadLetterQueueRuleArns"]["Default"] == ""
    assert not condition_holds("HasDeadLetterQueueRuleArns")
    assert condition_holds("HasDeadLetterQueueRuleArns", DeadLetterQueueRuleArns=PARTNER_RULE_ARN)
    assert condition_holds(
        "HasDeadLetterQueueRuleArns",
        DeadLetterQueueRuleArns=f"{DEFAULT_BUS_RULE_ARN},{PARTNER_RULE_ARN}",
    )


def test_queue_policy_lets_only_eventbridge_send_and_only_for_the_listed_rules() -> None:
    (statement,) = _queue_policy()["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == {"Ref": "DeadLetterQueueArn"}
    assert statement["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Ref": "DeadLetterQueueRuleArns"}}
    }


def test_queue_policy_is_attached_to_the_queue_named_by_its_arn() -> None:
    template = load_template()
    params = parameter_values(
        template,
        DeadLetterQueueArn="arn:aws:sqs:eu-west-1:210987654321:genesys-eventbridge-dlq",
        DeadLetterQueueRuleArns=PARTNER_RULE_ARN,
    )
    queues = resolve(template, _queue_policy()["Properties"]["Queues"], params)
    assert queues == ["https://sqs.eu-west-1.amazonaws.com/210987654321/genesys-eventbridge-dlq"]


def test_queue_policy_stays_on_the_queue_when_the_stack_lets_go_of_it() -> None:
    # Removing it would leave EventBridge unable to dead-letter: events lost, not parked.
    assert _queue_policy()["DeletionPolicy"] == "Retain"
    assert _queue_policy()["UpdateReplacePolicy"] == "Retain"


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("", True),
        (DEFAULT_BUS_RULE_ARN, True),
        (PARTNER_RULE_ARN, True),
        ("arn:aws-us-gov:events:us-gov-west-1:123456789012:rule/bus/rule", True),
        (f" {DEFAULT_BUS_RULE_ARN}", False),
        (DLQ_ARN, False),
        ("arn:aws:events:us-east-1:123456789012:event-bus/default", False),
    ],
)
def test_rule_arns_parameter_takes_rules_of_any_bus_and_nothing_else(
    value: str, accepted: bool
) -> None:
    # CloudFormation applies a list parameter's pattern to each item.
    pattern = load_template()["Parameters"]["DeadLetterQueueRuleArns"]["AllowedPattern"]
    assert (re.fullmatch(pattern, value) is not None) is accepted


# --- template.yaml: IAM for rule-aware routing -----------------------------------------

ROUTING_GRANTS = {
    "RuleTargets": (
        "events:ListTargetsByRule",
        "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/*",
    ),
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
WORKER_ACTIONS = {
    # the ledger and its indexes
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:DescribeTable",
    # the dead-letter queue (and the parking queue's send)
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
    "sqs:SendMessage",
    # the dead-letter queue's key, when it has one
    "kms:Decrypt",
    # rule-aware routing
    *(action for action, _ in ROUTING_GRANTS.values()),
}


def _worker_statements() -> list[dict[str, Any]]:
    policy = load_template()["Resources"]["WorkerPolicy"]["Properties"]["PolicyDocument"]
    return _statements(policy)


def _ingest_statements() -> list[dict[str, Any]]:
    role = load_template()["Resources"]["IngestFunctionRole"]["Properties"]
    return [s for policy in role["Policies"] for s in _statements(policy["PolicyDocument"])]


def test_worker_policy_grants_exactly_the_workers_actions() -> None:
    actions = [a for s in _worker_statements() for a in _as_list(s["Action"])]
    assert set(actions) == WORKER_ACTIONS
    assert not [a for a in actions if "*" in a]


@pytest.mark.parametrize(
    "statements",
    [_worker_statements, _ingest_statements],
    ids=["workers", "ingest"],
)
def test_rule_aware_routing_is_granted_on_rules_destinations_connections_and_secrets(
    statements: Any,
) -> None:
    grants = {s.get("Sid"): s for s in statements()}
    for sid, (action, resource) in ROUTING_GRANTS.items():
        assert grants[sid]["Effect"] == "Allow", sid
        assert grants[sid]["Action"] == action, sid
        assert grants[sid]["Resource"] == {"Fn::Sub": resource}, sid


@pytest.mark.parametrize(
    ("sid", "arn"),
    [
        ("RuleTargets", DEFAULT_BUS_RULE_ARN),
        ("RuleTargets", PARTNER_RULE_ARN),
        ("RuleTargets", "arn:aws:events:us-east-1:123456789012:rule/crm-bus/to-crm"),
        (
            "ApiDestinations",
            "arn:aws:events:us-east-1:123456789012:api-destination/crm/6f1c2d3e-4a5b-4c6d",
        ),
        ("Connections", "arn:aws:events:us-east-1:123456789012:connection/crm/9a8b7c6d-5e4f"),
        (
            "ConnectionSecrets",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
            "events!connection/crm/9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d-AbCdEf",
        ),
    ],
)
def test_routing_grants_cover_what_eventbridge_names(sid: str, arn: str) -> None:
    template = load_template()
    grant = {s.get("Sid"): s for s in _worker_statements()}[sid]
    pattern = resolve(template, grant["Resource"], parameter_values(template))
    assert iam_matches(pattern, arn)


def test_connection_secret_grant_reaches_no_other_secret() -> None:
    template = load_template()
    grant = {s.get("Sid"): s for s in _worker_statements()}["ConnectionSecrets"]
    pattern = resolve(template, grant["Resource"], parameter_values(template))
    for other in (
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:genesys/client-secret-AbCdEf",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:events!other/x-AbCdEf",
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:events!connection/crm/x-AbCdEf",
    ):
        assert not iam_matches(pattern, other), other


def test_worker_policy_decrypts_only_with_the_dead_letter_queue_key_when_it_is_set() -> None:
    policy = load_template()["Resources"]["WorkerPolicy"]["Properties"]["PolicyDocument"]
    conditionals = [s["Fn::If"] for s in policy["Statement"] if "Fn::If" in s]
    (conditional,) = [c for c in conditionals if c[1]["Sid"] == "DeadLetterQueueKey"]
    condition, statement, otherwise = conditional
    assert condition == "HasDeadLetterQueueKey"
    assert otherwise == {"Ref": "AWS::NoValue"}
    assert statement["Action"] == "kms:Decrypt"
    assert statement["Resource"] == {"Ref": "DeadLetterQueueKmsKeyArn"}
    assert not condition_holds("HasDeadLetterQueueKey")


SHOW_ACK_EMULATION = (
    "import celeryconfig; print(celeryconfig.broker_transport_options['ack_emulation'])"
)


@pytest.mark.parametrize(("setting", "expected"), [(None, False), ("true", True)])
def test_kombus_ack_emulation_follows_redis_ack_emulation(
    setting: str | None, expected: bool
) -> None:
    # celeryconfig reads the settings once, at import: a fresh interpreter per value.
    env = {k: v for k, v in os.environ.items() if k != "REDIS_ACK_EMULATION"}
    if setting is not None:
        env["REDIS_ACK_EMULATION"] = setting
    printed = subprocess.run(
        [sys.executable, "-c", SHOW_ACK_EMULATION],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    ).stdout.strip()
    assert printed == str(expected)
