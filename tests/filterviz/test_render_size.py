"""``filterviz render --init-image`` keeps the photo's aspect ratio unless --size is given."""

import json
from pathlib import Path

from PIL import Image

from filterviz.cli import main

CAT = Path(__file__).parents[1] / "data" / "cat.jpg"  # 451x300
LITE0_BLOCK1 = ["--model", "efficientnet_lite0", "--layer", "blocks.1", "--filters", "0", "--steps", "1"]
FROM_CAT = ["render", *LITE0_BLOCK1, "--init-image", str(CAT)]


def test_the_cat_renders_at_its_aspect_ratio(tmp_path: Path) -> None:
    assert main([*FROM_CAT, "--out", str(tmp_path)]) == 0
    assert Image.open(tmp_path / "filter_0000.png").size == (192, 128)  # (width, height): short side 128
    assert json.loads((tmp_path / "result.json").read_text())["request"]["size"] == [128, 192]


def test_an_explicit_size_wins(tmp_path: Path) -> None:
    assert main([*FROM_CAT, "--size", "64", "--out", str(tmp_path)]) == 0
    assert Image.open(tmp_path / "filter_0000.png").size == (64, 64)
