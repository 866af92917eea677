"""Accentuation from photos: how much each method raises the target, and how much of the photo is left.

    python -m bench.accentuation [--filters 4] [--steps N] [--quick]

For the cat (tests/data/cat.jpg) and two more of scikit-image's photos, EfficientNet-Lite0's
``blocks.3`` with the channel objective (filters 0..N-1) and the layer objective (DeepDream), each
of classic, robust and accentuate starts from the photo at its aspect ratio (short side 128, or
``--side``). Per
picture: the target's activation on the 8-bit picture against the photo's own, and the picture's
SSIM to the photo (scikit-image's structural_similarity, 1 = the photo itself). Grids (the photo
first) land in var/bench-accentuation/.
"""

import argparse
import io
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from skimage import data
from skimage.metrics import structural_similarity

from core.engine import render
from core.engine.codec import encode_png, image_to_pixels
from core.grid import encode_grid
from core.spec import RenderSpec

OUT = Path("var/bench-accentuation")
CAT = Path(__file__).resolve().parents[1] / "tests" / "data" / "cat.jpg"
METHODS = ("classic", "robust", "accentuate")
MODEL, LAYER = "efficientnet_lite0", "blocks.3"


def photos(quick: bool) -> dict[str, Image.Image]:
    chosen = {"cat": Image.open(CAT).convert("RGB")}
    if not quick:
        chosen["astronaut"] = Image.fromarray(data.astronaut())
        chosen["coffee"] = Image.fromarray(data.coffee())
    return chosen


def similarity(photo: np.ndarray, png: bytes | None) -> float:
    assert png is not None
    picture = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    return float(structural_similarity(photo, picture, channel_axis=2, data_range=255))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--filters", type=int, default=4)
    parser.add_argument("--steps", type=int, help="every method's steps (default: each method's own)")
    parser.add_argument("--side", type=int, default=128, help="the photos' short side in pixels (128)")
    parser.add_argument("--quick", action="store_true", help="the cat only, 2 filters")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    filters = list(range(2 if args.quick else args.filters))
    print(
        f"{'photo':10}{'objective':11}{'method':12}{'steps':>6}{'seconds':>9}{'photo act':>11}{'act':>9}"
        f"{'gain':>8}{'SSIM':>7}"  # gain: act - photo act (a ratio means nothing where the photo's is negative)
    )
    started = time.perf_counter()
    for name, image in photos(args.quick).items():
        scale = args.side / min(image.width, image.height)
        size = (round(image.height * scale), round(image.width * scale))  # as the service sizes a photo
        photo = image_to_pixels(image, size).permute(1, 2, 0).round().numpy().astype(np.uint8)
        for objective, targets in (("channel", filters), ("layer", None)):
            tiles, labels = [encode_png(torch.from_numpy(photo))], ["photo"]
            for method in METHODS:
                spec = RenderSpec(
                    model=MODEL,
                    layer=LAYER,
                    filters=targets,
                    objective=objective,
                    method=method,
                    size=size,
                    steps=args.steps,
                    init={"type": "image", "image_id": "0" * 32},
                )
                began = time.perf_counter()
                result = render(spec, init_image=image, device="cpu")
                seconds = time.perf_counter() - began
                pictures = result.pictures
                start = np.mean([p.start_activation for p in pictures])
                reached = np.mean([p.activation for p in pictures])
                ssim = np.mean([similarity(photo, p.png) for p in pictures])
                print(
                    f"{name:10}{objective:11}{method:12}{spec.steps:6d}{seconds:9.1f}{start:11.3f}{reached:9.3f}"
                    f"{reached - start:+8.3f}{ssim:7.2f}",
                    flush=True,
                )
                tiles += [p.png or b"" for p in pictures]
                labels += [f"{method} {p.filter}" if objective == "channel" else method for p in pictures]
            (OUT / f"{name}-{objective}.png").write_bytes(encode_grid(tiles, labels))
    print(f"\ngrids: {OUT}/ ({time.perf_counter() - started:.0f} s in all)")


if __name__ == "__main__":
    main()
