import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

from filterviz.cli import main

DATA = Path(__file__).parents[1] / "data"
SMALL_LITE0 = ["render", "--model", "efficientnet_lite0", "--layer", "blocks.2", "--steps", "3", "--size", "48"]


def test_the_console_script_prints_the_seed_table():
    done = subprocess.run([sys.executable, "-m", "filterviz", "layers", "vgg16"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == [
        "Layer",
        "(type)",
        "Alias",
        "Output",
        "shape",
        "(C,",
        "H,",
        "W)",
        "Param",
        "#",
        "Filters",
    ]
    assert "block4_conv1 (Conv2d)    features.17  (512, 16, 16)           1,180,160  512" in lines
    assert lines[-1] == "Total params (conv layers): 14,714,688"
    assert len(lines) == 2 + 18 + 1


def test_layers_as_json(capsys):
    assert main(["layers", "vgg16", "--size", "224", "--json"]) == 0
    layers = json.loads(capsys.readouterr().out)
    assert len(layers) == 18
    assert layers[0] == {
        "name": "block1_conv1",
        "aliases": ["features.0"],
        "module_path": "features.0",
        "relu": True,
        "type": "Conv2d",
        "output_shape": [64, 224, 224],
        "params": 1792,
        "filters": 64,
    }


def test_render_writes_pngs_a_grid_and_a_result(tmp_path, capsys):
    assert main([*SMALL_LITE0, "--filters", "0-1,5", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "filter_0000.png",
        "filter_0001.png",
        "filter_0005.png",
        "grid.png",
        "result.json",
    ]
    assert Image.open(tmp_path / "filter_0005.png").size == (48, 48)
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["request"]["filters"] == [0, 1, 5]
    assert [f["filter"] for f in result["filters"]] == [0, 1, 5]
    assert all(f["activation"] > f["start_activation"] for f in result["filters"])
    assert set(result["seconds"]) == {"load", "optimize", "encode"}
    assert "efficientnet_lite0 blocks.2: 3 filters" in capsys.readouterr().out


def test_render_from_the_cat(tmp_path):
    assert main([*SMALL_LITE0, "--filters", "0", "--init-image", str(DATA / "cat.jpg"), "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["request"]["init"]["type"] == "image"


def test_the_sweep_renders_every_conv_layer(tmp_path, vgg16_home):
    args = ["render", "--layer", "all-conv", "--filters", "0-1", "--steps", "1", "--size", "32", "--out", str(tmp_path)]
    assert main(args) == 0
    expected = [f"block{b}_conv{c}" for b, convs in enumerate((2, 2, 3, 3, 3), 1) for c in range(1, convs + 1)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(expected)
    assert all((tmp_path / layer / "grid.png").is_file() for layer in expected)


def test_bad_requests_exit_non_zero_listing_what_is_valid(tmp_path, capsys):
    cases = [
        (["--filters", "0-50"], "layer blocks.2 of efficientnet_lite0 has 40 filters (0-39); out of range: 40, 41"),
        (["--filters", "x"], "filters: Value error, cannot read 'x' as a filter"),
        (["--filters", "0", "--layer", "nope"], "has no layer 'nope'; valid layers: conv_stem, bn1, "),
        (["--filters", "0", "--model", "nope"], "unknown model 'nope'; valid models: vgg16, vgg19, "),
        (["--filters", "0", "--init-image", str(DATA)], f"cannot read {DATA}"),
        (["--filters", "0", "--init-image", __file__], "not a readable image: PNG, JPEG are accepted"),
    ]
    for extra, message in cases:
        assert main([*SMALL_LITE0, *extra, "--out", str(tmp_path)]) == 2
        assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing written for a refused request


def test_an_unwritable_out_names_the_directory_and_what_is_wrong(tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "a file"
    blocker.write_text("in the way")
    out = blocker / "out"
    assert main([*SMALL_LITE0, "--filters", "0", "--out", str(out)]) == 2
    assert capsys.readouterr().err == f"filterviz: error: cannot write to the output directory {out}: Not a directory\n"

    def refuse(path: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(Path, "mkdir", refuse)  # as if run without permission (these tests may run as root)
    assert main([*SMALL_LITE0, "--filters", "0", "--out", "/unwritable"]) == 2
    assert (
        capsys.readouterr().err
        == "filterviz: error: cannot write to the output directory /unwritable: Permission denied\n"
    )
