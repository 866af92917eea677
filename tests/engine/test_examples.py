"""Dataset examples in the engine: top-k over a stream of batches, receptive fields by gradient, crops."""

import io

import torch
from PIL import Image
from torch import nn

from core.engine.examples import (
    IndexRequest,
    TopImages,
    build_example_index,
    pixels_of,
    receptive_field,
    top_examples,
)

SIDE = 32


def planted_network() -> nn.Sequential:
    """Sequential(normalize, network): a 3x3 conv whose filter c is the sum of input channel c over 3x3 pixels,
    then a 1x1 conv with a planted filter 3 that fires on red minus green."""
    first = nn.Conv2d(3, 3, 3, padding=1, bias=False)
    second = nn.Conv2d(3, 4, 1, bias=False)
    with torch.no_grad():
        first.weight.zero_()
        for channel in range(3):
            first.weight[channel, channel] = 1.0
        second.weight.zero_()
        for channel in range(3):
            second.weight[channel, channel] = 1.0
        second.weight[3, 0], second.weight[3, 1] = 1.0, -1.0
    return nn.Sequential(nn.Identity(), nn.Sequential(first, nn.ReLU(), second)).eval()


def picture(color: tuple[int, int, int], spot: tuple[int, int] | None = None) -> Image.Image:
    image = Image.new("RGB", (SIDE, SIDE), color)
    if spot is not None:  # a 2x2 spot at (y, x)
        for dy in range(2):
            for dx in range(2):
                image.putpixel((spot[1] + dx, spot[0] + dy), (255, 0, 0))
    return image


def pixels(pictures: list[Image.Image]) -> torch.Tensor:
    return pixels_of(pictures, "cpu")


def test_an_image_made_to_excite_the_planted_filter_ranks_first_at_its_spot() -> None:
    images = [picture((90, 90, 90)), picture((40, 40, 40), spot=(20, 9)), picture((0, 200, 0)), picture((120, 60, 60))]
    batches = [([0, 1], pixels(images[:2])), ([2, 3], pixels(images[2:]))]
    top = top_examples(planted_network(), "2", batches, k=2, relu=False)
    ranked = top.examples()
    assert len(ranked) == 4 and all(len(examples) == 2 for examples in ranked)
    red_minus_green = ranked[3]
    assert red_minus_green[0].image == 1  # the red spot: 4 pixels of 255 in its 3x3 window
    assert red_minus_green[0].position in {(20, 9), (20, 10), (21, 9), (21, 10)}
    assert red_minus_green[0].activation == 4 * 255  # red: 4 * 255 + 5 * 40 in the window, green: 5 * 40
    assert red_minus_green[1].image == 3  # reddish everywhere: 9 * (120 - 60)
    assert ranked[1][0].image == 2  # green
    assert ranked[1][0].activation == 9 * 200


def test_streaming_in_batches_equals_one_pass_and_ties_keep_the_earlier_image() -> None:
    maps = torch.rand(10, 5, 3, 3, generator=torch.Generator().manual_seed(1))
    maps[7] = maps[2]  # a tie: image 2 and image 7 score alike on every filter
    whole, streamed = TopImages(4), TopImages(4)
    whole.add(maps, range(10))
    for first in range(0, 10, 3):
        streamed.add(maps[first : first + 3], range(first, min(first + 3, 10)))
    assert whole.examples() == streamed.examples()
    for f, examples in enumerate(whole.examples()):
        scores = maps[:, f].flatten(1).max(dim=1).values
        assert [e.image for e in examples] == torch.sort(scores, descending=True, stable=True).indices[:4].tolist()
        images = [e.image for e in examples]
        assert 7 not in images or 2 in images[: images.index(7)]


def test_receptive_field_of_convs_and_strides_measured_by_gradient() -> None:
    torch.manual_seed(0)
    # 3x3/1 pad 1, then 3x3/2 pad 1: position y sees input rows 2y-2 .. 2y+2 (5 pixels, stride 2)
    network = nn.Sequential(nn.Conv2d(3, 4, 3, 1, 1), nn.ReLU(), nn.Conv2d(4, 4, 3, 2, 1), nn.MaxPool2d(2))
    model = nn.Sequential(nn.Identity(), network)
    field = receptive_field(model, "2", 16, "cpu", mass=1.0)
    assert (field.rows.origin, field.rows.stride, field.rows.extent) == (-2.0, 2.0, 5)
    assert field.box((3, 5), (16, 16)) == (8, 4, 13, 9)  # (left, top, right, bottom)
    assert field.box((0, 0), (16, 16)) == (0, 0, 3, 3)  # clipped at the edge
    pooled = receptive_field(model, "3", 16, "cpu", mass=1.0)  # + 2x2/2 max pool: 7 pixels, stride 4
    assert (pooled.rows.origin, pooled.rows.stride, pooled.rows.extent) == (-2.0, 4.0, 7)
    effective = receptive_field(model, "3", 16, "cpu")
    assert effective.rows.extent is not None and effective.rows.extent <= 7


def test_a_field_that_reaches_the_edges_at_every_size_is_the_whole_picture() -> None:
    network = nn.Sequential(nn.Conv2d(3, 2, 3, padding=1), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(8, 3))
    field = receptive_field(nn.Sequential(nn.Identity(), network), "3", 16, "cpu")  # the logits: one position
    assert field.rows.extent is None and field.columns.extent is None
    assert field.box((0, 0), (40, 30)) == (0, 0, 30, 40)


def test_an_index_names_each_examples_crop_at_its_field() -> None:
    images = [picture((40, 40, 40), spot=(20, 9)), picture((120, 60, 60)), picture((0, 200, 0))]
    request = IndexRequest("toy", "w", "toy", "2", False, "set", "fp", k=2, side=SIDE, batch_size=2)
    index, pngs = build_example_index(planted_network(), request, ["spot", "red", "green"], images.__getitem__, "cpu")
    best = index.filters[3][0]
    assert (index.images[best.image], index.forward_passes, index.grid) == ("spot", 2, (SIDE, SIDE))
    y, x = best.position
    assert best.box == (max(0, x - 1), max(0, y - 1), x + 2, y + 2)  # the 3x3 window around the position
    crop = Image.open(io.BytesIO(pngs[best.crop]))
    assert crop.size == (3, 3) and crop.getpixel((1, 1)) == (255, 0, 0)
    assert set(index.thumbnails) == {e.image for examples in index.filters for e in examples}
