"""Region names, checked where the settings are read: AWS's and Genesys Cloud's.

A typo in either (`AWS_REGION=us-east1`) otherwise surfaces far from its cause: botocore
builds an endpoint that does not resolve, and every call fails as a network error.
"""

from __future__ import annotations

import difflib
import re
from functools import cache

#: Genesys Cloud region domains by the SDK's region name: `PureCloudRegionHosts` in the
#: official Python SDK (PureCloudPlatformClientV2/configuration.py).
GENESYS_REGIONS: dict[str, str] = {
    "us_east_1": "mypurecloud.com",
    "eu_west_1": "mypurecloud.ie",
    "ap_southeast_2": "mypurecloud.com.au",
    "ap_northeast_1": "mypurecloud.jp",
    "eu_central_1": "mypurecloud.de",
    "us_west_2": "usw2.pure.cloud",
    "ca_central_1": "cac1.pure.cloud",
    "ap_northeast_2": "apne2.pure.cloud",
    "eu_west_2": "euw2.pure.cloud",
    "ap_south_1": "aps1.pure.cloud",
    "us_east_2": "use2.us-gov-pure.cloud",
    "sa_east_1": "sae1.pure.cloud",
    "me_central_1": "mec1.pure.cloud",
    "ap_northeast_3": "apne3.pure.cloud",
    "eu_central_2": "euc2.pure.cloud",
    "mx_central_1": "mxc1.pure.cloud",
    "ap_southeast_1": "apse1.pure.cloud",
}


def genesys_region(value: str) -> str:
    """The SDK's name (`us_east_1`), written `us-east-1` too, or a region domain.

    A domain may come pasted as a URL or a host (`https://api.mypurecloud.ie/`,
    `login.mypurecloud.ie`): the known ones are reduced to the domain itself.
    """
    value = value.strip().lower()
    name = value.replace("-", "_")
    if name in GENESYS_REGIONS:
        return name
    host = value.removeprefix("https://").removeprefix("http://").split("/", 1)[0]
    for prefix in ("api.", "login.", "apps."):
        if host.startswith(prefix) and host.removeprefix(prefix) in GENESYS_REGIONS.values():
            return host.removeprefix(prefix)
    if "." in host:
        return host
    known = ", ".join(sorted(GENESYS_REGIONS))
    raise ValueError(
        f"{value!r} is neither a Genesys region domain (mypurecloud.com, usw2.pure.cloud"
        f"...) nor a region name: {known} (dashes or underscores)"
    )


@cache
def _partitions() -> tuple[tuple[re.Pattern[str], frozenset[str]], ...]:
    """(the form of a region name, the regions listed) of each AWS partition.

    botocore's own data, read from the installed package (no network, and no list of
    ours to go stale): `botocore/data/partitions.json`, else the older `endpoints.json`,
    give each partition (aws, aws-cn, aws-us-gov...) a `regionRegex` and its `regions`.
    A region AWS opens later matches its partition's form before botocore lists it.
    """
    from botocore.exceptions import DataNotFoundError
    from botocore.loaders import create_loader

    loader = create_loader()
    try:
        data = loader.load_data("partitions")
    except DataNotFoundError:
        data = loader.load_data("endpoints")
    return tuple(
        (re.compile(p["regionRegex"]), frozenset(p.get("regions", {}))) for p in data["partitions"]
    )


def aws_region(value: str) -> str:
    """An AWS region name (`us-east-1`), in the form of one of botocore's partitions."""
    value = value.strip().lower()
    if any(form.match(value) for form, _ in _partitions()):
        return value
    listed = [r for _, regions in _partitions() for r in regions if not r.endswith("-global")]
    close = difflib.get_close_matches(value, sorted(listed), n=1)
    guess = f" (did you mean {close[0]}?)" if close else ""
    raise ValueError(
        f"{value!r} is not an AWS region name{guess}: set AWS_REGION (it wins over "
        "AWS_DEFAULT_REGION) to the region of the DLQ and the ledger, written like us-east-1"
    )
