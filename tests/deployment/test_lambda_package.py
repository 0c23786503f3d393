"""The ingest Lambda's package, built as `sam build` builds it: `make build-IngestFunction`.

Built once for the module into a temp dir, then run by a Python that sees nothing else,
as Lambda's runtime sees it (`-S`: no site-packages; `-P` and an empty working directory:
not this checkout; `-B`: the package stays as built). The build fetches wheels for
Lambda's platform through pip, so it needs the package index (or pip's cache, which makes
a second build quick).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from cfn import condition_holds, load_template
from helpers import ORG, REPO, genesys_event, lambda_record, new_ledger

import lambda_package
from devstack.moto_server import MotoServer
from devstack.redis_server import RedisServer
from dlq.settings import load_settings

#: What the workers, Flower and operators use and the ingest never imports.
LEFT_OUT = (
    "flower", "tornado", "rich", "pygments", "markdown_it", "prometheus_client",
    "click_repl", "click_didyoumean", "click_plugins", "prompt_toolkit", "wcwidth",
    "cli", "devstack", "bench", "flowerconfig.py",
)  # fmt: skip


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("lambda") / "package"
    built = subprocess.run(
        ["make", "--no-print-directory", "build-IngestFunction",
         f"PYTHON={sys.executable}", f"ARTIFACTS_DIR={target}"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    print(lambda_package.summary(target))  # shown with -s or -rP: the size is not asserted
    return target


def run_alone(package: Path, code: str, env: dict[str, str], cwd: Path) -> str:
    """Run `code` with only the standard library and `package` importable."""
    result = subprocess.run(
        [sys.executable, "-S", "-P", "-B", "-c", code],
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(package), **env},
        cwd=cwd, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_handler_imports_from_the_package_alone(package: Path, tmp_path: Path) -> None:
    code = (
        "import sys, ingest.lambda_handler, kombu.transport.redis\n"
        "assert all(not p.endswith('site-packages') for p in sys.path), sys.path\n"
        "print(ingest.lambda_handler.__file__)\n"
    )
    assert run_alone(package, code, {}, tmp_path).startswith(str(package))


def test_the_package_ingests_a_record_into_the_ledger_and_the_broker(
    package: Path, tmp_path: Path, redis_server: RedisServer, moto_server: MotoServer
) -> None:
    # Every import of a first invocation (the front door, the Celery producer, kombu's
    # Redis transport, botocore's DynamoDB model), against the real Redis and moto.
    table = f"ledger-{uuid.uuid4().hex[:10]}"
    ledger = new_ledger(load_settings(_env_file=None), table)
    event = genesys_event()
    target = "arn:aws:sqs:us-east-1:111122223333:crm-events"
    record = lambda_record(json.dumps(event), target)
    env = {
        key: value
        for key, value in os.environ.items()
        if key.startswith("AWS_") or key in ("REDIS_URL",)
    }
    env.update(LEDGER_TABLE=table, GENESYS_ORG_ID=ORG, REDIS_URL=redis_server.url)
    code = (
        "import json, sys\n"
        "from ingest.lambda_handler import handler\n"
        f"print(json.dumps(handler({{'Records': [{record!r}]}})))\n"
    )
    out = run_alone(package, code, env, tmp_path)
    assert out.strip().splitlines()[-1] == '{"batchItemFailures": []}'
    [item] = list(ledger.scan())
    assert item.event_id == event["id"]


@pytest.mark.parametrize("name", LEFT_OUT)
def test_the_package_leaves_out_what_the_ingest_does_not_import(package: Path, name: str) -> None:
    assert not (package / name).exists()
    assert not list(package.glob(f"{name.replace('_', '[-_]')}-*.dist-info"))


def test_the_package_holds_wheels_for_the_functions_platform(package: Path) -> None:
    function = load_template()["Resources"]["IngestFunction"]["Properties"]
    assert function["Runtime"] == f"python{lambda_package.DEFAULT_PYTHON}"
    assert function["Architectures"] == [lambda_package.DEFAULT_ARCHITECTURE]
    makefile = (REPO / "Makefile").read_text()
    assert f"LAMBDA_PYTHON ?= {lambda_package.DEFAULT_PYTHON}" in makefile
    assert f"LAMBDA_ARCHITECTURE ?= {lambda_package.DEFAULT_ARCHITECTURE}" in makefile
    # The one compiled dependency: built for CPython 3.11 on manylinux x86_64, whatever
    # the machine that built the package.
    [wheel] = package.glob("pydantic_core-*.dist-info/WHEEL")
    tags = re.findall(r"^Tag: (.+)$", wheel.read_text(), flags=re.M)
    assert tags and all(t.startswith("cp311-cp311-manylinux") for t in tags)
    assert all(t.endswith("_x86_64") for t in tags)
    assert list((package / "pydantic_core").glob("*.cpython-311-x86_64-linux-gnu.so"))


def test_the_package_holds_no_bytecode_or_console_scripts(package: Path) -> None:
    assert not list(package.rglob("__pycache__"))
    assert not (package / "bin").exists()


# --- template.yaml: how the function reaches what it calls from private subnets --------


def test_a_dynamodb_gateway_endpoint_is_created_only_given_the_vpc_and_its_route_tables() -> None:
    assert not condition_holds("CreateDynamoDbEndpoint")
    assert not condition_holds("CreateDynamoDbEndpoint", VpcId="vpc-0123456789abcdef0")
    assert condition_holds(
        "CreateDynamoDbEndpoint",
        VpcId="vpc-0123456789abcdef0",
        DynamoDbEndpointRouteTableIds="rtb-0123456789abcdef0,rtb-0fedcba9876543210",
    )
    endpoint = load_template()["Resources"]["DynamoDbEndpoint"]
    assert endpoint["Condition"] == "CreateDynamoDbEndpoint"
    assert endpoint["Properties"]["VpcEndpointType"] == "Gateway"
    assert endpoint["Properties"]["ServiceName"] == {
        "Fn::Sub": "com.amazonaws.${AWS::Region}.dynamodb"
    }


def test_the_subnets_say_how_the_function_reaches_dynamodb_and_why_not_sqs() -> None:
    text = " ".join(load_template()["Parameters"]["SubnetIds"]["Description"].split())
    assert "DynamoDB gateway endpoint" in text and "NAT gateway" in text
    assert "never calls SQS itself" in text
