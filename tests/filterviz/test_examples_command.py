"""``filterviz examples``: the demo set's top images for a few filters of an early layer, printed and stored."""

import json
from pathlib import Path

import pytest
from PIL import Image

from core.demo_images import DEMO_PHOTOS, DEMO_TILINGS
from filterviz.cli import main
from tests.core.test_image_sets import png


def test_the_demo_sets_examples_are_printed_and_stored(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    command = ["examples", "--model", "efficientnet_lite0", "--layer", "blocks.0", "--filters", "0-1", "--k", "3"]
    assert main([*command, "--size", "64", "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    images = len(DEMO_PHOTOS) * sum(tiles * tiles for tiles in DEMO_TILINGS)
    assert lines[0].startswith(f"efficientnet_lite0 blocks.0: {images} images in ")
    assert [line.split(":")[0] for line in lines[1:]] == ["filter 0", "filter 1"]
    assert lines[1].count("(") == 3  # three "name (activation)"
    summary = json.loads((tmp_path / "examples.json").read_text())
    for f in (0, 1):
        examples = summary["filters"][str(f)]
        assert [e["activation"] for e in examples] == sorted((e["activation"] for e in examples), reverse=True)
        left, top, right, bottom = examples[0]["box"]
        assert Image.open(tmp_path / f"filter_{f:04d}" / "01_crop.png").size == (right - left, bottom - top)
        assert Image.open(tmp_path / f"filter_{f:04d}" / "01_thumbnail.png").size == (64, 64)
        assert Image.open(tmp_path / f"filter_{f:04d}.png").format == "PNG"  # the contact sheet


def test_a_folder_is_read_as_an_uploaded_set_and_bad_requests_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for n in range(2):
        (tmp_path / f"{n}.png").write_bytes(png((48, 48), seed=n))
    command = [
        "examples",
        "--layer",
        "blocks.0",
        "--filters",
        "3",
        "--k",
        "2",
        "--size",
        "48",
        "--dataset",
        str(tmp_path),
    ]
    assert main(command) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("filter 3: ")
    (tmp_path / "2.png").write_bytes(b"not a picture")
    assert main(command) == 2
    assert "2.png: not a readable image" in capsys.readouterr().err
    assert main([*command[:-2], "--dataset", "demo", "--filters", "99"]) == 2
