"""What the fleet shares in Redis: one naming of its keys, and the Lua scripts it runs.

Every process of a deployment, on every host, meets the others through keys named here.
Keys that carry a credential's name (an OAuth client id, an API destination's ARN) use
its `digest`, never the name itself, so several deployments can share one Redis and no
key reveals a client id.

| module | holds |
| --- | --- |
| `keys` | `fleet_key` (the one key prefix) and `digest` |
| `scripts` | `lua`, the loader of the scripts shipped beside a package (`lua/*.lua`) |
"""

from dlq.fleet.keys import digest, fleet_key
from dlq.fleet.scripts import lua

__all__ = ["digest", "fleet_key", "lua"]
