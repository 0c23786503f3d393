"""The deployment files agree with the code: compose, Dockerfile, .env.example, template.yaml.

Docker is not available on the build machines, so nothing here builds an image or starts a
container; what can be checked without it is: every command names a real entry point, every
variable is a setting, every copied file exists, and the SAM template lints clean and
matches the ledger the code creates.
"""

from __future__ import annotations

import fnmatch
import importlib
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
from dlq.settings import Settings
from tasks import names

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

CLI_SUBCOMMANDS = {"demo", "setup", "poll", "status", "inspect", "redrive", "seed", "genesys-sim"}
CELERY_SUBCOMMANDS = {"worker", "beat", "flower"}
PRODUCTION_SERVICES = {"redis", "worker", "tracker", "beat", "poller", "flower"}
LOCAL_SERVICES = {"moto", "genesys-sim", "setup"}
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
ENV_LINE = re.compile(r"^#? ?([A-Z][A-Z0-9_]*)=(.*)$")


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


def load_template() -> dict[str, Any]:
    text = (REPO / "template.yaml").read_text()
    return yaml.load(text, Loader=CloudFormationLoader)  # noqa: S506 (safe loader subclass)


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
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert any(volume.endswith(":/data") for volume in redis["volumes"])


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

    assert queues("worker") == {names.REPLAY_QUEUE}
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
        unknown = set(environment) - allowed
        assert not unknown, f"{name} passes variables nothing reads: {sorted(unknown)}"


def test_env_example_names_only_known_variables() -> None:
    unknown = set(env_example()) - allowed_variables()
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
    assert values["FLOWER_BASIC_AUTH"].partition(":")[2].startswith("change-me")
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
