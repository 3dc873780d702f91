"""Settings, read from environment variables prefixed WATCHTOWER_ (and an optional .env file)."""

from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of the service; see the settings table in README.md."""

    model_config = SettingsConfigDict(env_prefix="WATCHTOWER_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///./watchtower.db"
    api_token: SecretStr | None = None
    public_url: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    allowed_hosts: str = Field(
        default="", description="Comma-separated Host names the server answers (besides localhost, 127.0.0.1, ::1 "
        "and the host of WATCHTOWER_PUBLIC_URL); '*' answers any")
    session_ttl_hours: float = Field(default=12, gt=0, le=24 * 90, description="How long a page sign-in lasts")
    signin_window_s: int = Field(default=900, gt=0, description="The window failed sign-ins are counted in")
    signin_max_per_account: int = Field(default=5, gt=0, description="Failed sign-ins per account per window")
    signin_max_per_address: int = Field(default=20, gt=0, description="Failed sign-ins per client address per window")
    port: int = Field(default=8000, gt=0, lt=65536)
    # Access (watchtower/auth, README "Security"): reads need a viewer unless opened here.
    anonymous_read: bool = Field(default=False, description="Let callers without a token read (GET/HEAD)")
    metrics_public: bool = Field(default=False, description="Serve /metrics to anyone (Prometheus without a token)")
    metrics_token: SecretStr | None = Field(default=None, description="A bearer token that may scrape /metrics")
    trusted_proxies: str = Field(default="", description="Comma-separated proxy addresses/CIDRs whose "
                                 "X-Forwarded-For is believed (audit log client address)")

    scheduler_enabled: bool = True
    monitor_interval_s: int = Field(default=60, gt=0)
    outbox_interval_s: int = Field(default=10, gt=0)
    threshold_refit_s: int = Field(default=3600, gt=0, description="How often learned thresholds are re-fitted")
    escalation_interval_s: int = Field(default=30, gt=0, description="How often due escalation steps are paged")
    ack_timeout_minutes: int = Field(
        default=60, ge=0, description="An acknowledged incident still breaching this long after the ack is re-paged "
        "from escalation step 1 (0: never)")
    compact_interval_s: int = Field(default=300, gt=0, description="How often small event segments are merged")
    window_s: int = Field(default=3600, gt=0)
    segment_store: str | None = Field(
        default=None, description='Where event segments go: "database" (inside the database), a directory, or an '
        "object store URL (s3://bucket/prefix?endpoint_override=...); unset: a directory beside the SQLite file, "
        "the database on PostgreSQL")
    segment_grace_s: float = Field(
        default=3600, gt=0, description="How long an unreferenced segment file (compacted away, or written by a "
        "rolled-back batch) is kept before the compaction sweep deletes it; longer than any ingest transaction")
    compact_max_rows: int = Field(default=2_000_000, gt=0, description="Most rows one compaction run merges per model")
    # Mergeable profiles (issue 15; watchtower/events/segstore/profiles.py, README "Segment store").
    profile_k: int = Field(default=1024, ge=8, le=65_535, description="KLL sketch size of numeric profile columns "
                           "(larger: smaller rank error, bigger profiles; KLL sketches of any k still merge)")
    profile_category_cap: int = Field(default=10_000, gt=0, description="Categories counted exactly per profile "
                                      "column; beyond it the most frequent ones, an 'other' count and an HLL")
    profile_min_rows: int = Field(default=1000, ge=1, description="Segments written with fewer rows get no profile "
                                  "at flush (windows read them exactly until compaction merges them, profiled)")
    profile_bucket_s: int = Field(default=300, gt=0, le=86_400, description="The time grid of profiles: compaction "
                                  "never merges segments across a bucket, and a profile-mode window covers whole "
                                  "buckets; must divide a day")
    lease_ttl_s: float = Field(default=30, gt=0, description="How long the scheduler lease lasts unless renewed")
    lease_renew_s: float = Field(default=10, gt=0, description="How often the supervisor renews the lease")
    job_history_days: int = Field(default=7, gt=0, description="How long job runs are kept")
    ready_stale_intervals: float = Field(
        default=3, gt=0, description="/readyz fails when a monitor has not succeeded for this many intervals")
    sqlite_busy_timeout_s: float = Field(default=30, gt=0, description="How long SQLite waits for the write lock")
    metrics_analytics_ttl_s: float = Field(
        default=60, ge=0, description="How long /metrics reuses the incident analytics gauges (0: every scrape)")
    min_window_events: int = Field(default=200, gt=0)
    profile_mode_events: int = Field(
        default=1_000_000, gt=0, description='A monitor in mode "auto" tests merged profiles (mergeable sketches) '
        "instead of rows when its window holds more than this many events")
    max_body_bytes: int = Field(default=64 * 1024 * 1024, gt=0, description="Largest JSON (non-multipart) body")
    max_upload_bytes: int = Field(default=512 * 1024 * 1024, gt=0, description="Largest multipart upload request")

    slack_token: SecretStr | None = None
    slack_channel: str = "#ml-incidents"
    slack_base_url: str = "https://slack.com/api/"
    slack_signing_secret: SecretStr | None = Field(
        default=None, description="The Slack app's signing secret: POST /slack/interactions is refused without it")
    oncall_slack_user: str | None = None
    outbox_retry_for_s: int = Field(
        default=86400, ge=0, description="How long a failing message is retried (from its first attempt) before it "
        "is marked failed")
    outbox_max_backoff_s: int = Field(default=300, gt=0, description="Longest wait between two retries")
    outbox_claim_ttl_s: int = Field(
        default=300, gt=0, description="How long a deliverer owns a message it is sending; after that a crashed "
        "deliverer's message is sent again")
    webhook_timeout_s: float = Field(default=5.0, gt=0)

    # Prediction logging (watchtower.events.writer): see "Prediction logging" in README.md.
    log_mode: Literal["durable", "async"] = Field(
        default="durable", description="durable: a predict answers once its events are committed; async: at once "
        "(a model's own log_mode overrides this)")
    log_flush_ms: float = Field(default=50, gt=0, le=10_000, description="Longest time async events wait in the "
                                "buffer before a flush (durable requests are flushed at once)")
    log_flush_events: int = Field(default=5_000, gt=0, description="A flush starts once this many events wait")
    log_buffer_events: int = Field(default=50_000, gt=0, description="Most events held in memory, being written "
                                   "included; a full buffer makes requests wait for room")
    log_wait_s: float = Field(default=30, gt=0, description="Longest a request waits for room in the buffer or for "
                              "its durable flush before a 503")
    serving_refresh_s: float = Field(default=1.0, ge=0, description="How long predict reuses a model's active "
                                     "version before re-reading it (a swap in another process takes effect within "
                                     "this; in this process at once)")
    serving_inline_rows: int = Field(default=32, ge=0, description="Predict scores batches of up to this many rows "
                                     "on the event loop (no thread hop); larger ones in the thread pool")
    routes_warm_up: bool = Field(
        default=False, description="Once the server answered its first request, import every router in a "
        "background thread (predict and the events API first) instead of at the first request that needs each "
        "(watchtower/lazy_routes.py)")
    auth_cache_s: float = Field(default=1.0, ge=0, le=60, description="How long a bearer token's caller is "
                                "reused without reading the database: a revoked token, or a deactivated owner, is "
                                "refused within this (0: read on every request)")

    @model_validator(mode="after")
    def _claim_outlasts_a_send(self) -> Self:
        # A claim that expires while its send is still under way would let another deliverer send it too.
        if self.outbox_claim_ttl_s <= 2 * self.webhook_timeout_s:
            raise ValueError(f"WATCHTOWER_OUTBOX_CLAIM_TTL_S ({self.outbox_claim_ttl_s}) must be more than twice "
                             f"WATCHTOWER_WEBHOOK_TIMEOUT_S ({self.webhook_timeout_s})")
        return self

    @model_validator(mode="after")
    def _buckets_tile_a_day(self) -> Self:
        # Segment files are partitioned by date: a bucket that crossed midnight would span two partitions.
        if 86_400 % self.profile_bucket_s:
            raise ValueError(f"WATCHTOWER_PROFILE_BUCKET_S ({self.profile_bucket_s}) must divide a day (86400 s)")
        return self
