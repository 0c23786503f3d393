"""Queue URLs by queue ARN, looked up once: a queue's URL never changes."""

from __future__ import annotations

import threading
from typing import Any

from dlq.targets.arn import Arn


class QueueUrls:
    """A per-process cache of `GetQueueUrl` answers (thread-safe)."""

    def __init__(self) -> None:
        self._urls: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, client: Any, queue_arn: str) -> str:
        with self._lock:
            url = self._urls.get(queue_arn)
        if url is None:
            arn = Arn.parse(queue_arn)
            assert arn is not None  # routing accepted it as an SQS ARN
            response = client.get_queue_url(QueueName=arn.name, QueueOwnerAWSAccountId=arn.account)
            url = str(response["QueueUrl"])
            with self._lock:
                self._urls[queue_arn] = url
        return url

    def forget(self, queue_arn: str) -> None:
        """Drop a URL that stopped working, so a recreated queue is found again."""
        with self._lock:
            self._urls.pop(queue_arn, None)
