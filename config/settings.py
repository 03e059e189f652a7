"""Process settings, read from the environment with the BIHUAN_ prefix (and an optional .env)."""

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from config.catalog import DEFAULT_CONFIG_DIR
from domain.continuation import DEFAULT_HISTORY_EVENT_LIMIT

ROOT = Path(__file__).resolve().parent.parent
# Known to everyone who reads this file: accepted only in development.
DEV_SIGNING_KEY = "bihuan-development-signing-key-not-secret"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BIHUAN_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    # Domain data (teams, categories, places); a deployment points this at its own copy.
    config_dir: Path = DEFAULT_CONFIG_DIR
    data_dir: Path = ROOT / "var"
    ledger_url: str = ""

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "bihuan"
    task_queue: str = "bihuan-cases"
    temporal_ui_port: int = 8233
    # Where people's browsers reach the Temporal UI (the dashboard links each case to it); empty:
    # the dev server's UI beside temporal_address, on temporal_ui_port.
    temporal_ui_base_url: str = ""
    temporal_retention_days: int = Field(default=365, ge=365)

    # Cases kept in the worker's memory between their actions; the rest replay from history
    # when they next act. Bounds the worker's memory however many cases wait for months: about
    # 0.22 MiB a cached case over a 140 MiB base (bench/idle_cases.py), so 500 stays near 250 MiB.
    worker_max_cached_workflows: int = Field(default=500, ge=1)
    # The SDK's sandbox refuses non-deterministic calls (the clock, randomness, I/O) made by
    # workflow code while it runs, and re-imports the workflow module for every case: about a
    # sixth of the step throughput (bench/README.md). The tests' workers always run in it, so
    # such a call on a path of workflows/ the tests drive fails CI; deployed workers run
    # without it unless this is set.
    # It never covered the domain modules, which workflows import passed through.
    workflow_sandbox: bool = False

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # SIGTERM: requests in flight get this long to finish before the API exits.
    api_shutdown_grace_seconds: float = Field(default=30.0, ge=0, le=600)

    # The worker's GET /healthz (`bihuan worker-health` asks it); port 0 serves none.
    worker_health_host: str = "127.0.0.1"
    worker_health_port: int = Field(default=0, ge=0, le=65535)
    # The Temporal SDK's own worker metrics (Prometheus text at http://ADDRESS/metrics), e.g.
    # 0.0.0.0:9464; empty: not exported.
    worker_metrics_address: str = ""
    # SIGTERM: activities in flight get this long to finish; after it they are cancelled and
    # Temporal retries them on another worker.
    worker_shutdown_grace_seconds: float = Field(default=30.0, ge=0, le=600)
    log_level: str = "INFO"
    # Tokens: HS256 with jwt_secret, or RS256 verified with jwt_public_key (PEM text or path).
    jwt_algorithm: Literal["HS256", "RS256"] = "HS256"
    jwt_secret: SecretStr = SecretStr(DEV_SIGNING_KEY)
    jwt_public_key: str = ""
    # Signs tokens minted by `bihuan token` under RS256 (PEM text or path).
    jwt_private_key: SecretStr = SecretStr("")
    token_ttl_minutes: int = Field(default=12 * 60, ge=1, le=30 * 24 * 60)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)

    # How long the API waits for a workflow to answer an action before telling the caller
    # to retry with the same Idempotency-Key.
    action_timeout_seconds: float = 30.0
    # A case's workflow continues as new past this many history events (set on each new case).
    case_history_event_limit: int = Field(default=DEFAULT_HISTORY_EVENT_LIMIT, ge=50, le=40_000)
    # How long the API asks a case's workflow for its state when the ledger has no row for it
    # yet (a case whose opening was not written); Temporal's own limit is 30 s.
    query_timeout_seconds: float = Field(default=5.0, gt=0, le=60)

    # Webhooks: every notification is POSTed to each URL, signed with webhook_secret (HMAC-SHA256)
    # and retried with exponential backoff. From the environment, a JSON list:
    # BIHUAN_WEBHOOK_URLS='["https://hooks.example/bihuan"]'.
    webhook_urls: list[str] = []
    webhook_secret: SecretStr = SecretStr("")
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    webhook_max_attempts: int = Field(default=8, ge=1, le=100)
    webhook_backoff_initial_seconds: float = Field(default=2.0, gt=0)
    webhook_backoff_max_seconds: float = Field(default=600.0, gt=0)
    outbox_poll_seconds: float = Field(default=1.0, gt=0, le=3600)
    # How often the worker starts the workflows of cases the API recorded but did not start
    # (Temporal away, or the API stopped in between), once they are this old; see
    # runtime/cases.py.
    case_start_sweep_seconds: float = Field(default=10.0, gt=0, le=3600)
    case_start_grace_seconds: float = Field(default=30.0, ge=0, le=3600)

    # The 12345 hotline: its callbacks (accepted, rectified, verified, closed, invalid, reopened,
    # overdue) go to this URL only, signed with hotline_callback_secret (webhook_secret when
    # empty), retried with the webhook backoff until acknowledged or the attempts run out.
    hotline_callback_url: str = ""
    hotline_callback_secret: SecretStr = SecretStr("")
    hotline_callback_max_attempts: int = Field(default=1000, ge=1, le=100_000)
    # A new ticket repeats an open case of its category within this distance when both carry
    # coordinates; without them, one in the same community (并单).
    hotline_duplicate_distance_m: float = Field(default=100.0, ge=0, le=5000)
    # Open311 GeoReport v2: each api_key and the id of the hotline-role identity it acts as,
    # BIHUAN_OPEN311_API_KEYS='{"<key>": "open311-fixmystreet"}'.
    open311_api_keys: dict[str, str] = {}
    # GeoReport reads (services, requests) need no key, as the standard has it; set false to
    # require a known api_key on reads as well.
    open311_public_reads: bool = True

    @field_validator("webhook_urls")
    @classmethod
    def _http_urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
            _check_url("BIHUAN_WEBHOOK_URLS", url)
        # A URL listed twice would still get each notification once: deliveries are per URL.
        return list(dict.fromkeys(urls))

    @field_validator("hotline_callback_url")
    @classmethod
    def _hotline_url(cls, url: str) -> str:
        if url:
            _check_url("BIHUAN_HOTLINE_CALLBACK_URL", url)
        return url

    def model_post_init(self, _context) -> None:
        if not self.ledger_url:
            self.ledger_url = f"sqlite:///{self.data_dir / 'ledger.db'}"
        secret = self.jwt_secret.get_secret_value()
        if self.environment != "development" and self.jwt_algorithm == "HS256":
            if secret == DEV_SIGNING_KEY:
                raise ValueError(f"BIHUAN_JWT_SECRET must be set in the {self.environment} "
                                 "environment: the built-in development signing key is public.")
            if len(secret.encode()) < 32:
                raise ValueError("BIHUAN_JWT_SECRET must be at least 32 bytes long.")
        if self.jwt_algorithm == "RS256" and not self.jwt_public_key:
            raise ValueError("BIHUAN_JWT_PUBLIC_KEY is required with BIHUAN_JWT_ALGORITHM=RS256.")
        if (self.webhook_urls and self.environment != "development"
                and not self.webhook_secret.get_secret_value()):
            raise ValueError(f"BIHUAN_WEBHOOK_SECRET must be set in the {self.environment} "
                             "environment when BIHUAN_WEBHOOK_URLS is: receivers verify each "
                             "webhook's signature with it.")
        if (self.hotline_callback_url and self.environment != "development"
                and not self.hotline_secret):
            raise ValueError(f"BIHUAN_HOTLINE_CALLBACK_SECRET (or BIHUAN_WEBHOOK_SECRET) must be "
                             f"set in the {self.environment} environment when "
                             "BIHUAN_HOTLINE_CALLBACK_URL is: the platform verifies each "
                             "callback's signature with it.")
        if self.webhook_backoff_max_seconds < self.webhook_backoff_initial_seconds:
            raise ValueError("BIHUAN_WEBHOOK_BACKOFF_MAX_SECONDS must not be less than "
                             "BIHUAN_WEBHOOK_BACKOFF_INITIAL_SECONDS.")

    @property
    def hotline_secret(self) -> str:
        return (self.hotline_callback_secret.get_secret_value()
                or self.webhook_secret.get_secret_value())

    @property
    def temporal_db_file(self) -> Path:
        return self.data_dir / "temporal.db"

    @property
    def api_url(self) -> str:
        return f"http://{self.api_host}:{self.api_port}"

    @property
    def temporal_ui_url(self) -> str:
        base = self.temporal_ui_base_url.rstrip("/")
        if not base:
            base = f"http://{self.temporal_address.rsplit(':', 1)[0]}:{self.temporal_ui_port}"
        return f"{base}/namespaces/{self.temporal_namespace}/workflows"


def _check_url(setting: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2000 \
            or any(c.isspace() for c in url):
        raise ValueError(f"{setting}: {url!r} is not an http(s) URL")
