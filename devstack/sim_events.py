"""The participants Genesys events name, read from the documents an operator has at hand.

An EventBridge event names its conversation and participant in `detail.eventBody`
(`conversationId`, `participantId`); the simulator gives its conversations those
participants (`SimState.learn`) so that replaying one's own events finds them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def named_participants(document: Any) -> list[tuple[str, str]]:
    """(conversation id, participant id) of every event in `document`, in order, once each.

    `document` is an EventBridge event, an event body, a list of either, an SQS
    ReceiveMessage answer (`Messages[].Body`), an SQS-triggered Lambda's event
    (`Records[].body`) or a DLQ file of any of these: bodies held as JSON text are read too.
    """
    found: dict[tuple[str, str], None] = {}

    def visit(node: Any) -> None:
        if isinstance(node, str):
            text = node.strip()
            if text.startswith(("{", "[")):
                try:
                    visit(json.loads(text))
                except ValueError:
                    return
        elif isinstance(node, list):
            for child in node:
                visit(child)
        elif isinstance(node, dict):
            conversation, participant = node.get("conversationId"), node.get("participantId")
            if isinstance(conversation, str) and isinstance(participant, str):
                found[(conversation, participant)] = None
            for child in node.values():
                visit(child)

    visit(document)
    return list(found)


def read_events_file(path: Path) -> Any:
    """A file of events: one JSON document, or one JSON document a line."""
    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except ValueError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
