"""The public view of a job: what GET /v1/jobs/{id} answers and what a webhook carries. Torch-free.

It lives in core because two processes render it: the API, and the workers that send webhooks.
"""

from datetime import datetime
from urllib.parse import quote, urlencode

from pydantic import BaseModel, Field

from core.jobs import JobError, JobRecord, JobStatus
from core.pictures import Picture
from core.spec import NoiseInit, RenderSpec

STABLE_OBJECTIVES = ("channel", "neuron")  # the objectives whose pictures are of one filter of a layer


def job_url(job_id: str) -> str:
    return f"/v1/jobs/{job_id}"


def layer_url(job_id: str, layer: str | None) -> str:
    """Where a job's pictures of ``layer`` are: under the job for a job of one layer (None), else under the layer."""
    return job_url(job_id) if layer is None else f"{job_url(job_id)}/layers/{quote(layer, safe='')}"


def filter_url(
    job_id: str, filter_index: int, variant: int = 0, extension: str = "png", layer: str | None = None
) -> str:
    return f"{layer_url(job_id, layer)}/filters/{filter_index}.{extension}" + (f"?variant={variant}" if variant else "")


def grid_url(job_id: str, layer: str | None = None) -> str:
    return f"{layer_url(job_id, layer)}/grid.png"


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
    def of(cls, job_id: str, picture: Picture, part: RenderSpec, several: bool) -> "PictureLink":
        """``part``: the single-layer request of the picture's layer; ``several``: the job has several layers,
        so its pictures are found under their layer."""
        at = part.layer if several else None
        f, v = picture.key
        return cls(
            **picture.model_dump(exclude={"layer"}),
            layer=part.layer,
            url=filter_url(job_id, f, v, layer=at),
            picture_url=picture_url(part, f, v),
            animation_url=filter_url(job_id, f, v, "webp", at) if picture.animation else None,
        )


class LayerGrid(BaseModel):
    layer: str = Field(examples=["block4_conv1"])
    url: str = Field(examples=["/v1/jobs/0123456789abcdef0123456789abcdef/layers/block4_conv1/grid.png"])


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
    results: list[PictureLink] = Field(description="by layer, then filter and variant")
    grid_url: str | None = Field(
        description="the contact sheet of a succeeded job of one layer; null for a job of several layers: see grids"
    )
    grids: list[LayerGrid] = Field(description="a succeeded job's contact sheet of each layer, in the request's order")
    error: JobError | None
    device: str | None = Field(description="where it rendered, e.g. cpu or cuda:0")
    seconds: dict[str, float] = Field(description="time spent, by phase")
    webhook: str | None = Field(description="where its start and end are POSTed (signed, Standard Webhooks)")

    @classmethod
    def from_record(cls, record: JobRecord) -> "Job":
        succeeded = record.status == "succeeded"
        request, several = record.request, record.request.layers is not None
        parts = {part.layer: part for part in request.parts()}
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
            results=[
                PictureLink.of(record.id, picture, parts.get(picture.layer, request), several)
                for picture in record.results
            ],
            grid_url=grid_url(record.id) if succeeded and not several else None,
            grids=[
                LayerGrid(layer=part.layer or "", url=grid_url(record.id, part.layer if several else None))
                for part in parts.values()
                if succeeded
            ],
            error=record.error,
            device=record.device,
            seconds=record.seconds,
            webhook=record.webhook,
        )
