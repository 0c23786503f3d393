"""Which server the benchmarks' DynamoDB runs on: dynalite when it can, else moto, said aloud.

moto's server saturates one core well before a worker does, so on moto the drain figures
are moto's. dynalite (node, in memory; `devstack.dynalite`) takes DynamoDB off it, while
SQS and every other service stay on moto: boto3 reads `AWS_ENDPOINT_URL_DYNAMODB` for
DynamoDB and `AWS_ENDPOINT_URL` for the rest. `auto` falls back to moto when node or
npm is missing or dynalite will not install or start, and the message says so; every
benchmark prints the message and records it in its JSON.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from devstack.dynalite import Dynalite, DynaliteUnavailable
from dlq.ledger import create_table

CHOICES = ("auto", "dynalite", "moto")
#: Where npm installs dynalite: a git-ignored folder of the repository.
NODE_PREFIX = Path(__file__).resolve().parent.parent / ".bench-node"
ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL_DYNAMODB"


@dataclass(frozen=True)
class DynamoDbBackend:
    """The server the ledger lives on in a run, and why that one."""

    name: str  # "dynalite" or "moto"
    requested: str
    reason: str
    server: Dynalite | None = None
    version: str | None = None

    @property
    def url(self) -> str | None:
        """The DynamoDB endpoint, or None for moto (then `AWS_ENDPOINT_URL` serves it)."""
        return self.server.url if self.server else None

    @property
    def is_fallback(self) -> bool:
        return self.requested == "auto" and self.name == "moto"

    @property
    def message(self) -> str:
        if self.name == "dynalite":
            return f"DynamoDB backend: dynalite {self.version} (in memory, {self.url}); SQS on moto"
        if self.is_fallback:
            return (
                f"DynamoDB backend: moto (FALLBACK: dynalite unavailable: {self.reason}); "
                "throughput figures will be moto's"
            )
        return f"DynamoDB backend: moto ({self.reason})"

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "requested": self.requested,
            "reason": self.reason,
            "fallback": self.is_fallback,
            "version": self.version,
            "ttl": "not supported (UpdateTimeToLive unknown)" if self.name == "dynalite" else "on",
        }


@contextmanager
def dynamodb_backend(
    requested: str, workdir: Path, *, prefix: Path = NODE_PREFIX, path: str | None = None
) -> Iterator[DynamoDbBackend]:
    """Start the DynamoDB server a run asked for (`auto`, `dynalite`, `moto`); stop it after.

    `dynalite` fails when dynalite cannot run; `auto` falls back to moto with the reason.
    """
    if requested not in CHOICES:
        raise ValueError(f"DynamoDB backend {requested!r}: one of {', '.join(CHOICES)}")
    if requested == "moto":
        yield DynamoDbBackend("moto", requested, "asked for with --dynamodb moto")
        return
    server = Dynalite(workdir / "dynalite", prefix=prefix, path=path)
    failure: str | None = None
    try:
        server.start()
    except (DynaliteUnavailable, RuntimeError) as exc:
        server.stop()
        if requested == "dynalite":
            raise
        failure = str(exc)
    if failure is not None:
        yield DynamoDbBackend("moto", requested, failure)
        return
    try:
        yield DynamoDbBackend(
            "dynalite", requested, "node and npm found", server=server, version=server.version
        )
    finally:
        server.stop()


def create_ledger(client: Any, table: str, backend: DynamoDbBackend) -> None:
    """The product's `create_table` (table, both indexes, TTL); on dynalite, without TTL.

    dynalite answers UpdateTimeToLive with UnknownOperationException, which
    `create_table` sends after the table and its indexes exist; no benchmark lives long
    enough for an item to expire.
    """
    try:
        create_table(client, table)
    except ClientError as exc:
        unknown = exc.response["Error"]["Code"] == "UnknownOperationException"
        if not (unknown and backend.name == "dynalite"):
            raise


def add_option(parser: argparse.ArgumentParser) -> None:
    """The `--dynamodb` option every benchmark takes."""
    parser.add_argument(
        "--dynamodb",
        choices=CHOICES,
        default="auto",
        help="where DynamoDB runs: dynalite (node, installed into .bench-node/ by npm), "
        "moto, or auto: dynalite when node and npm are present, else moto (default: auto)",
    )
