"""The replay use case: one (event id, target) from the ledger to its target, or a reason.

| module | holds |
| --- | --- |
| `replayer` | `Replayer`: the lock, and the choice between one attempt and an ordered pass |
| `attempt` | `Attempts`: one claimed item verified, sent once, its outcome recorded |
| `ordered` | `OrderedPass`: a conversation's due items for one target, oldest first |
| `line` | what the pass decides from: the line, the item that holds it back |
| `results` | `PassResults`: what passes settled, in Redis, for the other items' tasks |
| `outcomes` | `ReplayOutcome`, `Wait`, `AttemptFailed`, `ReplayOptions` |
| `ports` | what it needs from the world: `TargetSender`, `Parking`, `News` |

The claim rule itself (which items may be taken) belongs to the ledger
(`dlq.ledger.claimable`).
"""

from dlq.replay.attempt import CLOCK_SLACK_SECONDS
from dlq.replay.outcomes import AttemptFailed, ReplayOptions, ReplayOutcome, Wait
from dlq.replay.ports import News, Parking, TargetSender
from dlq.replay.replayer import Replayer
from dlq.replay.results import PassResults

__all__ = [
    "CLOCK_SLACK_SECONDS",
    "AttemptFailed",
    "News",
    "Parking",
    "PassResults",
    "ReplayOptions",
    "ReplayOutcome",
    "Replayer",
    "TargetSender",
    "Wait",
]
