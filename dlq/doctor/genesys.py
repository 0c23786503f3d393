"""`doctor`'s checks of Genesys Cloud: a token, then each permission the replay needs.

One cheap call per permission, with a random conversation id: a 404 proves the
permission as well as a 200 would.
"""

from __future__ import annotations

import uuid

from dlq.doctor.check import Check
from dlq.errors import DlqReplayError
from dlq.genesys.auth import fetch_token
from dlq.genesys.transport import Request, RequestsTransport, Response, Transport
from dlq.settings import Settings

CONVERSATION_PERMISSION = "conversation:communication:view"
ANALYTICS_PERMISSION = "analytics:conversationDetail:view"


def check_genesys(settings: Settings, *, transport: Transport | None = None) -> list[Check]:
    """A token, then each permission the configuration needs, one cheap call each."""
    names = (
        "genesys token",
        f"genesys {CONVERSATION_PERMISSION}",
        f"genesys {ANALYTICS_PERMISSION}",
    )
    if not settings.has_genesys_client and not settings.replay_verify_conversation:
        why = "skipped: REPLAY_VERIFY_CONVERSATION is false and no GENESYS_CLIENT_ID is set"
        return [Check(name, None, why) for name in names]
    transport = transport or RequestsTransport()
    try:
        token = fetch_token(settings, transport).access_token.get_secret_value()
    except DlqReplayError as exc:
        skipped = "not checked: no token"
        return [
            Check(names[0], False, *_cause_fix(str(exc))),
            *(Check(name, None, skipped) for name in names[1:]),
        ]
    api = settings.genesys_api_url
    checks = [Check(names[0], True, f"the login host {settings.genesys_login_url} issued a token")]
    probe = str(uuid.uuid4())
    answer = _probe(transport, token, f"{api}/api/v2/conversations/{probe}")
    checks.append(_conversation_permission(names[1], answer))
    if not settings.replay_verify_conversation:
        # Only batch verification reads analytics.
        checks.append(Check(names[2], None, "not needed: REPLAY_VERIFY_CONVERSATION is false"))
        return checks
    answer = _probe(transport, token, f"{api}/api/v2/analytics/conversations/details?id={probe}")
    checks.append(_analytics_permission(names[2], answer))
    return checks


def _cause_fix(text: str) -> tuple[str, str]:
    cause, _, fix = text.rpartition(": ")
    return (cause, fix) if cause else (text, "")


def _probe(transport: Transport, token: str, url: str) -> Response | str:
    """The answer to one GET, or why there was none."""
    try:
        what = "GET /api/" + url.split("/api/", 1)[-1].split("?", 1)[0]
        request = Request(
            "GET", url, what, timeout=(3.05, 10.0), headers={"Authorization": f"Bearer {token}"}
        )
        return transport.send(request)
    except DlqReplayError as exc:
        return str(exc)


def _grant_fix(permission: str) -> str:
    return (
        f"add {permission} to a role of the OAuth client GENESYS_CLIENT_ID (Admin > OAuth > "
        "the client > Roles, and the role's divisions), then run doctor again"
    )


def _other_status(name: str, answer: Response) -> Check:
    correlation = answer.headers.get("inin-correlation-id")
    said = f"Genesys answered {answer.status_code} (correlation id {correlation})"
    if answer.status_code == 429:
        return Check(name, None, f"not checked: {said}, over the rate limit", "run doctor again")
    if answer.status_code == 401:
        return Check(
            name,
            False,
            f"{said}: the fresh token was refused",
            "check that the OAuth client is active and in this org and region",
        )
    return Check(name, False, said, "try again; if it persists, check the Genesys status page")


def _conversation_permission(name: str, answer: Response | str) -> Check:
    if isinstance(answer, str):
        return Check(name, False, *_cause_fix(answer))
    if answer.status_code in (200, 404):
        return Check(
            name, True, f"granted (a random conversation id answered {answer.status_code})"
        )
    if answer.status_code == 403:
        return Check(
            name,
            False,
            "missing: the OAuth client may not read conversations (403), so lookups and "
            "tracking fail",
            _grant_fix(CONVERSATION_PERMISSION),
        )
    return _other_status(name, answer)


def _analytics_permission(name: str, answer: Response | str) -> Check:
    if isinstance(answer, str):
        return Check(name, False, *_cause_fix(answer))
    if answer.status_code == 200:
        return Check(name, True, "granted (the conversation details query answered 200)")
    if answer.status_code == 404:
        return Check(
            name,
            None,
            "not checked: this API host does not serve /api/v2/analytics/conversations/details",
        )
    if answer.status_code == 403:
        return Check(
            name,
            False,
            "missing: the OAuth client may not query conversation details (403), so "
            "conversations cannot be verified in batches: each costs a lookup of its own",
            _grant_fix(ANALYTICS_PERMISSION),
        )
    return _other_status(name, answer)
