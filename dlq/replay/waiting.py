"""Which failures of a conversation's verification are about Genesys, not the conversation.

A verification that fails because Genesys is unwell (5xx, a timeout, throttling, a token
or login failure) or will not show the conversation to this OAuth client (403) says
nothing about the event or its target: the item waits, without spending an attempt of
its target's budget, until Genesys answers or its age budget runs out. Only Genesys's
own word that the conversation does not exist (404, `ConversationMissing`) fails it.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlq.codes import GENESYS_FORBIDDEN, GENESYS_LOGIN, GENESYS_UNAVAILABLE
from dlq.errors import BudgetWait
from dlq.genesys.errors import GenesysCredentialsError, GenesysForbidden, GenesysRetryable


@dataclass(frozen=True, slots=True)
class GenesysWait:
    """Why an item waits for Genesys, under which code, and the server's wait if it gave one."""

    code: str
    reason: str
    retry_after: float | None = None


def genesys_wait(exc: BaseException) -> GenesysWait | None:
    """The wait a verification failure calls for, or None when it is about the conversation
    (or not a Genesys failure at all)."""
    if isinstance(exc, BudgetWait):
        return None  # our own budget's turn: postponed without a note, as before
    if isinstance(exc, GenesysForbidden):
        return GenesysWait(
            GENESYS_FORBIDDEN,
            "Genesys refused to show the conversation to this OAuth client (403): grant its "
            "role the division and conversation:communication:view (or "
            "analytics:conversationDetail:view); the item waits for that, not for its target",
        )
    if isinstance(exc, GenesysRetryable):
        return GenesysWait(
            GENESYS_UNAVAILABLE,
            "Genesys did not answer the conversation lookup",
            exc.retry_after,
        )
    if isinstance(exc, GenesysCredentialsError):
        return GenesysWait(
            GENESYS_LOGIN,
            "the Genesys login refused the OAuth client: check GENESYS_CLIENT_ID and "
            "GENESYS_CLIENT_SECRET (or the secrets their _ARN variables name) on the replay "
            "workers",
        )
    return None
