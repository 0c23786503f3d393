"""What the service counts, for an operator to alarm on, behind one small observer seam.

The use cases report what happens to a `MetricsObserver` (the seam, `dlq.observe`) they
are given (`NO_METRICS` by default) and never import a metrics library; this package
holds the observers that count:

| module | holds |
| --- | --- |
| `labels` | bounded label values: a target's kind and name, known error codes |
| `counters` | cluster-wide outcome counters in Redis, per minute (what `status` reads) |
| `tally` | the status counts kept as ledger items move, recounted from the table now and then |
| `buffer` | counts summed in a long-running process and written in one pipeline a flush |
| `sampling` | the periodic sample of ledger and DLQ depth, taken by one process at a time |
| `prometheus` | the Prometheus implementation and its HTTP endpoint (multiprocess-safe) |
| `emf` | CloudWatch Embedded Metric Format lines (the ingest Lambda, optionally workers) |
| `fleet` | the fleet's CloudWatch metrics (backlog, heartbeat, minute counts), put by beat |
"""
