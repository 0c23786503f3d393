"""A secret the process uses: given plainly, or read from a store and re-read when refused."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from dlq.secretref import SecretReference
from dlq.secrets.store import SecretStore

log = logging.getLogger(__name__)

#: After a refusal made a re-read, further refusals of the same value re-read no sooner
#: than this: a value that is wrong in the store too costs one read per interval, not one
#: per refused call.
REREAD_QUIET_SECONDS = 10.0


class SecretValue:
    """One secret: a plain value (local runs), or a reference read on first use (at start)
    and again when the service it opens refuses it, so a rotation needs no restart.

    Thread-safe: a refusal seen by many threads at once makes one read.
    """

    def __init__(
        self,
        setting: str,
        *,
        plain: str = "",
        reference: SecretReference | None = None,
        store: Callable[[], SecretStore] | None = None,
        secret: bool = True,
        clock: Callable[[], float] = time.monotonic,
        quiet_seconds: float = REREAD_QUIET_SECONDS,
    ) -> None:
        """`setting` names where it comes from (in messages); `store` makes the store on
        the first read; `secret` False for a value that is no secret (a client id)."""
        if reference is not None and store is None:
            raise ValueError("a referenced secret needs a store")
        self.setting = setting
        self.reference = reference
        self._plain = plain
        self._store_factory = store
        self._store: SecretStore | None = None
        self._secret = secret
        self._clock = clock
        self._quiet = quiet_seconds
        self._value: str | None = None
        self._read_at: float | None = None
        self._reread_at: float | None = None
        self._lock = threading.Lock()

    @classmethod
    def choose(
        cls,
        *,
        plain: tuple[str, str],
        reference: tuple[str, str],
        store: Callable[[], SecretStore],
        secret: bool = True,
    ) -> SecretValue:
        """The value a reference names when one is set, else the plain one: each given as
        (setting, text)."""
        (plain_setting, plain_value), (reference_setting, written) = plain, reference
        if written:
            parsed = SecretReference.parse(written)
            return cls(reference_setting, reference=parsed, store=store, secret=secret)
        return cls(plain_setting, plain=plain_value, secret=secret)

    def __repr__(self) -> str:
        source = f"reference={str(self.reference)!r}" if self.reference else "plain"
        return f"SecretValue({self.setting}, {source})"

    @property
    def configured(self) -> bool:
        """Whether there is a value to use (plainly, or a reference to read it from)."""
        return self.reference is not None or bool(self._plain)

    def get(self, *, max_age: float | None = None) -> str:
        """The value; read from the store on first use, or when older than `max_age`
        seconds (for users that cannot tell a refusal: see `RedisCredentials`)."""
        if self.reference is None:
            return self._plain
        with self._lock:
            stale = self._read_at is None or (
                max_age is not None and self._clock() - self._read_at > max_age
            )
            if self._value is None or stale:
                self._read()
            assert self._value is not None
            return self._value

    def refresh(self, refused: str) -> bool:
        """After `refused` was refused: re-read it; True when the value to use now differs.

        False for a plain value, or when the store still holds the refused value (the
        refusal is not a rotation: the caller reports it as it would have).
        """
        if self.reference is None:
            return False
        with self._lock:
            if self._value is not None and self._value != refused:
                return True  # another thread has read the new value already
            now = self._clock()
            if self._reread_at is not None and now - self._reread_at < self._quiet:
                return False
            self._reread_at = now
            self._read()
            changed = self._value != refused
        if changed:
            log.warning(f"{self.setting}: refused; read its new value from the secret store")
        return changed

    def _read(self) -> None:
        assert self.reference is not None and self._store_factory is not None
        if self._store is None:
            self._store = self._store_factory()
        self._value = self._store.read(self.reference, setting=self.setting, secret=self._secret)
        self._read_at = self._clock()
