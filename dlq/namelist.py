"""A setting that lists names: a JSON list, or names separated by commas."""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import BeforeValidator
from pydantic_settings import NoDecode


def split_names(value: object) -> list[str]:
    """The names `value` lists: a JSON list, or a text of names separated by commas
    (spaces around each trimmed, empty ones dropped)."""
    if isinstance(value, str):
        text = value.strip()
        if not text.startswith("["):
            return [part.strip() for part in text.split(",") if part.strip()]
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"not a JSON list: {exc}") from None
    if isinstance(value, list | tuple | set | frozenset):
        return [str(part).strip() for part in value if str(part).strip()]
    raise ValueError("must be a JSON list or names separated by commas")


#: pydantic-settings would read the variable as JSON only; `NoDecode` hands it over as is.
NameList = Annotated[list[str], NoDecode, BeforeValidator(split_names)]
