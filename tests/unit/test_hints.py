"""Every hint that tells an operator to change a setting says which process reads it.

A setting acts only in the processes that read it: `REPLAY_REDELIVER_MISSING_CONVERSATION`
on the replay workers, `GENESYS_ORG_ID` at the ingest. A hint that says "set X and
redrive" without "on the workers" sends the operator to change the wrong environment, and
the redrive fails the same way. This reads every message string in the code (docstrings
aside) that names a setting and gives advice, and wants a process named in it.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SETTING = re.compile(r"\b(?:REPLAY|GENESYS)_[A-Z_*]+")
#: Advice: an imperative before a setting, not a statement such as "X is not set".
ADVICE = re.compile(
    r"\b(?:set|route|check|fix|name a|through|with)\b[^.;]*\b(?:REPLAY|GENESYS)_"
    r"|\((?:REPLAY|GENESYS)_[A-Z_]+\)",
    re.IGNORECASE,
)
PROCESS = re.compile(r"worker|poller|Lambda|ingest|setup|doctor|inspect")
#: Strings that name a setting in a statement of fact, not in advice.
STATEMENTS = {
    "skipped: REPLAY_VERIFY_CONVERSATION is false and no GENESYS_CLIENT_ID is set",
    "not needed: REPLAY_VERIFY_CONVERSATION is false",
}


def messages(path: Path) -> Iterator[tuple[int, str]]:
    """The string literals of a module (f-strings whole), docstrings left out."""
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            skip.add(id(body[0].value))
        if isinstance(node, ast.JoinedStr):
            skip.update(id(part) for part in node.values)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value
        elif isinstance(node, ast.JoinedStr):
            text = "".join(
                str(p.value) if isinstance(p, ast.Constant) else "{}" for p in node.values
            )
            yield node.lineno, text


def sources() -> list[Path]:
    return sorted(
        path
        for package in ("dlq", "cli", "ingest", "tasks")
        for path in (REPO / package).rglob("*.py")
        if path.name != "settings.py"  # field descriptions, not hints
    )


def hints() -> list[tuple[str, str]]:
    return [
        (f"{path.relative_to(REPO)}:{line}", text)
        for path in sources()
        for line, text in messages(path)
        if SETTING.search(text) and ADVICE.search(text) and text not in STATEMENTS
    ]


def test_the_scan_finds_the_hints_it_is_meant_to_check() -> None:
    found = " ".join(text for _, text in hints())
    assert "REPLAY_REDELIVER_MISSING_CONVERSATION=true" in found
    assert "REPLAY_TARGET_OVERRIDES" in found
    assert "REPLAY_HTTP_TARGETS" in found
    assert "GENESYS_CLIENT_SECRET" in found


@pytest.mark.parametrize(("where", "text"), hints(), ids=[where for where, _ in hints()])
def test_a_hint_naming_a_setting_names_the_process_that_reads_it(where: str, text: str) -> None:
    assert PROCESS.search(text), f"{where}: say which process reads the setting: {text!r}"


def test_the_missing_conversation_hint_says_to_restart_the_workers_with_it() -> None:
    [text] = [t for _, t in hints() if "REPLAY_REDELIVER_MISSING_CONVERSATION=true" in t]
    assert "on the replay workers" in text and "restart them" in text
    assert text.index("restart them") < text.index("redrive")
