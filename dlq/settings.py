"""The one settings object: read once from the environment (and `.env`), passed down."""

from __future__ import annotations

from functools import cached_property
from typing import Annotated, Literal
from urllib.parse import unquote, urlsplit

from pydantic import (
    AliasChoices,
    Field,
    HttpUrl,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from dlq.errors import ConfigurationError
from dlq.masking import DEFAULT_MASKED_FIELDS, MaskedFields
from dlq.namelist import NameList
from dlq.redact import remember
from dlq.redistls import CaBundle, tls_fits
from dlq.regions import GENESYS_REGIONS, aws_region, genesys_region
from dlq.secretref import SecretReference
from dlq.settings_health import HealthSettings
from dlq.settings_outage import OutageSettings
from dlq.settings_paces import PaceSettings

#: No task schedules itself further out than this; the Redis broker's visibility
#: timeout is set above it (celeryconfig.py), or a long countdown would be delivered
#: again and again.
MAX_COUNTDOWN_SECONDS = 1800

#: EventBridge's largest event; a DLQ body beyond it is not an EventBridge event.
MAX_EVENT_BYTES = 256 * 1024

#: How the secrets in .env.example begin: a password starting so was never changed.
PLACEHOLDER_PREFIX = "change-me"

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]


class Settings(HealthSettings, PaceSettings, OutageSettings, BaseSettings):
    """Every knob of dlq-replay; the environment variable is the field name in upper case."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    # Genesys Cloud
    genesys_region: str = "mypurecloud.com"
    genesys_api_base_url: HttpUrl | None = None
    genesys_login_base_url: HttpUrl | None = None
    genesys_client_id: str = ""
    genesys_client_secret: SecretStr = SecretStr("")
    #: The client id and secret kept in Secrets Manager or SSM Parameter Store instead (a
    #: reference: `dlq.secretref`), read at start and again when Genesys refuses
    #: the client, so a rotation needs no restart. Each excludes its plain variable.
    genesys_client_id_arn: str = ""
    genesys_client_secret_arn: str = ""
    genesys_org_id: str | None = None
    genesys_rate_limit_per_minute: PositiveInt = 240
    genesys_rate_limit_reserve: Annotated[float, Field(ge=0, lt=1)] = 0.25
    genesys_connect_timeout: PositiveFloat = 3.05
    genesys_read_timeout: PositiveFloat = 10.0
    genesys_attribute_prefix: str = Field(default="dlqReplay", pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    #: The period Genesys counts calls over (its `inin-ratelimit-allowed` is per window):
    #: a minute. Only a simulator with a shortened window needs another value.
    genesys_rate_limit_window_seconds: PositiveFloat = 60.0

    # AWS and the queues
    aws_region: str = Field(
        default="us-east-1", validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION")
    )
    dlq_queue_url: str = ""
    ledger_table: str = "dlq-replay-ledger"
    ledger_ttl_days: PositiveInt = 90
    #: Every ledger call's bounds: botocore's standard retries make up to `ledger_tries`
    #: tries of (connect + read) each, with its backoff between them. An attempt's lease
    #: covers two such calls (its claim and its outcome), so they are kept short.
    ledger_connect_timeout: PositiveFloat = 3.0
    ledger_read_timeout: PositiveFloat = 5.0
    ledger_tries: Annotated[int, Field(ge=1, le=10)] = 3
    replay_parking_queue_url: str = ""

    # Redis: broker, locks, rate limiter, token cache
    redis_url: str = "redis://127.0.0.1:6379/0"
    #: The Redis password (or ElastiCache AUTH token) kept in Secrets Manager or SSM instead
    #: of REDIS_URL (which then carries none; a user name may stay in it): read at start and
    #: again when Redis refuses it.
    redis_password_secret_arn: str = ""
    #: kombu's ack emulation on the Redis broker: every task delivered is also written to
    #: an `unacked` hash and index until acknowledged (6 Redis commands per task), so the
    #: tasks of a worker that died come back after the visibility timeout (37 min). Off:
    #: the reconciler rebuilds a dead worker's work from the ledger sooner (after
    #: REPLAY_RECONCILE_GRACE_SECONDS), and a warm shutdown hands back unstarted tasks
    #: either way.
    redis_ack_emulation: bool = False
    #: TLS to Redis (a rediss:// REDIS_URL), the same for every client and the broker
    #: (dlq.redistls): the PEM bundle of the CA that signed the server's certificate (empty:
    #: the system's trust store), and whether that certificate must name REDIS_URL's host.
    #: The certificate itself is always verified.
    redis_tls_ca_file: CaBundle = ""
    redis_tls_check_hostname: bool = True

    # Retry policy
    replay_max_attempts: PositiveInt = 8
    replay_backoff_base: PositiveInt = 2
    replay_backoff_max: PositiveInt = 600
    #: Full jitter (a countdown drawn from 0 up to the backoff); off, the backoff itself.
    replay_backoff_jitter: bool = True
    replay_max_event_age_seconds: PositiveInt = 7 * 24 * 3600
    replay_verify_conversation: bool = True
    replay_redeliver_missing_conversation: bool = False
    #: Event-bus targets cannot be redelivered faithfully (PutEvents refuses the partner
    #: source, so the original rule would not match the re-put event); they are refused
    #: unless this names the source to put them under, matched by a rule of their own.
    replay_event_bus_source: str = ""
    replay_target_overrides: dict[str, str] = Field(default_factory=dict)
    #: Redeliver to TARGET_ARN as the message says, without checking it against the rule
    #: (and without the rule target's input transformation and parameters).
    replay_trust_target_arn: bool = False
    #: More buses (names, `*` wildcards) and rule ARNs to replay besides the org's Genesys
    #: partner bus (dlq.boundary): comma-separated or a JSON list; they need GENESYS_ORG_ID.
    replay_allowed_buses: NameList = Field(default_factory=list)
    replay_allowed_rules: NameList = Field(default_factory=list)
    #: How long the fleet trusts a rule's targets and pattern (ListTargetsByRule, DescribeRule).
    replay_rule_cache_seconds: PositiveFloat = 60.0
    #: How a Lambda target is invoked: `Event` (asynchronously, as EventBridge does) or
    #: `RequestResponse` (wait, and let the function's error decide the retry).
    replay_lambda_invocation_type: Literal["Event", "RequestResponse"] = "Event"
    replay_http_targets: dict[str, HttpUrl] = Field(default_factory=dict)
    replay_tracking_debounce_seconds: Annotated[float, Field(ge=0)] = 5.0
    replay_reconcile_grace_seconds: PositiveFloat = 120.0
    #: How long a claim (and the conversation lock) lasts. An attempt is bounded well
    #: inside it (see `attempt_bound_seconds`), so no attempt outlives its claim.
    replay_lease_seconds: PositiveFloat = 150.0
    #: One send to a target: connect and read bounds of its single try (no SDK retries).
    replay_send_connect_timeout: PositiveFloat = 3.05
    replay_send_read_timeout: PositiveFloat = 30.0
    #: What an attempt may spend besides Genesys, the send and the ledger (Redis calls,
    #: the worker's own work).
    replay_lease_margin_seconds: PositiveFloat = 30.0
    #: A replay task's soft time limit (Celery's `task_soft_time_limit`; the hard one is
    #: 20 s later). An ordered pass starts no attempt that could not end before it, so
    #: at least one attempt must fit (see `attempt_bound_seconds`).
    replay_task_soft_time_limit: PositiveFloat = 160.0
    #: `conversation`: a conversation's events reach each target in event-time order
    #: (one pass per conversation under its lock); `none`: each event on its own.
    replay_order: Literal["conversation", "none"] = "conversation"
    #: How long an event waiting for its retry holds back the newer events of its
    #: conversation and target; after it, they go, and their history says so.
    replay_order_hold_seconds: PositiveFloat = 300.0
    #: A pass waits while the ingest took an event of its conversation this recently, or
    #: while the poller is draining the DLQ (an earlier event may still be in it)...
    replay_ingest_quiet_seconds: Annotated[float, Field(ge=0)] = 2.0
    #: ...but never longer than this after its conversation's first event arrived.
    replay_ingest_max_hold_seconds: Annotated[float, Field(ge=0)] = 60.0
    #: Conversations verified per analytics multi-get call (halved, for the fleet, after
    #: a 400 that says the call asked for too many).
    genesys_verify_batch: Annotated[int, Field(gt=0, le=1000)] = 100
    #: How long a replay waits for the batch verification of its conversation before
    #: looking it up on its own (counted from the ingest that marked it).
    genesys_verify_wait_seconds: Annotated[float, Field(ge=0, le=600)] = 15.0

    # Ingest
    #: Which front door drains the DLQ: `lambda` (template.yaml's SQS-triggered function)
    #: or `poller` (`dlq-replay poll`, as docker-compose.yml runs it). `setup` and
    #: `doctor` judge the DLQ's visibility timeout for it: only a Lambda trigger depends
    #: on it, the poller sets its own on each receive. `lambda` by default, the stricter
    #: review: a Lambda deployment judged as a poller's would learn of a short timeout
    #: only when Lambda refuses the trigger, while a poller's judged as a Lambda's is told
    #: to set this to `poller`.
    ingest_front_door: Literal["lambda", "poller"] = "lambda"
    poller_receivers: PositiveInt = 1
    poller_wait_seconds: Annotated[int, Field(ge=0, le=20)] = 20

    # Metrics (README "Metrics")
    #: The workers' Prometheus endpoint, served by each worker's main process (0: off).
    replay_metrics_port: Annotated[int, Field(ge=0, le=65535)] = 9808
    #: The poller's Prometheus endpoint (0: off): another port, so both fit on one host.
    poller_metrics_port: Annotated[int, Field(ge=0, le=65535)] = 9809
    #: The address both endpoints bind to; 0.0.0.0 in a container Prometheus scrapes.
    replay_metrics_address: str = "127.0.0.1"
    #: How often the fleet samples the ledger's status counts (kept in Redis as items
    #: move: `dlq.metrics.tally`) and the DLQ depth; one process takes each sample.
    replay_metrics_sample_seconds: PositiveFloat = 60.0
    #: How often the status counts are set right from the table (a `Select=COUNT` per
    #: counted status, by the process taking that sample): what drifted (TTL expiry, a
    #: process stopped between a write and its count) is corrected and reported.
    replay_tally_recount_seconds: PositiveFloat = 21600.0
    #: Where a worker's processes write their metric files (prometheus_client's own
    #: variable); empty: a fresh temporary directory per worker.
    prometheus_multiproc_dir: str = ""
    #: Workers also print CloudWatch EMF lines for failed and exhausted outcomes
    #: (`DlqReplay` EventsFailed, EventsExhausted), for a log route that extracts EMF.
    replay_metrics_emf: bool = False

    #: The body fields `inspect` masks unless `--unmasked` (dlq.masking, README "Customer data").
    replay_masked_fields: MaskedFields = Field(default_factory=lambda: list(DEFAULT_MASKED_FIELDS))

    @field_validator("genesys_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        return genesys_region(value)  # dlq.regions: the SDK's names and the domains

    @field_validator("aws_region")
    @classmethod
    def _aws_region(cls, value: str) -> str:
        return aws_region(value)  # dlq.regions: the form botocore's partition data gives

    @field_validator("replay_event_bus_source")
    @classmethod
    def _not_aws_source(cls, value: str) -> str:
        value = value.strip()
        if value.startswith("aws."):
            raise ValueError("PutEvents refuses sources that begin with 'aws.'")
        return value

    @field_validator("replay_backoff_max")
    @classmethod
    def _within_broker_bound(cls, value: int) -> int:
        if value > MAX_COUNTDOWN_SECONDS:
            raise ValueError(f"must be at most {MAX_COUNTDOWN_SECONDS} s (the broker's bound)")
        return value

    @model_validator(mode="after")
    def _attempt_inside_lease(self) -> Settings:
        bound = self.attempt_bound_seconds
        parts = (
            f"the longest attempt ({bound:g} s: the Genesys lookup and login, one send, the "
            "claim and the outcome in the ledger with its retries, REPLAY_LEASE_MARGIN_SECONDS)"
        )
        lower = (
            "or lower REPLAY_SEND_READ_TIMEOUT, GENESYS_READ_TIMEOUT, LEDGER_READ_TIMEOUT or "
            "LEDGER_TRIES on the replay workers"
        )
        if bound > self.replay_lease_seconds:
            raise ValueError(
                f"REPLAY_LEASE_SECONDS ({self.replay_lease_seconds:g} s) must exceed {parts}; "
                f"raise it, {lower}"
            )
        if bound > self.replay_task_soft_time_limit:
            raise ValueError(
                f"REPLAY_TASK_SOFT_TIME_LIMIT ({self.replay_task_soft_time_limit:g} s) must "
                f"exceed {parts}; raise it, {lower}"
            )
        return self

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("redis_url")
    @classmethod
    def _no_placeholder_password(cls, value: str) -> str:
        # .env.example's REDIS_PASSWORD ships as a placeholder; a Redis that holds the
        # broker and the shared Genesys token must not run behind a published password.
        # A URL without a password (the demo's and the tests' loopback Redis) is fine.
        password = urlsplit(value).password
        if password is not None and unquote(password).startswith(PLACEHOLDER_PREFIX):
            raise ValueError(
                "its password is the .env.example placeholder: set REDIS_PASSWORD in .env "
                "to a long random value (openssl rand -hex 32) with docker compose, "
                "else the password in REDIS_URL"
            )
        return value

    @model_validator(mode="after")
    def _redis_tls(self) -> Settings:
        tls_fits(self)  # dlq.redistls
        return self

    @field_validator(
        "genesys_client_id_arn", "genesys_client_secret_arn", "redis_password_secret_arn"
    )
    @classmethod
    def _secret_reference(cls, value: str) -> str:
        value = value.strip()
        if value:
            SecretReference.parse(value)  # its ValueError says what a reference looks like
        return value

    @model_validator(mode="after")
    def _one_source_per_secret(self) -> Settings:
        secret = self.genesys_client_secret.get_secret_value()
        # (what is given plainly, its value, its reference's variable, the reference)
        pairs = (
            ("GENESYS_CLIENT_ID", self.genesys_client_id, "GENESYS_CLIENT_ID_ARN",
             self.genesys_client_id_arn),
            ("GENESYS_CLIENT_SECRET", secret, "GENESYS_CLIENT_SECRET_ARN",
             self.genesys_client_secret_arn),
            ("the password in REDIS_URL", self.redis_url_password, "REDIS_PASSWORD_SECRET_ARN",
             self.redis_password_secret_arn),
        )  # fmt: skip
        for plain, given, name, reference in pairs:
            if given and reference:
                raise ValueError(
                    f"{plain} and its reference ({name}) are both set: keep one (the "
                    "reference, to read it from the secret store)"
                )
        # Every text the process writes is scrubbed of these (dlq.redact).
        remember(secret, self.redis_url_password)
        return self

    @property
    def redis_url_password(self) -> str | None:
        """The password REDIS_URL carries, if any."""
        password = urlsplit(self.redis_url).password
        return unquote(password) if password is not None else None

    @property
    def has_genesys_client(self) -> bool:
        """Whether an OAuth client id is configured, plainly or by reference."""
        return bool(self.genesys_client_id or self.genesys_client_id_arn)

    @cached_property
    def genesys_domain(self) -> str:
        return GENESYS_REGIONS.get(self.genesys_region, self.genesys_region)

    @property
    def genesys_api_url(self) -> str:
        """Base URL of the Platform API: the explicit override, else `https://api.<domain>`."""
        if self.genesys_api_base_url is not None:
            return str(self.genesys_api_base_url).rstrip("/")
        return f"https://api.{self.genesys_domain}"

    @property
    def genesys_login_url(self) -> str:
        """Base URL of the login host: the explicit override, else `https://login.<domain>`."""
        if self.genesys_login_base_url is not None:
            return str(self.genesys_login_base_url).rstrip("/")
        return f"https://login.{self.genesys_domain}"

    @property
    def send_timeouts(self) -> tuple[float, float]:
        """(connect, read) seconds of the one try that sends an event to a target."""
        return (self.replay_send_connect_timeout, self.replay_send_read_timeout)

    @property
    def attempt_bound_seconds(self) -> float:
        """The longest one replay attempt can take, which the claim's lease must exceed.

        The conversation lookup may need a login first (two Genesys calls), then one send;
        every other step is a short ledger or Redis call, counted together.
        """
        genesys = 2 * sum(self.genesys_timeouts)
        ledger = 2 * self.ledger_call_bound_seconds
        return genesys + sum(self.send_timeouts) + ledger + self.replay_lease_margin_seconds

    @property
    def ledger_call_bound_seconds(self) -> float:
        """The longest one ledger call can take with botocore's standard retries: every
        try's connect and read, and the backoff between tries (at most 2**n s, capped at
        20 s: botocore's `standard` retry mode)."""
        tries = self.ledger_tries * (self.ledger_connect_timeout + self.ledger_read_timeout)
        return tries + sum(min(2.0**n, 20.0) for n in range(1, self.ledger_tries))

    @property
    def genesys_timeouts(self) -> tuple[float, float]:
        """(connect, read) seconds of every Genesys request."""
        return (self.genesys_connect_timeout, self.genesys_read_timeout)

    def require(self, *names: str, purpose: str) -> None:
        """Fail with one clear line when a setting that `purpose` needs is empty."""
        for name in names:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            if not value:
                raise ConfigurationError(f"{name.upper()} is not set: {purpose} needs it")


def load_settings(**overrides: object) -> Settings:
    """Read the settings once; a bad value becomes one line naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        if not first["loc"]:  # a rule across several settings names them itself
            raise ConfigurationError(f"settings do not fit together: {message}") from None
        name = str(first["loc"][0]).upper()
        raise ConfigurationError(f"{name} is invalid: {message}") from None
