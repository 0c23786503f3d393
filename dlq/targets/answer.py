"""What an error message may say of a target's answer: never the answer as it came.

An endpoint that refuses a call often echoes the request (a rejected API key or bearer
token included), so its body is no text to log, store in the ledger or show. What is kept:
its size, a digest (to match it with the endpoint's own logs), the error code it names,
and a short excerpt cut only after every known secret and anything shaped like a
credential is taken out (`dlq.redact`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from dlq.redact import scrub

#: Characters of the scrubbed answer an error message quotes.
EXCERPT_CHARS = 160
#: Bytes of the answer scrubbed to cut the excerpt from (a secret across this boundary
#: could only reach the excerpt if the text before it shrank by this much).
SCRUB_WINDOW_BYTES = 16 * 1024
#: Hex digits of the answer's sha256 kept.
DIGEST_CHARS = 16
#: The fields an error answer names its code in (`{"code": ...}`, OAuth's `error`,
#: Lambda's `errorType`...).
CODE_FIELDS = ("code", "errorCode", "error_code", "error", "errorType", "type")
_CODE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Answer:
    """What is kept of an answer body: size, digest, its error code, a scrubbed excerpt."""

    size: int
    digest: str
    code: str | None = None
    excerpt: str | None = None

    def __str__(self) -> str:
        parts = [f"{self.size} bytes", f"sha256 {self.digest}"]
        if self.code:
            parts.insert(0, f"code {self.code}")
        if self.excerpt:
            parts.append(f"says {self.excerpt!r}")
        return "; ".join(parts) if self.size else "empty answer"


def summarise(body: bytes, *, secrets: Iterable[str] = ()) -> Answer:
    """What an error message may say of `body`; `secrets` are scrubbed besides the
    process's own (the credentials of the call, say)."""
    extra = tuple(secrets)
    digest = hashlib.sha256(body).hexdigest()[:DIGEST_CHARS]
    window = body[:SCRUB_WINDOW_BYTES]
    try:
        text = window.decode("utf-8")
    except UnicodeDecodeError:
        if len(body) <= SCRUB_WINDOW_BYTES:
            return Answer(len(body), digest)  # not text: nothing to quote
        text = window.decode("utf-8", errors="ignore")  # cut inside a character
    clean = _SPACE.sub(" ", scrub(text, also=extra)).strip()
    excerpt = clean[:EXCERPT_CHARS] + ("..." if len(clean) > EXCERPT_CHARS else "")
    return Answer(len(body), digest, _code(text, extra), excerpt or None)


def _code(text: str, secrets: tuple[str, ...]) -> str | None:
    """The error code a JSON answer names, if it is a short word and no secret."""
    try:
        document = json.loads(text)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    for name in CODE_FIELDS:
        value = document.get(name)
        if isinstance(value, str | int) and not isinstance(value, bool):
            code = str(value)
            if _CODE.match(code) and scrub(code, also=secrets) == code:
                return code
    return None
