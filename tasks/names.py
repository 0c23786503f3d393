"""The names the broker knows: queues and tasks (no imports, so anyone may use them)."""

REPLAY_QUEUE = "replay"
TRACK_QUEUE = "track"
#: Batch verification runs: consumed by the replay workers (`-Q replay,verify`), on a queue
#: of its own so that a run is not stuck behind the replays it serves.
VERIFY_QUEUE = "verify"

REPLAY_TASK = "dlq.replay"
TRACK_TASK = "dlq.track"
RECONCILE_TASK = "dlq.reconcile"
VERIFY_TASK = "dlq.verify"
