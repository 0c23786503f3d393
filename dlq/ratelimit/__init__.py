"""The fleet-wide rate limiter: one pace per name, shared by every process through Redis.

The Genesys call budget is one user of it (`dlq.genesys.client`), API destinations'
invocation rates another (`dlq.targets`). Each limiter has a name (whose digest names
its keys) and a label for its log lines; the scripts are in `lua/`.

| module | holds |
| --- | --- |
| `limiter` | `RateLimiter` (GCRA pace, LOW turns, the HIGH reserve, the 429 hold), `Priority` |
| `usage` | `read_budget`: how much of a limiter's pace the fleet used lately, read-only |
"""

from dlq.ratelimit.limiter import Priority, RateLimiter
from dlq.ratelimit.usage import BudgetUse, read_budget

__all__ = ["BudgetUse", "Priority", "RateLimiter", "read_budget"]
