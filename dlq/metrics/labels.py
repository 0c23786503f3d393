"""Bounded label values. A label is never an event id, a message, a URL or a payload.

Anyone allowed `sqs:SendMessage` on the DLQ can write its `TARGET_ARN` and
`ERROR_CODE` attributes, so neither goes into a label as it came: a target becomes its
kind and name (`sqs:crm-events`), at most `MAX_TARGETS` of them per process, and an
EventBridge error code is one of the documented ones or `other`.
"""

from __future__ import annotations

import re
import threading

from dlq.codes import DLQ_ERROR_CODES, NO_CODE, shown_code
from dlq.targets.arn import Arn

#: Distinct target labels one process keeps; later ones are counted as `other`.
MAX_TARGETS = 200
OTHER = "other"
NONE = NO_CODE

_UNSAFE = re.compile(r"[^A-Za-z0-9._:/-]")
_seen: set[str] = set()
_seen_lock = threading.Lock()


def target_label(target_arn: str | None) -> str:
    """`<service>:<name>` of a target ARN (`lambda:crm-sync`, `sqs:crm-events`,
    `events:api-destination/crm`); `other` beyond `MAX_TARGETS` or for a non-ARN."""
    if not target_arn:
        return NONE
    arn = Arn.parse(target_arn)
    if arn is None:
        return OTHER
    name = arn.name
    if arn.resource.startswith("api-destination/"):
        # api-destination/<name>/<uuid>: the uuid changes on re-creation, the name does not.
        name = "api-destination/" + arn.resource.split("/")[1]
    label = _UNSAFE.sub("_", f"{arn.service}:{name}")[:80]
    with _seen_lock:
        if label in _seen:
            return label
        if len(_seen) >= MAX_TARGETS:
            return OTHER
        _seen.add(label)
    return label


def dlq_error_label(code: str | None) -> str:
    """An EventBridge ERROR_CODE as a label: a documented code, `other`, or `none`."""
    if not code:
        return NONE
    return code if code in DLQ_ERROR_CODES else OTHER


def failure_label(code: str | None) -> str:
    """One of the replay's own short failure codes (`NotARuleTarget`, `HTTP503`...), as
    the ledger keeps it and `redrive --error-code` takes it (`dlq.codes`); `none`."""
    return shown_code(code)
