"""Process settings, read from the environment (prefix ``FILTERVIZ_``) once per process.

Nothing reads the environment at import time: the API's app factory, the worker's start-up and
the CLI each call :func:`Settings` (or receive one from a test).
"""

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, StringConstraints, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.model_config import BUILTIN_MODELS, ModelsFileError, model_table
from core.webhook_signing import signing_key

MODEL_NAMES = tuple(BUILTIN_MODELS)  # the built-in models; a models file (models_file) adds its own


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FILTERVIZ_", extra="ignore")

    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("FILTERVIZ_REDIS_URL", "REDIS_URL"),
        description="Redis for jobs and the Celery broker; unset: `filterviz serve` starts an embedded one.",
    )
    storage_dir: Path = Field(default=Path("var/results"), description="Local backend: where result PNGs are stored.")
    upload_dir: Path = Field(
        default=Path("var/uploads"), description="Local backend: where uploaded start images are stored."
    )
    weights_dir: Path | None = Field(
        default=None,
        description="Directory holding torchvision weight files; unset: torchvision's cache "
        "($TORCH_HOME/hub/checkpoints).",
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    models_file: Path | None = Field(
        default=None,
        description="A TOML file of the deployment's own models (core.model_config), besides the built-ins.",
    )
    models: list[str] = Field(
        default=list(MODEL_NAMES),
        description="Models this deployment serves (built-ins and models_file's); unset: all of them.",
    )

    max_filters: int = Field(default=256, ge=1, description="Most filters one job may ask for of one layer.")
    max_pictures: int = Field(
        default=1024,
        ge=1,
        description="Most pictures one job may ask for, over all its layers (filters x diversity; the seed's "
        "figure set, 20 filters of each of VGG16's 13 conv layers, is 260).",
    )
    max_layers: int = Field(default=64, ge=1, description="Most layers one job may name (or 'all-conv' expand to).")
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
    preview_seconds: float = Field(
        default=1.0,
        ge=0.25,  # no more often than progress is written: the event stream's length bound counts on it
        description="Least seconds between two `preview` events of a job that asked for previews.",
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
    cache_dir: Path = Field(
        default=Path("var/cache"), description="Local backend: where the result cache keeps its entries."
    )
    cache_max_bytes: int = Field(
        default=2 * 1024**3,
        ge=0,
        description="Bytes of pictures kept (live jobs' included); least recently used go first.",
    )
    torch_threads: int | None = Field(
        default=None, ge=1, description="CPU threads per render process; unset: the usable cores / render processes."
    )

    # -- object storage: results, uploads and the cache in a local directory (default) or an S3 bucket --
    storage_backend: Literal["local", "s3"] = Field(
        default="local",
        description="Where results, uploads and the cache are kept: `local` (storage_dir, upload_dir, cache_dir) "
        "or `s3` (an S3-compatible bucket, so no process needs a shared disk).",
    )
    s3_bucket: str | None = Field(default=None, description="The bucket (it must exist); required for `s3`.")
    s3_endpoint_url: str | None = Field(
        default=None, description="The S3 endpoint, e.g. http://minio:9000; unset: AWS's own for the region."
    )
    s3_region: str | None = Field(default=None, description="The bucket's region; unset: boto3's default.")
    s3_access_key_id: str | None = Field(
        default=None, description="With the secret: the S3 credentials; unset: boto3's own chain (env, profile, role)."
    )
    s3_secret_access_key: SecretStr | None = Field(default=None, description="The secret of s3_access_key_id.")
    s3_addressing_style: Literal["path", "virtual", "auto"] = Field(
        default="auto", description="Bucket in the path (MinIO and most self-hosted stores) or in the host name."
    )
    s3_prefix: str = Field(
        default="", description="Key prefix of every object, so one bucket can hold several deployments."
    )
    picture_delivery: Literal["stream", "redirect"] = Field(
        default="stream",
        description="`stream`: the API sends pictures itself; `redirect` (s3 only): a 307 to a presigned URL of "
        "the bucket, so picture bytes bypass the API.",
    )
    presign_seconds: int = Field(
        default=300, ge=1, le=7 * 24 * 3600, description="How long a presigned picture URL is valid."
    )

    # -- image sets and dataset examples (top-k natural images per filter) --
    max_dataset_images: int = Field(
        default=1000,
        ge=1,
        description="Most images one image set (POST /v1/datasets) may hold, archives' members counted.",
    )
    max_dataset_bytes: int = Field(
        default=100 * 1024 * 1024,
        ge=1024,
        description="Largest image-set upload in bytes, and the most its archives may hold uncompressed.",
    )
    examples_top_k: int = Field(default=9, ge=1, le=64, description="Dataset examples kept per filter.")
    examples_size: int = Field(
        default=224, ge=16, le=512, description="Side of the square view of each image an examples index ranks."
    )
    examples_batch_size: int = Field(
        default=32, ge=1, description="Images per forward pass of an examples index build."
    )

    # -- metrics (Prometheus): the API's /metrics, a worker's exporter port --
    api_metrics: bool = Field(
        default=True,
        description="Serve GET /metrics on the API (open, like /healthz: no API key, no rate limit); false: no route.",
    )
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="The port of a worker's Prometheus exporter (deployments: 9100); unset: no exporter.",
    )
    metrics_host: str = Field(default="0.0.0.0", description="The address a worker's exporter listens on.")

    @model_validator(mode="after")
    def _known_models(self) -> "Settings":
        """Unset, ``models`` is every known model. A malformed models file, or a model no worker can
        publish (it would keep /readyz "not ready" forever), stops the process at start."""
        try:
            known = list(model_table(self.models_file))
        except ModelsFileError as exc:
            raise ValueError(f"FILTERVIZ_MODELS_FILE: {exc}") from None
        if "models" not in self.model_fields_set:
            self.models = known
        unknown = [name for name in self.models if name not in known]
        if unknown:
            raise ValueError(f"unknown model(s) {', '.join(unknown)} in FILTERVIZ_MODELS; known: {', '.join(known)}")
        return self

    @model_validator(mode="after")
    def _storage_complete(self) -> "Settings":
        """An S3 backend without a bucket, or redirects without S3, would fail at the first picture: refuse at start."""
        if self.storage_backend == "s3" and not self.s3_bucket:
            raise ValueError("FILTERVIZ_STORAGE_BACKEND=s3 needs FILTERVIZ_S3_BUCKET")
        if self.picture_delivery == "redirect" and self.storage_backend != "s3":
            raise ValueError("FILTERVIZ_PICTURE_DELIVERY=redirect needs FILTERVIZ_STORAGE_BACKEND=s3")
        return self

    @field_validator("webhook_secret")
    @classmethod
    def _readable_secret(cls, secret: SecretStr | None) -> SecretStr | None:
        """A malformed secret stops the process at start, not at the first delivery."""
        if secret is not None:
            signing_key(secret.get_secret_value())  # raises ValueError with what is expected
        return secret
