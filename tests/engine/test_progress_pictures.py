"""The engine's current pictures, made only when a progress callback asks: what a live preview shows."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from core.engine import Progress, RenderRequest, check_spec, render_batch
from core.engine.batch_plan import Row
from core.spec import RenderSpec

SPECS = [
    RenderSpec(model="efficientnet_lite0", layer="blocks.2", filters="0-2", size=32, steps=4, seed=11),
    RenderSpec(model="efficientnet_lite0", layer="blocks.1", filters="5", size=32, steps=4, seed=12),
]


@pytest.mark.parametrize("method", ["classic", "robust"])
def test_the_pictures_at_the_last_step_are_the_final_pictures(method: str) -> None:
    specs = [spec.model_copy(update={"method": method}) for spec in SPECS]
    asked: dict[int, list[list[tuple[int, int, np.ndarray]]]] = {0: [], 1: []}

    def on_progress(progress: Progress) -> None:
        for request in progress:
            asked[request].append([(p.filter, p.variant, p.pixels.numpy()) for p in progress.pictures(request)])

    results = dict(render_batch([RenderRequest(spec) for spec in specs], device="cpu", on_progress=on_progress))

    for request, spec in enumerate(specs):
        steps = asked[request]
        assert len(steps) >= spec.steps  # a call per step (more where the rows fill several chunks)
        last = [pictures for pictures in steps if pictures][-1]
        assert [(f, v) for f, v, _ in last] == [(f, 0) for f in spec.filters or ()]
        for (_, _, pixels), picture in zip(last, results[request].pictures, strict=True):
            assert pixels.shape == (32, 32, 3) and pixels.dtype == np.uint8
            assert picture.png is not None
            final = np.asarray(Image.open(io.BytesIO(picture.png)).convert("RGB"))
            assert np.array_equal(pixels, final)  # the preview is what the picture is at that step


def test_a_step_nobody_asks_about_makes_no_pictures_and_one_that_asks_makes_them_once() -> None:
    made = []

    def shown() -> torch.Tensor:
        made.append(1)
        return torch.zeros(3, 8, 8, 3, dtype=torch.uint8)

    layer = check_spec(SPECS[0])
    rows = [Row(request, f, 0, seed=0, layer=layer, cost=0.0) for request, f in [(0, 4), (1, 2), (0, 7)]]
    unasked = Progress({0: (1, 5), 1: (1, 5)}, rows, shown)
    assert dict(unasked) == {0: (1, 5), 1: (1, 5)} and not made

    asked = Progress({0: (2, 5), 1: (2, 5), 2: (0, 5)}, rows, shown)
    assert [(p.filter, p.variant) for p in asked.pictures(0)] == [(4, 0), (7, 0)]
    assert [p.filter for p in asked.pictures(1)] == [2]
    assert asked.pictures(2) == []  # no rows in this chunk
    assert len(made) == 1
