"""Who is operating: the name an operator's actions on customer data are recorded under."""

from __future__ import annotations

import getpass
import os

from botocore.exceptions import BotoCoreError, ClientError

from dlq.aws import aws_client
from dlq.settings import Settings


def operator_identity(settings: Settings) -> str:
    """The caller's AWS identity (the ARN `sts:GetCallerIdentity` answers), else the OS
    user (`os-user:<name>`): the credentials that reach the ledger say more than a login
    name, which any shell can set, but an operator without AWS credentials is still named."""
    try:
        return str(aws_client("sts", settings).get_caller_identity()["Arn"])
    except (BotoCoreError, ClientError, KeyError):
        pass
    try:
        return f"os-user:{getpass.getuser()}"
    except (OSError, KeyError):  # no login name and no passwd entry (a bare container)
        return f"os-uid:{os.getuid()}"
