"""template.yaml passes the ingest Lambda references to secrets, never a secret.

The function's environment is readable by anyone who may read its configuration: REDIS_URL
may carry no password (its parameter refuses one), and the password comes from the secret
REDIS_PASSWORD_SECRET_ARN names, which the settings accept as a reference. Read with the
tests' CloudFormation loader (`cfn`), the way the deployment tests read the template.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from cfn import load_template, parameter_values, resolve

from dlq.settings import Settings

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:dlq-replay/redis-AbCdEf"
PARAMETER_ARN = "arn:aws:ssm:us-east-1:123456789012:parameter/dlq-replay/redis"
#: Settings whose value is itself a secret: never in the function's environment.
SECRET_SETTINGS = {"GENESYS_CLIENT_SECRET", "GENESYS_CLIENT_ID", "REDIS_PASSWORD"}


def environment(**overrides: str) -> dict[str, Any]:
    """The function's environment as a stack with these parameter values has it."""
    template = load_template()
    variables = template["Resources"]["IngestFunction"]["Properties"]["Environment"]["Variables"]
    params = parameter_values(template, RedisUrl="rediss://cache.example:6379/0", **overrides)
    return dict(resolve(template, variables, params))


def allowed(parameter: str, value: str) -> bool:
    pattern = load_template()["Parameters"][parameter]["AllowedPattern"]
    return re.fullmatch(pattern, value) is not None


def test_every_variable_of_the_function_is_a_parameter_or_a_resource_never_a_literal() -> None:
    variables = load_template()["Resources"]["IngestFunction"]["Properties"]["Environment"]
    for name, value in variables["Variables"].items():
        assert isinstance(value, dict), f"{name} is a literal value"
    assert not set(variables["Variables"]) & SECRET_SETTINGS


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("redis://cache.example:6379/0", True),
        ("rediss://replayer@cache.example:6379/0", True),
        ("rediss://cache.example:6379/0?ssl_cert_reqs=required", True),
        ("redis://:hunter2@cache.example:6379/0", False),
        ("rediss://replayer:hunter2@cache.example:6379/0", False),
        ("http://cache.example", False),
    ],
)
def test_the_redis_url_parameter_refuses_a_password(url: str, ok: bool) -> None:
    assert allowed("RedisUrl", url) is ok


@pytest.mark.parametrize(
    ("reference", "ok"),
    [
        ("", True),
        (SECRET_ARN, True),
        (f"{SECRET_ARN}#password", True),
        (PARAMETER_ARN, True),
        ("hunter2", False),
        ("ssm:/dlq-replay/redis", False),  # a name: the grant needs the ARN
        ("arn:aws:s3:::bucket/password.txt", False),
    ],
)
def test_the_password_parameter_takes_only_a_secret_or_parameter_arn(
    reference: str, ok: bool
) -> None:
    assert allowed("RedisPasswordSecretArn", reference) is ok


@pytest.mark.parametrize("reference", [f"{SECRET_ARN}#password", PARAMETER_ARN])
def test_the_function_gets_the_reference_and_a_url_without_password(reference: str) -> None:
    env = environment(RedisPasswordSecretArn=reference)

    assert env["REDIS_PASSWORD_SECRET_ARN"] == reference
    assert env["REDIS_URL"] == "rediss://cache.example:6379/0"
    settings = Settings(
        _env_file=None,
        redis_url=env["REDIS_URL"],
        redis_password_secret_arn=env["REDIS_PASSWORD_SECRET_ARN"],
    )
    assert settings.redis_url_password is None


def test_without_a_password_the_function_gets_no_reference() -> None:
    assert "REDIS_PASSWORD_SECRET_ARN" not in environment()
