"""The Genesys Cloud side: client, transport, token, models, errors, conversation directory.

Importing the package loads nothing: callers import the module they need, so code that
only wants a model or an error does not pull in the HTTP client. The fleet's call budget
is a user of `dlq.ratelimit`, not part of this package.

| module | holds |
| --- | --- |
| `client` | `GenesysClient` (lookup, attribute PATCH) and `build_genesys_client` |
| `transport` | the HTTP seam: `RequestsTransport`, and `MockTransport` for unit tests |
| `auth` | the client-credentials token and the fleet's shared `TokenCache` |
| `directory` | conversation lookups cached for the fleet (`ConversationDirectory`) |
| `pending` | the conversations waiting for a batch verification |
| `models`, `errors`, `headers`, `checks`, `responses` | the pieces they share |
"""
