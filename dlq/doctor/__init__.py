"""Diagnosis: what `setup` and `doctor` check, and what a failure means to an operator.

| module | holds |
| --- | --- |
| `checks` | `diagnose`: every check below, in the order a reader fixes things |
| `check` | `Check`, the value each check returns |
| `broker` | Redis: reachable, never evicting, persistent |
| `ledger` | the DynamoDB table, its indexes and TTL |
| `queue` | the review of an existing EventBridge DLQ (`Finding`s), read-only |
| `genesys` | a Genesys token and each permission the replay needs |
| `rules` | the EventBridge rules the DLQ's messages name |
| `boundary` | the trust boundary, and the peeked DLQ messages it would reject |
| `explain` | Redis failures as one line, cause and fix (AWS ones: `dlq.awserrors`) |
"""

from dlq.awserrors import Explanation, explain_aws
from dlq.doctor.check import Check
from dlq.doctor.checks import diagnose
from dlq.doctor.explain import explain_redis, redact_url
from dlq.doctor.queue import Finding, Severity, review_dlq

__all__ = [
    "Check",
    "Explanation",
    "Finding",
    "Severity",
    "diagnose",
    "explain_aws",
    "explain_redis",
    "redact_url",
    "review_dlq",
]
