"""The public view of a job: what GET /v1/jobs/{id} answers and what a webhook carries. Torch-free.

It lives in core because two processes render it: the API, and the workers that send webhooks.
"""

from datetime import datetime
from urllib.parse import urlencode

from pydantic import BaseModel, Field

from core.jobs import JobError, JobRecord, JobStatus
from core.pictures import Picture
from core.spec import NoiseInit, RenderSpec

STABLE_OBJECTIVES = ("channel", "neuron")  # the objectives whose pictures are of one filter of a layer


def job_url(job_id: str) -> str:
    return f"/v1/jobs/{job_id}"


def filter_url(job_id: str, filter_index: int, variant: int = 0, extension: str = "png") -> str:
    return f"{job_url(job_id)}/filters/{filter_index}.{extension}" + (f"?variant={variant}" if variant else "")


def grid_url(job_id: str) -> str:
    return f"{job_url(job_id)}/grid.png"


def picture_url(spec: RenderSpec, filter_index: int, variant: int = 0) -> str | None:
    """The stable URL of a picture (GET /v1/pictures/...) with every setting that determines it; None for
    what it cannot name: a start photo, noise other than the default, objectives without a filter."""
    if spec.init != NoiseInit() or spec.objective not in STABLE_OBJECTIVES:
        return None
    height, width = spec.size
    query = {
        "method": spec.method,
        "objective": spec.objective,
        "steps": spec.steps,
        "step_size": spec.step_size,
        "size": str(height) if height == width else f"{height}x{width}",
        "seed": spec.seed,
        "precision": spec.precision,
        "diversity": spec.diversity,
        "variant": variant,
        "snapshots": spec.snapshots,
    }
    return f"/v1/pictures/{spec.model}/{spec.layer}/{filter_index}.png?{urlencode(query)}"


class Progress(BaseModel):
    step: int = Field(description="optimization steps done")
    steps: int


class PictureLink(Picture):
    """A picture of a job as clients see it: where to fetch it (and its animation) instead of an ``animation`` flag."""

    animation: bool = Field(default=False, exclude=True)
    url: str = Field(examples=["/v1/jobs/0123456789abcdef0123456789abcdef/filters/0.png"])
    animation_url: str | None = Field(description="animated WebP of the snapshots, when the request asked for them")
    picture_url: str | None = Field(
        default=None,
        description="the picture's stable URL (GET /v1/pictures/...), shareable and cached; null for a job that "
        "started from a photo",
        examples=["/v1/pictures/vgg16/block4_conv1/5.png?method=classic&steps=20&size=128&seed=0"],
    )

    @classmethod
    def of(cls, job_id: str, picture: Picture, spec: RenderSpec) -> "PictureLink":
        return cls(
            **picture.model_dump(),
            url=filter_url(job_id, picture.filter, picture.variant),
            picture_url=picture_url(spec, picture.filter, picture.variant),
            animation_url=filter_url(job_id, picture.filter, picture.variant, "webp") if picture.animation else None,
        )


class Job(BaseModel):
    id: str
    status: JobStatus
    request: RenderSpec = Field(description="the request, normalized (filters as a sorted list, size as [h, w])")
    progress: Progress
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int = Field(description="how many times a worker started this job")
    cancel_requested: bool
    results: list[PictureLink]
    grid_url: str | None
    error: JobError | None
    device: str | None = Field(description="where it rendered, e.g. cpu or cuda:0")
    seconds: dict[str, float] = Field(description="time spent, by phase")
    webhook: str | None = Field(description="where its start and end are POSTed (signed, Standard Webhooks)")

    @classmethod
    def from_record(cls, record: JobRecord) -> "Job":
        succeeded = record.status == "succeeded"
        return cls(
            id=record.id,
            status=record.status,
            request=record.request,
            progress=Progress(step=record.step, steps=record.steps),
            created_at=record.created_at,
            started_at=record.started_at,
            finished_at=record.finished_at,
            attempts=record.attempts,
            cancel_requested=record.cancel_requested,
            results=[PictureLink.of(record.id, picture, record.request) for picture in record.results],
            grid_url=grid_url(record.id) if succeeded else None,
            error=record.error,
            device=record.device,
            seconds=record.seconds,
            webhook=record.webhook,
        )
