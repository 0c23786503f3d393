"""CloudWatch Embedded Metric Format: metrics as JSON log lines that CloudWatch Logs
turns into `DlqReplay` metrics (no PutMetricData call, no extra permission).

The document, per the EMF specification ("Specification: Embedded metric format",
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html):
a root object whose `_aws` member holds `Timestamp` (epoch milliseconds) and
`CloudWatchMetrics`, an array of metric directives, each with a `Namespace`, `Dimensions`
(an array of dimension sets, each an array of dimension names) and `Metrics` (each with
a `Name` and optionally a `Unit`); every metric's value is a root member of that name.
The dimension set here is empty (`[[]]`): `template.yaml`'s alarms watch the metrics
without dimensions, and a metric published only with dimensions never reaches them.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable

from dlq.clock import SYSTEM_CLOCK, Clock
from dlq.observe import Outcome, QuietObserver

NAMESPACE = "DlqReplay"
#: The ingest core's outcomes as metric names (`template.yaml` alarms on EventsRejected).
INGEST_METRICS = {
    "accepted": "EventsIngested",
    "requeued": "EventsIngested",
    "duplicate": "EventsDuplicate",
    "rejected": "EventsRejected",
}
#: Replay outcomes as metric names (`template.yaml` alarms on EventsExhausted).
REPLAY_METRICS = {
    "replayed": "EventsReplayed",
    "failed": "EventsFailed",
    "exhausted": "EventsExhausted",
}


def emf_line(counts: dict[str, int], *, timestamp_ms: int, namespace: str = NAMESPACE) -> str:
    """One EMF document (a single JSON line) carrying `counts` as Count metrics."""
    names = sorted(counts)
    document: dict[str, object] = {
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [[]],
                    "Metrics": [{"Name": name, "Unit": "Count"} for name in names],
                }
            ],
        },
    }
    for name in names:
        document[name] = counts[name]
    return json.dumps(document, separators=(",", ":"))


class EmfCounts(QuietObserver):
    """A `MetricsObserver` that adds up outcomes until `flush` prints them as one EMF line.

    The Lambda flushes once per invocation. `immediate` flushes after every count (a
    worker's exhausted outcome, printed where a log route takes EMF to CloudWatch).
    Only what counted something is printed; nothing at all when nothing counted.
    """

    def __init__(
        self,
        write: Callable[[str], None],
        *,
        replay_outcomes: frozenset[str] = frozenset(REPLAY_METRICS),
        immediate: bool = False,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._write = write
        self._replay = replay_outcomes
        self._immediate = immediate
        self._clock = clock
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def ingested(self, outcome: str, *, target_arn: str | None, dlq_error_code: str | None) -> None:
        name = INGEST_METRICS.get(outcome)
        if name is not None:
            self._add(name)

    def finished(self, outcome: Outcome) -> None:
        status = outcome.status
        if status in self._replay:
            self._add(REPLAY_METRICS[status])

    def flush(self) -> None:
        """Print what was counted since the last flush, as one line (none if nothing)."""
        with self._lock:
            counts, self._counts = dict(self._counts), Counter()
        counts = {name: n for name, n in counts.items() if n}
        if counts:
            self._write(emf_line(counts, timestamp_ms=int(self._clock.now() * 1000)))

    def _add(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1
        if self._immediate:
            self.flush()
