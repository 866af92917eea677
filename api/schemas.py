"""Response bodies (a job's own view, shared with the webhooks, is core.job_view.Job)."""

from typing import Literal

from pydantic import BaseModel, Field

from core.catalog import LayerEntry, ModelEntry, ModelFacts
from core.job_view import Job
from core.spec import RenderSpec
from core.webhook_targets import MAX_URL_LENGTH


class JobRequest(RenderSpec):
    """The body of POST /v1/jobs: a render request, and what the service does around it."""

    webhook: str | None = Field(
        default=None,
        max_length=MAX_URL_LENGTH,
        description="an http(s) URL that receives the job (POST, Standard Webhooks signature) when it starts, "
        "succeeds, fails or is canceled; the host must resolve to public addresses",
        examples=["https://example.com/hooks/filterviz"],
    )

    def spec(self) -> RenderSpec:
        """What determines the pictures (the webhook does not): the fields as validated, not validated again."""
        fields = {name: getattr(self, name) for name in RenderSpec.model_fields}
        return RenderSpec.model_construct(self.model_fields_set - {"webhook"}, **fields)


class JobPage(BaseModel):
    jobs: list[Job] = Field(description="newest first")
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last page")


class UploadedImage(BaseModel):
    id: str = Field(description="use as init.image_id in POST /v1/jobs", examples=["0123456789abcdef0123456789abcdef"])
    width: int
    height: int


class ModelSummary(ModelFacts):
    layers: int = Field(description="how many layers can be visualized")
    layers_url: str

    @classmethod
    def from_entry(cls, entry: ModelEntry) -> "ModelSummary":
        return cls(
            **entry.model_dump(exclude={"layers"}),
            layers=len(entry.layers),
            layers_url=f"/v1/models/{entry.name}/layers",
        )


class ModelLayers(BaseModel):
    model: str
    size: tuple[int, int] = Field(description="input size the shapes are for, [h, w]")
    layers: list[LayerEntry]


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready"]
    workers: list[str] = Field(description="live workers")
