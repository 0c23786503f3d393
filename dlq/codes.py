"""The two vocabularies of failure codes, and the one spelling of the replay's own.

An *error code* is the replay's own short code for why an attempt failed (`HTTP503`,
`ConversationMissing`, `NotARuleTarget`, an AWS error code...). The ledger keeps it as
`last_error_code`, `status` counts `failed` and `exhausted` outcomes by it, the metrics
label it `error_code`, tracking writes it onto the conversation, and `redrive
--error-code` filters on it: all through `failure_code`, so each shows the same string.

A *DLQ error code* is EventBridge's `ERROR_CODE` attribute (`ERROR_FROM_TARGET`,
`THROTTLING`...): why EventBridge gave up, before the replay tried anything. It is kept
as the ledger's `error_code` (under `dlq` on an item), labelled `dlq_error_code`, and
filtered with `redrive --dlq-error-code`.
"""

from __future__ import annotations

import re

#: How long an error code is at most (longer ones are cut: a code is a name, not a text).
MAX_LENGTH = 40
#: What `status` and the metrics show for an outcome without a code.
NO_CODE = "none"
_UNSAFE = re.compile(r"[^A-Za-z0-9._:/-]")

#: The codes an item waits under, without spending attempts, while Genesys cannot verify
#: its conversation (`dlq.replay.waiting`); `status` counts them as "waiting for Genesys".
GENESYS_UNAVAILABLE = "GenesysUnavailable"
GENESYS_FORBIDDEN = "GenesysForbidden"
GENESYS_LOGIN = "GenesysLogin"
GENESYS_WAIT_CODES = frozenset({GENESYS_UNAVAILABLE, GENESYS_FORBIDDEN, GENESYS_LOGIN})
#: The codes an item waits under, without spending attempts, while its target is held
#: (`dlq.replay.holds`): its breaker is open, or an operator paused it.
TARGET_BREAKER_OPEN = "TargetBreakerOpen"
TARGET_PAUSED = "TargetPaused"
TARGET_HOLD_CODES = frozenset({TARGET_BREAKER_OPEN, TARGET_PAUSED})

#: The EventBridge DLQ's documented ERROR_CODE values ("a sample": others occur).
DLQ_ERROR_CODES = frozenset(
    {
        "CONNECTION_FAILURE",
        "CROSS_ACCOUNT_INGESTION_FAILED",
        "CROSS_REGION_INGESTION_FAILED",
        "ERROR_FROM_TARGET",
        "EVENTS_IN_BATCH_REQUEST_REJECTED",
        "FAILED_TO_ASSUME_ROLE",
        "INTERNAL_ERROR",
        "INVALID_JSON",
        "INVALID_PARAMETER",
        "NO_PERMISSIONS",
        "NO_RESOURCE",
        "RESOURCE_ALREADY_EXISTS",
        "RESOURCE_LIMIT_EXCEEDED",
        "RESOURCE_MODIFICATION_COLLISION",
        "SDK_CLIENT_ERROR",
        "THIRD_ACCOUNT_HOP_DETECTED",
        "THIRD_REGION_HOP_DETECTED",
        "THROTTLING",
        "TIMEOUT",
        "TRANSIENT_ASSUME_ROLE",
        "UNKNOWN",
    }
)


def failure_code(code: str | None) -> str | None:
    """The replay error code as every part spells it: safe characters only, at most
    `MAX_LENGTH` long; None for no code. Idempotent."""
    if not code:
        return None
    return _UNSAFE.sub("_", code)[:MAX_LENGTH]


def shown_code(code: str | None) -> str:
    """An error code as `status` shows it: `failure_code`, or `none` without one."""
    return failure_code(code) or NO_CODE
