"""Process settings, read from the environment (prefix ``FILTERVIZ_``) once per process.

Nothing reads the environment at import time: the API's app factory, the worker's start-up and
the CLI each call :func:`Settings` (or receive one from a test).
"""

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

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
        description="Directory holding torchvision weight files; unset: torchvision's cache ($TORCH_HOME/hub/checkpoints).",
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    models: list[str] = Field(default=list(MODEL_NAMES), description="Models this deployment serves.")

    max_filters: int = Field(default=256, ge=1, description="Most filters one job may ask for.")
    max_steps: int = Field(default=1000, ge=1)
    max_size: int = Field(default=512, ge=16, description="Largest image side in pixels.")
    min_size: int = Field(default=16, ge=1, description="Smallest image side in pixels.")
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(default=40_000_000, ge=1, description="Larger images are refused (decompression bombs).")
    memory_budget_mb: int = Field(default=4096, ge=64, description="Activation memory one render chunk may use.")

    retention_seconds: int = Field(default=7 * 24 * 3600, ge=60, description="How long job records are kept.")
    job_soft_time_limit: int = Field(default=900, ge=1, description="Seconds before a running job is asked to stop.")
    job_time_limit: int = Field(default=960, ge=1, description="Seconds before a running job's worker is killed.")
    heartbeat_seconds: float = Field(default=2.0, gt=0, description="How often a running job proves its worker alive.")
    stale_after_seconds: float = Field(default=30.0, gt=0, description="A running job silent this long is requeued.")
    max_attempts: int = Field(default=3, ge=1, description="Deliveries of one job before it is failed.")
    describe_timeout_seconds: float = Field(
        default=10.0, gt=0, description="How long the API waits for a worker to list a model's layers at a new size."
    )
