"""The OAuth client's id and secret: plain settings, or secrets read from a secret store.

GENESYS_CLIENT_ID / GENESYS_CLIENT_SECRET for local runs; GENESYS_CLIENT_ID_ARN /
GENESYS_CLIENT_SECRET_ARN (`dlq.secretref`) in a deployment, read at start and
again when the login refuses the client, so a secret rotated in the store is used
without a restart.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlq.errors import ConfigurationError
from dlq.secrets.store import SecretStore
from dlq.secrets.value import SecretValue
from dlq.settings import Settings


@dataclass(frozen=True)
class GenesysCredentials:
    """The client id and secret the login needs; `refresh` re-reads referenced ones."""

    client_id: SecretValue
    client_secret: SecretValue

    @classmethod
    def from_settings(
        cls, settings: Settings, *, store: SecretStore | None = None
    ) -> GenesysCredentials:
        """Plain values or references, as the settings give them (nothing read yet)."""

        def factory() -> SecretStore:
            return store if store is not None else SecretStore.for_settings(settings)

        return cls(
            client_id=SecretValue.choose(
                plain=("GENESYS_CLIENT_ID", settings.genesys_client_id),
                reference=("GENESYS_CLIENT_ID_ARN", settings.genesys_client_id_arn),
                store=factory,
                secret=False,
            ),
            client_secret=SecretValue.choose(
                plain=(
                    "GENESYS_CLIENT_SECRET",
                    settings.genesys_client_secret.get_secret_value(),
                ),
                reference=("GENESYS_CLIENT_SECRET_ARN", settings.genesys_client_secret_arn),
                store=factory,
            ),
        )

    @property
    def names(self) -> str:
        """Where the id and secret come from, for messages."""
        return f"{self.client_id.setting} / {self.client_secret.setting}"

    def require(self, *, purpose: str) -> None:
        """Fail with one clear line when the id or the secret is not configured."""
        for value, reference in (
            (self.client_id, "GENESYS_CLIENT_ID_ARN"),
            (self.client_secret, "GENESYS_CLIENT_SECRET_ARN"),
        ):
            if not value.configured:
                raise ConfigurationError(
                    f"{value.setting} is not set (nor {reference}): {purpose} needs it"
                )

    def pair(self) -> tuple[str, str]:
        """(client id, client secret) to log in with now (read on first use)."""
        return self.client_id.get(), self.client_secret.get()

    def refresh(self, refused: tuple[str, str]) -> bool:
        """After the login refused `refused`: re-read what is referenced; True when the
        pair to use now differs (a rotation), False when a retry would be refused again."""
        id_changed = self.client_id.refresh(refused[0])
        secret_changed = self.client_secret.refresh(refused[1])
        return id_changed or secret_changed
