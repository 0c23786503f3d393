"""Queue URLs by queue ARN, looked up once: a queue's URL never changes."""

from __future__ import annotations

from typing import Any

from dlq.memo import Memo
from dlq.targets.arn import Arn


class QueueUrls:
    """A per-process cache of `GetQueueUrl` answers (thread-safe)."""

    def __init__(self) -> None:
        self._urls: Memo[str, str] = Memo(None)

    def get(self, client: Any, queue_arn: str) -> str:
        def look_up() -> str:
            arn = Arn.parse(queue_arn)
            assert arn is not None  # routing accepted it as an SQS ARN
            response = client.get_queue_url(QueueName=arn.name, QueueOwnerAWSAccountId=arn.account)
            return str(response["QueueUrl"])

        return self._urls.get(queue_arn, look_up)

    def forget(self, queue_arn: str) -> None:
        """Drop a URL that stopped working, so a recreated queue is found again."""
        self._urls.forget(queue_arn)
