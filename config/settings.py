"""Process settings, read from the environment with the BIHUAN_ prefix (and an optional .env)."""

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from config.catalog import DEFAULT_CONFIG_DIR

ROOT = Path(__file__).resolve().parent.parent


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
    temporal_retention_days: int = Field(default=365, ge=365)

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    log_level: str = "INFO"
    # How long the API waits for a workflow to answer an action before telling the caller
    # to retry with the same Idempotency-Key.
    action_timeout_seconds: float = 30.0

    def model_post_init(self, _context) -> None:
        if not self.ledger_url:
            self.ledger_url = f"sqlite:///{self.data_dir / 'ledger.db'}"

    @property
    def temporal_db_file(self) -> Path:
        return self.data_dir / "temporal.db"

    @property
    def api_url(self) -> str:
        return f"http://{self.api_host}:{self.api_port}"

    @property
    def temporal_ui_url(self) -> str:
        host = self.temporal_address.rsplit(":", 1)[0]
        return f"http://{host}:{self.temporal_ui_port}/namespaces/{self.temporal_namespace}/workflows"
