"""The deployment files agree with the code: compose, Dockerfile, .env.example, template.yaml.

Docker is not available on the build machines, so nothing here builds an image or starts a
container; what can be checked without it is: every command names a real entry point, every
variable is a setting, every copied file exists, and the SAM template lints clean and
matches the ledger the code creates. Its IAM, queue policy and encryption are in
`test_least_privilege.py`.
"""

from __future__ import annotations

import fnmatch
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
from cfn import condition_holds, load_template, parameter_values, resolve
from helpers import REPO
from pydantic import AliasChoices

from dlq.ledger import table_definition
from dlq.settings import PLACEHOLDER_PREFIX, Settings
from tasks import names

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
#: Variables only docker-compose.yml reads (interpolated into it from .env).
COMPOSE_VARIABLES = {"REDIS_PASSWORD"}
#: Variables of the images we do not build: redis-cli's password for the healthcheck.
IMAGE_VARIABLES = {"redis": {"REDISCLI_AUTH"}}
ENV_LINE = re.compile(r"^#? ?([A-Z][A-Z0-9_]*)=(.*)$")
#: `${NAME}`, `${NAME:?message}`, `${NAME:-default}`... in docker-compose.yml.
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")


# --- loading ------------------------------------------------------------------------


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
    # redis-cli exits 0 on NOAUTH: healthy must mean PONG (test_compose.py runs it).
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


def test_the_redelivery_worker_is_one_thread_pool_process_that_scales_by_replicas() -> None:
    """One thread-pool process per container, one container per core with `docker compose
    up --scale worker=N` (docs/performance.md, "Worker layout"): nothing pins the service to
    one container (a name, a host name, a published port), and each replica's Celery node
    is named after its own host (`%h`)."""
    compose = (REPO / "docker-compose.yml").read_text()
    worker = load_compose()["services"]["worker"]
    command = worker["command"]
    assert command[command.index("--pool") + 1] == "threads"
    assert int(command[command.index("--concurrency") + 1]) >= 16
    assert command[command.index("--hostname") + 1].endswith("@%h")
    assert not {"container_name", "hostname", "ports"} & set(worker)
    assert "--scale worker=" in compose


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
    # Which queue: test_dead_letter_queue_alarms_watch_the_queue_the_function_drains.
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BatchSize"] == {"Ref": "BatchSize"}
    assert props["MaximumBatchingWindowInSeconds"] == {"Ref": "MaximumBatchingWindowInSeconds"}


def test_redis_url_parameter_is_not_echoed() -> None:
    assert load_template()["Parameters"]["RedisUrl"]["NoEcho"] is True


def test_sam_builds_the_function_with_the_makefile_target_it_names() -> None:
    function = load_template()["Resources"]["IngestFunction"]
    assert function["Metadata"]["BuildMethod"] == "makefile"
    makefile = (REPO / "Makefile").read_text()
    assert "\nbuild-IngestFunction:" in makefile
    assert 'lambda_package.py "$(ARTIFACTS_DIR)"' in makefile
    # What the package holds: tests/deployment/test_lambda_package.py builds it.


# --- template.yaml: alarms -----------------------------------------------------------

DLQ_ARN = "arn:aws:sqs:us-east-1:123456789012:genesys-eventbridge-dlq"

_QUEUE_NAME = {
    "Fn::If": [
        "CreateDeadLetterQueue",
        {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]},
        {"Fn::Select": [5, {"Fn::Split": [":", {"Ref": "DeadLetterQueueArn"}]}]},
    ]
}
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


@pytest.mark.parametrize(
    ("overrides", "queue_arn", "queue_name"),
    [
        (
            {},
            {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
            {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]},
        ),
        ({"DeadLetterQueueArn": DLQ_ARN}, DLQ_ARN, "genesys-eventbridge-dlq"),
    ],
    ids=["created", "existing"],
)
def test_dead_letter_queue_alarms_watch_the_queue_the_function_drains(
    overrides: dict[str, str], queue_arn: Any, queue_name: Any
) -> None:
    template = load_template()
    params = parameter_values(template, **overrides)
    (event,) = template["Resources"]["IngestFunction"]["Properties"]["Events"].values()
    assert resolve(template, event["Properties"]["Queue"], params) == queue_arn
    for alarm in ("DeadLetterQueueAgeAlarm", "DeadLetterQueueDepthAlarm"):
        (dimension,) = template["Resources"][alarm]["Properties"]["Dimensions"]
        assert resolve(template, dimension["Value"], params) == queue_name


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
