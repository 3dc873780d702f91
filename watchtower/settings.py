"""Settings, read from environment variables prefixed WATCHTOWER_ (and an optional .env file)."""

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of the service; see the settings table in README.md."""

    model_config = SettingsConfigDict(env_prefix="WATCHTOWER_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///./watchtower.db"
    api_token: SecretStr | None = None
    public_url: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, gt=0, lt=65536)

    scheduler_enabled: bool = True
    monitor_interval_s: int = Field(default=60, gt=0)
    outbox_interval_s: int = Field(default=10, gt=0)
    threshold_refit_s: int = Field(default=3600, gt=0, description="How often learned thresholds are re-fitted")
    compact_interval_s: int = Field(default=300, gt=0, description="How often small event segments are merged")
    window_s: int = Field(default=3600, gt=0)
    metrics_analytics_ttl_s: float = Field(
        default=60, ge=0, description="How long /metrics reuses the incident analytics gauges (0: every scrape)")
    min_window_events: int = Field(default=200, gt=0)
    max_body_bytes: int = Field(default=64 * 1024 * 1024, gt=0, description="Largest JSON (non-multipart) body")
    max_upload_bytes: int = Field(default=512 * 1024 * 1024, gt=0, description="Largest multipart upload request")

    slack_token: SecretStr | None = None
    slack_channel: str = "#ml-incidents"
    slack_base_url: str = "https://slack.com/api/"
    oncall_slack_user: str | None = None
    outbox_max_attempts: int = Field(default=8, gt=0)
    webhook_timeout_s: float = Field(default=5.0, gt=0)
