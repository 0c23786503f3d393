"""What a secret reference says: which store, which secret, which JSON field of it.

A reference (GENESYS_CLIENT_ID_ARN, GENESYS_CLIENT_SECRET_ARN, REDIS_PASSWORD_SECRET_ARN)
is one of:

| written | read with, where |
| --- | --- |
| `arn:aws:secretsmanager:<region>:<account>:secret:<name>` | `GetSecretValue`, the ARN's region |
| `secretsmanager:<name or ARN>` | `GetSecretValue`, AWS_REGION |
| `arn:aws:ssm:<region>:<account>:parameter/<path>` | `GetParameter`, the ARN's region |
| `ssm:<name>` (`ssm:/dlq-replay/redis-password`) | `GetParameter`, AWS_REGION |

(Secrets Manager `GetSecretValue`, the string value; SSM `GetParameter` with
`WithDecryption=True`, so a SecureString is read decrypted.)

followed, optionally, by `#<field>`: the value is then a JSON object and the field's
string is the secret (`arn:...:secret:genesys-AbCdEf#client_secret`), so one secret can
hold an OAuth client's id and secret, or an ElastiCache user's name and password. Neither
store allows `#` in a name, so the suffix is unambiguous.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Store = Literal["secretsmanager", "ssm"]

_ARN = re.compile(
    r"^arn:aws[a-z-]*:(?P<service>secretsmanager|ssm):(?P<region>[a-z0-9-]+):[0-9]{12}:"
    r"(?P<resource>secret:.+|parameter/.+)$"
)
_FIELD = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")

USAGE = (
    "a Secrets Manager secret ARN, an SSM parameter ARN, `secretsmanager:NAME` or "
    "`ssm:NAME`, optionally followed by `#FIELD` for a field of a JSON value"
)


@dataclass(frozen=True, slots=True)
class SecretReference:
    """Where a secret is kept: the store, the id the store knows it by, a JSON field.

    `name` is what the store's read takes (`SecretId` or the parameter `Name`: an ARN or a
    name); `region` is the ARN's region (None: the settings' AWS_REGION).
    """

    store: Store
    name: str
    region: str | None = None
    field: str | None = None

    def __str__(self) -> str:
        return f"{self.name}#{self.field}" if self.field else self.name

    @classmethod
    def parse(cls, text: str) -> SecretReference:
        """The reference `text` writes; ValueError saying what a reference looks like."""
        written, _, field = text.strip().partition("#")
        if field and not _FIELD.match(field):
            raise ValueError(f"{field!r} is not a JSON field name (letters, digits, _ . -)")
        arn = _ARN.match(written)
        if arn is not None:
            store: Store = "ssm" if arn["service"] == "ssm" else "secretsmanager"
            return cls(store, written, arn["region"], field or None)
        scheme, _, name = written.partition(":")
        if scheme in ("secretsmanager", "ssm") and name:
            nested = _ARN.match(name)
            if nested is not None and nested["service"] != scheme:
                raise ValueError(f"{text!r} names a {nested['service']} ARN after {scheme}:")
            region = nested["region"] if nested is not None else None
            kind: Store = "ssm" if scheme == "ssm" else "secretsmanager"
            return cls(kind, name, region, field or None)
        raise ValueError(f"{text!r} is not a secret reference: use {USAGE}")
