"""`doctor`'s checks of Genesys Cloud: a token, then each permission the replay needs.

One cheap call per permission, with a random conversation id: a 404 proves the
permission as well as a 200 would.
"""

from __future__ import annotations

import uuid

from dlq.doctor.check import Check
from dlq.errors import ConfigurationError, DlqReplayError, RetryLater
from dlq.genesys.auth import fetch_token
from dlq.genesys.credentials import GenesysCredentials
from dlq.genesys.errors import GenesysConnectionError, GenesysCredentialsError
from dlq.genesys.transport import Request, RequestsTransport, Response, Transport
from dlq.settings import Settings

CONVERSATION_PERMISSION = "conversation:communication:view"
ANALYTICS_PERMISSION = "analytics:conversationDetail:view"

#: What to do about a failure on Genesys's side (a 5xx, a timeout, the rate limit).
RUN_AGAIN = (
    "run doctor again in a few minutes; if it keeps failing, look at the Genesys Cloud status page"
)


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
    credentials = GenesysCredentials.from_settings(settings)
    skipped = [Check(name, None, "not checked: no token") for name in names[1:]]
    missing = _missing(credentials)
    if missing is not None:
        return [Check(names[0], False, *missing), *skipped]
    try:
        token = fetch_token(settings, transport, credentials).access_token.get_secret_value()
    except DlqReplayError as exc:
        return [Check(names[0], False, *_failure(exc, credentials.names)), *skipped]
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


def _missing(credentials: GenesysCredentials) -> tuple[str, str] | None:
    """(what is missing, what to set) when the client id or secret is not configured."""
    for value, reference, what in (
        (credentials.client_id, "GENESYS_CLIENT_ID_ARN", "id"),
        (credentials.client_secret, "GENESYS_CLIENT_SECRET_ARN", "secret"),
    ):
        if not value.configured:
            return (
                f"{value.setting} is not set (nor {reference}): no OAuth client to log in with",
                f"set {value.setting} to the OAuth client's {what} (or {reference} to the "
                "secret that holds it), for doctor and the replay workers",
            )
    return None


def _failure(exc: DlqReplayError, credentials: str) -> tuple[str, str]:
    """(what happened, what to do) for a failed login or probe.

    The exceptions' own texts end with advice for the workers that logged them (retry
    later...); doctor's reader gets an action instead.
    """
    cause = str(exc).rpartition(": ")[0] or str(exc)
    if isinstance(exc, GenesysCredentialsError):
        return cause, (
            f"set {credentials} to an active OAuth client of this org that uses the "
            "client-credentials grant, and GENESYS_REGION to the client's region, for doctor "
            "and the replay workers"
        )
    if isinstance(exc, GenesysConnectionError):
        return cause, (
            "set GENESYS_REGION to the org's region (or fix GENESYS_API_BASE_URL / "
            "GENESYS_LOGIN_BASE_URL) for doctor and the replay workers, and let their hosts "
            "reach Genesys (proxy, firewall)"
        )
    if isinstance(exc, RetryLater):
        return cause, RUN_AGAIN
    if isinstance(exc, ConfigurationError):  # a referenced secret that could not be read
        return str(exc), (
            "fix the setting the message names, then run doctor again (a reference needs "
            "secretsmanager:GetSecretValue or ssm:GetParameter on it)"
        )
    return str(exc), RUN_AGAIN


def _probe(transport: Transport, token: str, url: str) -> Response | DlqReplayError:
    """The answer to one GET, or why there was none."""
    try:
        what = "GET /api/" + url.split("/api/", 1)[-1].split("?", 1)[0]
        request = Request(
            "GET", url, what, timeout=(3.05, 10.0), headers={"Authorization": f"Bearer {token}"}
        )
        return transport.send(request)
    except DlqReplayError as exc:
        return exc


def _grant_fix(permission: str) -> str:
    return (
        f"add {permission} to a role of the OAuth client GENESYS_CLIENT_ID (Admin > OAuth > "
        "the client > Roles, and the role's divisions), then run doctor again"
    )


def _other_status(name: str, answer: Response) -> Check:
    correlation = answer.headers.get("inin-correlation-id")
    said = f"Genesys answered {answer.status_code} (correlation id {correlation})"
    if answer.status_code == 429:
        return Check(
            name,
            None,
            f"not checked: {said}, over the rate limit",
            "run doctor again in a minute, when the workers leave it room",
        )
    if answer.status_code == 401:
        return Check(
            name,
            False,
            f"{said}: the fresh token was refused",
            "activate the OAuth client (Admin > OAuth), or set GENESYS_CLIENT_ID to an active "
            "client of this org and GENESYS_REGION to its region, for doctor and the replay "
            "workers",
        )
    return Check(name, False, said, RUN_AGAIN)


def _conversation_permission(name: str, answer: Response | DlqReplayError) -> Check:
    if isinstance(answer, DlqReplayError):
        return Check(name, False, *_failure(answer, "GENESYS_CLIENT_ID"))
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


def _analytics_permission(name: str, answer: Response | DlqReplayError) -> Check:
    if isinstance(answer, DlqReplayError):
        return Check(name, False, *_failure(answer, "GENESYS_CLIENT_ID"))
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
