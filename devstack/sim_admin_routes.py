"""The simulator's `/__admin/...` routes: seed, script, configure, count and reset.

Loopback callers only (`devstack.sim_http` checks); `devstack.sim_admin.SimAdmin` is
their typed client. Pure functions of the `SimState`: no HTTP here.
"""

from __future__ import annotations

import json
from typing import Any

from devstack.sim_conversations import generate_conversation
from devstack.sim_events import named_participants
from devstack.sim_state import Fault, SimState


def admin_route(state: SimState, method: str, path: str, payload: Any) -> tuple[int, Any]:
    """(status, body) of an admin call: stats, reset, config, tokens, seeds, events, faults."""
    parts = path.strip("/").split("/")[1:]
    if method == "GET" and parts == ["stats"]:
        return 200, state.stats()
    if method == "POST" and parts == ["reset"]:
        state.reset()
        return 200, {}
    if method == "POST" and parts == ["config"]:
        with state.lock:
            state.config.update(payload)
            if "seed" in payload:
                state.rng.seed(payload["seed"])
            return 200, vars(state.config)
    if method == "POST" and parts == ["tokens", "revoke"]:
        return 200, {"revoked": state.revoke_tokens()}
    if method == "POST" and parts == ["conversations"]:
        bodies = [generate_conversation(str(i)) for i in payload.get("ids", [])]
        bodies += list(payload.get("conversations", []))
        state.seed(bodies, age_seconds=float(payload.get("age_seconds", 0.0)))
        return 200, {"conversations": bodies}
    if method == "POST" and parts == ["events"]:
        # Events as an operator has them: their conversations get the participants named.
        return 200, state.learn(named_participants(payload.get("events", [])))
    if method == "POST" and parts == ["faults"]:
        for conversation_id, faults in payload.get("conversations", {}).items():
            state.add_faults(conversation_id, [Fault.parse(f) for f in faults])
        for conversation_id in payload.get("deleted", []):
            state.delete(conversation_id)
        return 200, {}
    if method == "GET" and len(parts) == 2 and parts[0] == "conversations":
        with state.lock:
            body = state.conversations.get(parts[1])
            history = list(state.history.get(parts[1], []))
            snapshot = json.loads(json.dumps(body))
            reads = state.reads[parts[1]]
        if body is None:
            return 404, {"error": f"no conversation {parts[1]}"}
        return 200, {"conversation": snapshot, "history": history, "reads": reads}
    return 404, {"error": f"no admin route {method} {path}"}
