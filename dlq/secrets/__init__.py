"""Secrets read from a secret store: Secrets Manager or SSM Parameter Store.

What a reference may say (GENESYS_CLIENT_SECRET_ARN...) is `dlq.secretref`'s, which the
settings check without this package.

| module | holds |
| --- | --- |
| `store` | `SecretStore`: one read of a reference (boto3, through `dlq.aws.aws_client`) |
| `value` | `SecretValue`: a secret given plainly or by reference, re-read when refused |
| `redis_auth` | `RedisCredentials`: the redis-py credential provider over a `SecretValue` |

Every value read joins the process's scrubber (`dlq.redact`). Importing the package loads
nothing: callers import the module they need.
"""
