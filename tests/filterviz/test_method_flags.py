"""The command line's --method maco|accentuate and --transparency."""

import json
from pathlib import Path

from PIL import Image

from filterviz.cli import main

CAT = Path(__file__).parents[1] / "data" / "cat.jpg"
TINY = ["render", "--model", "efficientnet_lite0", "--layer", "blocks.2", "--steps", "2", "--filters", "0"]


def test_maco_with_transparency_writes_rgba_pngs(tmp_path: Path) -> None:
    assert main([*TINY, "--size", "32", "--method", "maco", "--transparency", "--out", str(tmp_path)]) == 0
    assert Image.open(tmp_path / "filter_0000.png").mode == "RGBA"
    request = json.loads((tmp_path / "result.json").read_text())["request"]
    assert (request["method"], request["transparency"]) == ("maco", True)


def test_accentuate_starts_from_the_init_image_at_its_aspect_ratio(tmp_path: Path) -> None:
    args = [*TINY, "--method", "accentuate", "--init-image", str(CAT), "--out", str(tmp_path)]
    assert main(args) == 0
    assert Image.open(tmp_path / "filter_0000.png").size == (192, 128)  # the 451 x 300 cat, short side 128


def test_accentuate_without_an_init_image_exits_2_naming_init(tmp_path: Path, capsys) -> None:
    assert main([*TINY, "--method", "accentuate", "--out", str(tmp_path)]) == 2
    assert "init: " in capsys.readouterr().err


def test_transparency_of_classic_exits_2(tmp_path: Path, capsys) -> None:
    assert main([*TINY, "--transparency", "--out", str(tmp_path)]) == 2
    assert "transparency: " in capsys.readouterr().err
