"""The names of the Redis keys the fleet shares."""

from __future__ import annotations

import hashlib

#: Every key the product writes starts so (docs/operations.md lists them with their bound).
PREFIX = "dlq"


def fleet_key(*parts: str) -> str:
    """`dlq:<part>:<part>...`: the one way a shared key is named."""
    return ":".join((PREFIX, *parts))


def digest(name: str) -> str:
    """A stable, non-reversible name for `name` (an OAuth client id, an ARN), for keys and logs."""
    return hashlib.sha256(name.encode()).hexdigest()[:32]
