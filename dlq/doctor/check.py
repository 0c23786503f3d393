"""The value every `doctor` check returns: one dependency, passed, failed or not checked."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    """One dependency checked: passed (True), failed (False) or not checked (None).

    `fix` says what to do when it failed; on a passing check it is a warning to heed.
    """

    name: str
    ok: bool | None
    detail: str
    fix: str = ""

    @property
    def status(self) -> str:
        """`pass`, `warn` (passed, with advice), `fail` or `skip`."""
        if self.ok is None:
            return "skip"
        if not self.ok:
            return "fail"
        return "warn" if self.fix else "pass"
