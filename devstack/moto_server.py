"""moto in server mode: the AWS endpoint of the demo, tests and benchmarks (boto3 over HTTP)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Self

import requests

from devstack.process import ChildServer, free_port


def aws_environment(endpoint_url: str, region: str = "us-east-1") -> dict[str, str]:
    """What boto3 needs to talk to moto: fake credentials, a region, the endpoint."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
    }


class MotoServer(ChildServer):
    """`moto.server` as a separate process on 127.0.0.1, so it can be stopped to fake an outage."""

    def __init__(self, workdir: Path, *, port: int | None = None) -> None:
        port = port or free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "devstack.moto_atomic", "-H", "127.0.0.1", "-p", str(port)]
        super().__init__(argv, port, log=workdir / "moto.log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        super().start()
        # No Docker on these machines: moto's Lambda then runs functions without a
        # container (an invoke echoes its payload), which is all a redelivery needs.
        answer = requests.post(
            f"{self.url}/moto-api/config", json={"lambda": {"use_docker": False}}, timeout=10
        )
        answer.raise_for_status()
        return self
