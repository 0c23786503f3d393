"""The one scrubber: every secret the process holds, and anything shaped like a credential.

Whatever reads a secret tells this module (`remember`): the settings (the Genesys client
secret, the password in REDIS_URL), the secret-store reader (`dlq.secrets`: Secrets
Manager and SSM values), the Genesys login (its tokens) and the API-destination
connection cache (keys, passwords, OAuth client secrets and tokens). `scrub` then takes
every one of them out of a text, and with them what looks like a credential although
nobody registered it: an endpoint that echoes the request back puts `Authorization:
Bearer ...`, `x-api-key: ...`, `"access_token": "..."` or `password=...` in its answer.

The log formatter (`dlq.logs`) scrubs every line with it, and the targets scrub what they
quote of an answer (`dlq.targets.answer`) before it reaches an error message, the ledger,
the CLI or Genesys. It imports nothing of the project, so anything may use it.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterable

REDACTED = "[redacted]"

#: Values shorter than this are not scrubbed as literals: replacing every "abc" would
#: garble texts without protecting anything (the shape patterns still apply).
MIN_SECRET_CHARS = 4
#: Secrets kept; the oldest is forgotten beyond this (OAuth tokens are renewed for as long
#: as the process runs, and a token long expired is the least sensitive of them).
MAX_KNOWN = 2000

#: The last word of a name whose value is a credential: `x-api-key`, `Authorization`,
#: `access_token`, `clientSecret`, `password`, `Set-Cookie`, `X-Auth-Token`...
_WORDS = (
    r"pass(?:word|wd|phrase)|pwd|secret|token|api[-_.]?key|access[-_.]?key|private[-_.]?key"
    r"|secret[-_.]?key|auth|authori[sz]ation|credentials?|cookie|signature"
    r"|session(?:[-_.]?id)?"
)
_NAME = rf"[A-Za-z0-9_.-]*?(?:{_WORDS})"
#: `"name": "value"`, `'name': 'value'`, `\"name\": \"value\"` (JSON inside a JSON string),
#: `"name": 12345`.
_QUOTED = re.compile(
    rf"(?i)(?P<q>\\?[\"'])(?P<name>{_NAME})(?P=q)(?P<sep>\s*[:=]\s*)"
    r"(?:(?P<vq>\\?[\"'])(?P<value>.*?)(?P=vq)|[^\s,{}\[\]\"'\\]+)"
)
#: `name: value`, `name=value` (headers, forms, query strings, `key=value` logs); a value
#: that starts with an auth scheme keeps its next word too (`Authorization: Basic abc`).
_BARE = re.compile(
    rf"(?i)(?<![A-Za-z0-9_.-])(?P<name>{_NAME})(?![A-Za-z0-9_.-])(?P<sep>\s*[:=]\s*)"
    r"(?P<value>(?:(?:bearer|basic|digest|token|negotiate|apikey)\s+)?"
    r"[^\s&,;\"'<>{}\[\]()]+)"
)
#: `Bearer <token>`, `Basic <base64>` wherever they appear.
_SCHEMES = re.compile(r"(?i)\b(bearer|basic|digest)\s+[A-Za-z0-9._~+/=-]{8,}")
#: A JSON web token, whatever it is called.
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
#: The password of a URL (`redis://:pw@host`, `https://user:pw@host`).
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^:/@\s]*):[^@/\s]+@")
#: A word (lower case) that each shape above needs: an ASCII text without any of them
#: holds no shape, and is passed over with a few substring tests instead of the five
#: patterns. Most texts are such: a log line's ids and ARNs, which cost `_BARE` the most
#: (at every position, every lazy extension of a name is tried against every word).
_SHAPE_WORDS = (
    *("pass", "pwd", "secret", "token", "key", "auth", "credential", "cookie"),
    *("signature", "session", "bearer", "basic", "digest", "eyj", "://"),
)


class KnownSecrets:
    """The secret values of a process; `scrub` takes them out of texts. Thread-safe."""

    def __init__(self, *, limit: int = MAX_KNOWN) -> None:
        self._values: OrderedDict[str, None] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()
        self._pattern: re.Pattern[str] | None = None

    def __repr__(self) -> str:
        return f"KnownSecrets(<{len(self._values)} values>)"

    def __len__(self) -> int:
        return len(self._values)

    def remember(self, *values: str | None) -> None:
        """Scrub these values from now on (empty and very short ones are ignored)."""
        fresh = [v for v in values if v and len(v) >= MIN_SECRET_CHARS]
        if not fresh or all(v in self._values for v in fresh):
            return
        with self._lock:
            for value in fresh:
                self._values[value] = None
                self._values.move_to_end(value)
            while len(self._values) > self._limit:
                self._values.popitem(last=False)
            self._pattern = None

    def scrub(self, text: str, *, also: Iterable[str] = ()) -> str:
        """`text` without any known secret (nor `also`), nor anything shaped like one."""
        extra = [v for v in also if v and len(v) >= MIN_SECRET_CHARS]
        for value in sorted(extra, key=len, reverse=True):
            text = text.replace(value, REDACTED)
        pattern = self._literals()
        if pattern is not None:
            text = pattern.sub(REDACTED, text)
        return scrub_shapes(text)

    def _literals(self) -> re.Pattern[str] | None:
        pattern = self._pattern
        if pattern is not None or not self._values:
            return pattern
        with self._lock:
            # Longest first, so a secret containing another is taken out whole.
            ordered = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))
            return self._pattern


def scrub_shapes(text: str) -> str:
    """`text` without what looks like a credential (no registry needed)."""
    if not _may_hold_a_shape(text):
        return text
    return _scrub_every_shape(text)


def _may_hold_a_shape(text: str) -> bool:
    """False only when no shape can match: ASCII (whose `lower` is exactly the patterns'
    case-insensitivity; other texts always get the patterns) and none of the words."""
    if not text.isascii():
        return True
    lowered = text.lower()
    return any(word in lowered for word in _SHAPE_WORDS)


def _scrub_every_shape(text: str) -> str:
    text = _QUOTED.sub(_keep_name, text)
    text = _BARE.sub(_keep_name, text)
    text = _SCHEMES.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = _JWT.sub(REDACTED, text)
    return _USERINFO.sub(lambda m: f"{m.group(1)}:{REDACTED}@", text)


def _keep_name(match: re.Match[str]) -> str:
    groups = match.groupdict()
    quote = groups.get("q") or ""
    value_quote = groups.get("vq") or ""
    return f"{quote}{groups['name']}{quote}{groups['sep']}{value_quote}{REDACTED}{value_quote}"


#: The process's secrets: one registry, because a log line may quote any of them.
KNOWN = KnownSecrets()


def remember(*values: str | None) -> None:
    """Register secret values with the process's scrubber."""
    KNOWN.remember(*values)


def scrub(text: str, *, also: Iterable[str] = ()) -> str:
    """`text` without the process's secrets (nor `also`), nor anything shaped like one."""
    return KNOWN.scrub(text, also=also)
