"""The Genesys Cloud side: client, transport, token, budget, models, errors, directory.

| module | holds |
| --- | --- |
| `client` | `GenesysClient` (lookup, attribute PATCH) and `build_genesys_client` |
| `transport` | the HTTP seam: `RequestsTransport`, and `MockTransport` for unit tests |
| `auth` | the client-credentials token and the fleet's shared `TokenCache` |
| `limiter` | the fleet's shared call budget (`RateLimiter`, Lua in `lua/`) |
| `directory` | conversation lookups cached for the fleet (`ConversationDirectory`) |
| `models`, `errors`, `headers`, `checks`, `responses`, `fleet` | the pieces they share |
"""

from dlq.genesys.client import GenesysClient, build_genesys_client
from dlq.genesys.directory import ConversationDirectory, ConversationMissing, KnownConversation
from dlq.genesys.limiter import Priority, RateLimiter
from dlq.genesys.models import Conversation, Participant

__all__ = [
    "Conversation",
    "ConversationDirectory",
    "ConversationMissing",
    "GenesysClient",
    "KnownConversation",
    "Participant",
    "Priority",
    "RateLimiter",
    "build_genesys_client",
]
