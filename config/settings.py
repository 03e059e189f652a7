"""Process settings, read from the environment with the BIHUAN_ prefix (and an optional .env)."""

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from config.catalog import DEFAULT_CONFIG_DIR

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

    api_host: str = "127.0.0.1"
    api_port: int = 8000
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

    @field_validator("webhook_urls")
    @classmethod
    def _http_urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2000 \
                    or any(c.isspace() for c in url):
                raise ValueError(f"BIHUAN_WEBHOOK_URLS: {url!r} is not an http(s) URL")
        # A URL listed twice would still get each notification once: deliveries are per URL.
        return list(dict.fromkeys(urls))

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
        if self.webhook_backoff_max_seconds < self.webhook_backoff_initial_seconds:
            raise ValueError("BIHUAN_WEBHOOK_BACKOFF_MAX_SECONDS must not be less than "
                             "BIHUAN_WEBHOOK_BACKOFF_INITIAL_SECONDS.")

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
