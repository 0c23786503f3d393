"""What is checked before any request leaves: path ids and participant attributes."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from urllib.parse import quote

from dlq.genesys.errors import InvalidRequest

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def path_id(value: object, what: str) -> str:
    """A UUID fit for a URL path; anything else is refused before any I/O."""
    # A strict UUID cannot contain '/', '..', '%', '?' or '#'; quoting is a second belt.
    if not isinstance(value, str) or not _UUID.fullmatch(value):
        raise InvalidRequest(f"{what} {value!r:.80} is not a UUID; refusing to call Genesys")
    return quote(value, safe="")


def clean_attributes(attributes: Mapping[str, object]) -> dict[str, str]:
    """Participant attributes as Genesys accepts them: string keys and string values.

    Numbers and booleans become strings (booleans as `true`/`false`); anything else
    (None, lists, mappings) is refused, because a silent `str()` would store Python
    reprs on the conversation.
    """
    if not attributes:
        raise InvalidRequest("no attributes to update: pass at least one key")
    cleaned: dict[str, str] = {}
    for key, value in attributes.items():
        if not isinstance(key, str) or not key:
            raise InvalidRequest(f"attribute name {key!r:.60} is not a non-empty string")
        if isinstance(value, str):
            cleaned[key] = value
        elif isinstance(value, bool):
            cleaned[key] = "true" if value else "false"
        elif isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
            cleaned[key] = str(value)
        else:
            raise InvalidRequest(
                f"attribute {key!r} is a {type(value).__name__}: Genesys attribute values "
                "are strings; convert it (JSON-encode a structure) before updating"
            )
    return cleaned
