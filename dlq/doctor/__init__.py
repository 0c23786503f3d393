"""Diagnosis: what `setup` and `doctor` check, and what a failure means to an operator.

| module | holds |
| --- | --- |
| `explain` | AWS and Redis failures as one line, cause and fix; which ones are permanent |
| `queue` | the review of an existing EventBridge DLQ (`Finding`s), read-only |
| `checks` | `doctor`'s checks of every dependency (`Check`s) |
"""

from dlq.doctor.checks import Check, diagnose
from dlq.doctor.explain import Explanation, explain_aws, explain_redis, redact_url
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
