"""Holding a target during an outage: the fleet's breaker per target, and operators' pauses.

| module | holds |
| --- | --- |
| `breaker` | the breaker's decisions, pure: closed, open, half-open (one probe) |
| `fleet` | `FleetBreakers`: every target's breaker in Redis, changed in WATCH transactions |
| `pauses` | `Pauses`: the ledger's pauses (`dlq.ledger.pauses`) with their Redis copy |
| `report` | the targets held now, for `status` and `status --watch` |

The gate every attempt passes is `dlq.replay.holds`.
"""
