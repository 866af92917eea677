"""A picture: one rendered image of one filter, and what it does to that filter. Torch-free.

The one type for the concept: the engine returns it (with its encoded bytes), the result cache
stores it, a job record lists it among its results, and the API shows it with links added
(api.schemas). Its bytes travel with it only from the engine to storage: they are never part of
its JSON.
"""

from pydantic import BaseModel, ConfigDict, Field


class Picture(BaseModel):
    model_config = ConfigDict(frozen=True)

    layer: str | None = Field(
        default=None, description="the layer, as the request names it ('logits' for objective 'class')"
    )
    filter: int
    variant: int = Field(default=0, description="which of the request's `diversity` pictures of this filter")
    activation: float = Field(description="the objective (e.g. mean activation) the final 8-bit PNG produces")
    start_activation: float = Field(description="... and the start image")
    dead: bool = Field(default=False, description="the filter never fired: silent on the start image and the result")
    animation: bool = Field(default=False, description="an animated WebP of the snapshots exists")

    png: bytes | None = Field(default=None, exclude=True, repr=False)  # the encoded PNG, from the engine
    webp: bytes | None = Field(default=None, exclude=True, repr=False)  # the snapshots' animated WebP

    @property
    def key(self) -> tuple[int, int]:
        """(filter, variant): which picture of a request this is."""
        return (self.filter, self.variant)
