"""The AWS error vocabulary: what an error code means, whether it passes, and what to do.

One table for every caller. `dlq.targets.errors` turns a code's kind into the exception
a replay worker acts on; the poller asks `is_permanent` whether to stop or to pause and
try again; the CLI and `doctor` print `explain_aws`'s cause and fix. It imports botocore
and nothing else of the project.

Permanent: repeating the same call cannot succeed until an operator acts (credentials,
IAM, a KMS key, a name, the request itself). Retryable: it may pass by itself.

| kind | permanent | codes (sets in `codes`) |
| --- | --- | --- |
| `THROTTLED` | no | `THROTTLED`, and any code containing "Throttl" |
| `UNAVAILABLE` | no | `UNAVAILABLE`, and any unknown code answered with a 5xx |
| `BUSY` | no | `BUSY`: the resource is in a passing state (updating, scaling) |
| `EXPIRED` | no | `EXPIRED`: session credentials or the request's signature aged out |
| `BAD_CREDENTIALS` | yes | `BAD_CREDENTIALS`: the keys are wrong |
| `ACCESS_DENIED` | yes | `ACCESS_DENIED`, `AccessDenied*`, any unknown code answered with a 403 |
| `KMS` | yes | `KMS`, and SQS's `KMS.*`: a key is disabled or refuses this role |
| `MISSING` | yes | `MISSING`: the queue, table, function... does not exist |
| `INVALID` | yes | `INVALID` (and botocore's `ParamValidationError`): the request itself |
| `UNKNOWN` | no | anything else; `dlq.targets.errors` judges it by its HTTP status |

| module | holds |
| --- | --- |
| `codes` | the code sets, `AwsErrorKind`, `kind_of`, `aws_error` |
| `explain` | `explain_aws` (cause and fix), `is_permanent` |
"""

from dlq.awserrors.codes import (
    ACCESS_DENIED,
    MISSING_QUEUE,
    VOCABULARY,
    AwsError,
    AwsErrorKind,
    aws_error,
    error_kind,
    kind_of,
)
from dlq.awserrors.explain import Explanation, explain_aws, is_permanent

__all__ = [
    "ACCESS_DENIED",
    "MISSING_QUEUE",
    "VOCABULARY",
    "AwsError",
    "AwsErrorKind",
    "Explanation",
    "aws_error",
    "error_kind",
    "explain_aws",
    "is_permanent",
    "kind_of",
]
