"""The names the broker knows: queues and tasks (no imports, so anyone may use them)."""

REPLAY_QUEUE = "replay"
TRACK_QUEUE = "track"

REPLAY_TASK = "dlq.replay"
TRACK_TASK = "dlq.track"
RECONCILE_TASK = "dlq.reconcile"
