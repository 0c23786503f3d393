"""What the fleet shares in Redis for one OAuth client: key names and the Lua scripts.

Keys are named by a digest of the OAuth client id (never the secret), so several
deployments can share one Redis, and every process of one deployment shares one
token and one budget.
"""

from __future__ import annotations

import hashlib
from importlib.resources import files


def client_key(client_id: str) -> str:
    """A stable, non-reversible name for an OAuth client, usable in Redis keys and logs."""
    return hashlib.sha256(client_id.encode()).hexdigest()[:32]


def lua(name: str) -> str:
    """A Lua script shipped beside this package (`dlq/genesys/lua/<name>.lua`)."""
    return files("dlq.genesys").joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")
