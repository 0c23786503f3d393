"""One read of a secret reference: Secrets Manager `GetSecretValue` or SSM `GetParameter`."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from dlq.awserrors import AwsErrorKind, aws_error
from dlq.errors import ConfigurationError, RetryLater
from dlq.redact import remember
from dlq.secretref import SecretReference

if TYPE_CHECKING:
    from dlq.settings import Settings

#: (service, region or None for AWS_REGION) -> a boto3 client.
ClientFor = Callable[[str, str | None], Any]

#: What the process's role needs, by store.
GRANTS = {
    "secretsmanager": "secretsmanager:GetSecretValue (and kms:Decrypt on the secret's key)",
    "ssm": "ssm:GetParameter (and kms:Decrypt on the parameter's key)",
}
_PASSING = frozenset(
    {AwsErrorKind.THROTTLED, AwsErrorKind.UNAVAILABLE, AwsErrorKind.BUSY, AwsErrorKind.EXPIRED}
)


class SecretStore:
    """Reads secret references; each value read joins the process's scrubber.

    A client is made for each read: reads are rare (at start, after a refusal), and a
    client made after a worker forks never shares its parent's connections.
    """

    def __init__(self, client_for: ClientFor) -> None:
        self._client_for = client_for

    def __repr__(self) -> str:
        return "SecretStore()"

    @classmethod
    def for_settings(cls, settings: Settings) -> SecretStore:
        """The store of the settings' AWS account (AWS_ENDPOINT_URL: an emulator's)."""
        from dlq.aws import aws_client

        return cls(lambda service, region: aws_client(service, settings, region=region))

    def read(self, reference: SecretReference, *, setting: str, secret: bool = True) -> str:
        """The value `reference` names now. `secret`: scrub it from every text from now on.

        ConfigurationError when it cannot be read until an operator acts (no such secret,
        no permission, not a string, no such JSON field); RetryLater when it may pass.
        """
        where = f"{setting} ({reference})"
        client = self._client_for(reference.store, reference.region)
        try:
            if reference.store == "ssm":
                answer = client.get_parameter(Name=reference.name, WithDecryption=True)
                text = answer["Parameter"].get("Value")
            else:
                answer = client.get_secret_value(SecretId=reference.name)
                text = answer.get("SecretString")
        except ClientError as exc:
            error = aws_error(exc)
            said = f"cannot read {where}: {error.code}"
            if error.kind in _PASSING:
                raise RetryLater(f"{said}; retrying later") from None
            raise ConfigurationError(
                f"{said}: check that it exists and grant {GRANTS[reference.store]} on it to "
                "this process's role"
            ) from None
        except BotoCoreError as exc:
            raise RetryLater(f"cannot read {where}: {type(exc).__name__}; retrying later") from None
        if not isinstance(text, str):
            raise ConfigurationError(
                f"{where} holds no string (a binary secret?): store the value as a string"
            )
        value = _field(text, reference, where)
        if secret:
            remember(text if reference.field is None else value)
        return value


def _field(text: str, reference: SecretReference, where: str) -> str:
    """The value itself, or the string at its JSON field."""
    if reference.field is None:
        value = text.strip()
    else:
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        found = document.get(reference.field) if isinstance(document, dict) else None
        if not isinstance(found, str):
            raise ConfigurationError(
                f"{where}: the value is not a JSON object with a string field "
                f"{reference.field!r}; fix the secret or the reference's #field"
            )
        value = found.strip()
    if not value:
        raise ConfigurationError(f"{where} is empty: store the value in it")
    return value
