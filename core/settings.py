"""Process settings, read from the environment (prefix ``FILTERVIZ_``) once per process.

Nothing reads the environment at import time: the API's app factory, the worker's start-up and
the CLI each call :func:`Settings` (or receive one from a test).
"""

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, StringConstraints, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.webhook_signing import signing_key

MODEL_NAMES = ("vgg16", "vgg19", "alexnet", "resnet50", "googlenet", "efficientnet_lite0")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FILTERVIZ_", extra="ignore")

    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("FILTERVIZ_REDIS_URL", "REDIS_URL"),
        description="Redis for jobs and the Celery broker; unset: `filterviz serve` starts an embedded one.",
    )
    storage_dir: Path = Field(default=Path("var/results"), description="Where result PNGs are stored.")
    upload_dir: Path = Field(default=Path("var/uploads"), description="Where uploaded start images are stored.")
    weights_dir: Path | None = Field(
        default=None,
        description="Directory holding torchvision weight files; unset: torchvision's cache "
        "($TORCH_HOME/hub/checkpoints).",
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    models: list[str] = Field(default=list(MODEL_NAMES), description="Models this deployment serves.")

    max_filters: int = Field(default=256, ge=1, description="Most filters one job may ask for.")
    max_steps: int = Field(default=1000, ge=1)
    max_size: int = Field(default=512, ge=16, description="Largest image side in pixels.")
    min_size: int = Field(default=16, ge=1, description="Smallest image side in pixels.")
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(
        default=40_000_000, ge=1, description="Larger images are refused (decompression bombs)."
    )
    decode_pixel_budget: int = Field(
        default=40_000_000,
        ge=1,
        description="Pixels one API process decodes at a time, over all uploads (~4 bytes each).",
    )
    decode_wait_seconds: float = Field(
        default=5.0, ge=0, description="How long an upload waits for room in the decode budget before a 503."
    )
    memory_budget_mb: int = Field(
        default=4096,
        ge=64,
        description="Memory one job's render may use: its results, frames and the activations of a chunk.",
    )
    max_job_tflop: float = Field(
        default=250, gt=0, description="Most estimated work per job, in TFLOP (about 15 minutes of a 2-core CPU)."
    )

    retention_seconds: int = Field(default=7 * 24 * 3600, ge=60, description="How long job records are kept.")
    job_soft_time_limit: int = Field(default=900, ge=1, description="Seconds before a running job is asked to stop.")
    job_time_limit: int = Field(default=960, ge=1, description="Seconds before a running job's worker is killed.")
    heartbeat_seconds: float = Field(default=2.0, gt=0, description="How often a running job proves its worker alive.")
    stale_after_seconds: float = Field(default=30.0, gt=0, description="A running job silent this long is requeued.")
    max_attempts: int = Field(default=3, ge=1, description="Deliveries of one job before it is failed.")
    dispatch_grace_seconds: float = Field(
        default=10.0, gt=0, description="A queued job whose Celery message is not confirmed sent this long is resent."
    )
    describe_timeout_seconds: float = Field(
        default=10.0, gt=0, description="How long the API waits for a worker to list a model's layers at a new size."
    )
    request_read_timeout_seconds: float = Field(
        default=60.0, gt=0, description="A request's headers, and then its body, must arrive within this; else 408."
    )
    max_layer_questions: int = Field(
        default=8, ge=1, description="Distinct layer lists at new sizes one API process waits for at once; beyond: 503."
    )
    max_event_streams: int = Field(
        default=1000,
        ge=1,
        description="Event streams (GET /v1/jobs/{id}/events) one API process keeps open; beyond: 503.",
    )
    event_ping_seconds: float = Field(
        default=15.0, gt=0, description="Seconds between keep-alive comments on an idle event stream."
    )

    # -- access control, admission limits, webhooks, retention: all off by default --
    api_keys: list[Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]] = Field(
        default=[],
        description="SHA-256 hex digests of the accepted API keys; "
        "set: every /v1 route needs `Authorization: Bearer <key>`.",
    )
    cors_origins: list[str] = Field(default=[], description="Origins a browser may call the API from; empty: no CORS.")
    rate_limit_per_minute: int | None = Field(
        default=None, ge=1, description="Requests per minute per API key (without keys: for all callers together)."
    )
    auth_failures_per_minute: int = Field(
        default=10, ge=1, description="Failed API-key attempts per client address and minute; beyond them 429."
    )
    max_queued_jobs: int | None = Field(
        default=None, ge=1, description="Jobs waiting for a worker; beyond it POST /v1/jobs answers 503 + Retry-After."
    )
    max_active_jobs_per_key: int | None = Field(
        default=None, ge=1, description="Queued plus running jobs per API key; beyond it POST /v1/jobs answers 429."
    )
    idempotency_seconds: int = Field(default=24 * 3600, ge=60, description="How long an Idempotency-Key is remembered.")
    upload_retention_seconds: int = Field(
        default=7 * 24 * 3600, ge=60, description="How long an uploaded start image is kept after its last upload/use."
    )
    cleanup_interval_seconds: float = Field(
        default=300.0, gt=0, description="How often a worker deletes the files of expired jobs and uploads."
    )
    webhook_secret: SecretStr | None = Field(
        default=None, description="Standard Webhooks signing secret, whsec_<base64>; unset: no job may name a webhook."
    )
    webhook_allow_private: bool = Field(
        default=False, description="Allow webhooks to loopback, private, link-local and other non-public addresses."
    )
    webhook_timeout_seconds: float = Field(default=5.0, gt=0, description="How long one webhook delivery may take.")
    webhook_retry_seconds: list[Annotated[float, Field(gt=0)]] = Field(
        default=[5, 30, 120, 600, 1800, 3600, 7200],
        description="Delays before each retry of a failed webhook delivery; after the last one it is dropped.",
    )
    webhook_concurrency: int = Field(default=8, ge=1, description="Webhook deliveries one worker makes at a time.")
    webhook_per_target: int = Field(
        default=2, ge=1, description="Of those, the most to one target host: a slow receiver delays only its own."
    )

    # -- speed: cross-request batching, the result cache, render processes --
    batch_max_rows: int = Field(
        default=64, ge=1, description="Most batch rows (pictures) a worker gathers from queued jobs into one batch."
    )
    batch_wait_seconds: float = Field(
        default=0.1, ge=0, description="How long after its submission a job may wait for batch-mates (0: no waiting)."
    )
    cache_dir: Path = Field(default=Path("var/cache"), description="Where the result cache keeps its entries.")
    cache_max_bytes: int = Field(
        default=2 * 1024**3,
        ge=0,
        description="Bytes of pictures kept (live jobs' included); least recently used go first.",
    )
    torch_threads: int | None = Field(
        default=None, ge=1, description="CPU threads per render process; unset: the usable cores / render processes."
    )

    @field_validator("models")
    @classmethod
    def _known_models(cls, models: list[str]) -> list[str]:
        """A model no worker can publish would keep /readyz "not ready" forever: refuse it at start."""
        unknown = [name for name in models if name not in MODEL_NAMES]
        if unknown:
            raise ValueError(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(MODEL_NAMES)}")
        return models

    @field_validator("webhook_secret")
    @classmethod
    def _readable_secret(cls, secret: SecretStr | None) -> SecretStr | None:
        """A malformed secret stops the process at start, not at the first delivery."""
        if secret is not None:
            signing_key(secret.get_secret_value())  # raises ValueError with what is expected
        return secret
