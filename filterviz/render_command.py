"""``filterviz render``: the engine from a terminal (``filterviz layers`` is filterviz.layers_command).

The engine (torch) is imported inside the command, so that parsing its arguments costs none of it.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError
from tqdm import tqdm

from core.errors import FilterVizError, InvalidImage, StorageError
from core.images import image_id_for, open_image
from core.settings import Settings
from core.spec import DEFAULT_SIDE, FILTER_SPEC_HELP, METHOD_DEFAULTS, RenderSpec, start_image_size
from filterviz.cli import fail

if TYPE_CHECKING:
    from PIL import Image

    from core.engine import RenderResult
    from core.pictures import Picture

_DEFAULTS = ", ".join(f"{m}: {d['steps']} steps of {d['step_size']}" for m, d in METHOD_DEFAULTS.items())

ALL_CONV = "all-conv"


def add_render_command(subparsers: argparse._SubParsersAction) -> None:
    render = subparsers.add_parser("render", help="render filter visualizations to PNG files")
    render.add_argument("--model", default="vgg16")
    render.add_argument("--layer", help=f"layer name or module path, or {ALL_CONV!r} for every conv layer")
    render.add_argument("--filters", help=f"{FILTER_SPEC_HELP} (class numbers for --objective class)")
    render.add_argument(
        "--method",
        choices=("classic", "robust", "maco", "accentuate"),
        default="classic",
        help="classic: the seed's pixel ascent; robust: Fourier + transforms + Adam (Lucid); maco: only the phase "
        "of a natural-image spectrum moves (MACO); accentuate: grow the filter's pattern into --init-image (faccent)",
    )
    render.add_argument(
        "--transparency",
        action="store_true",
        help="robust, maco, accentuate: RGBA PNGs whose alpha shows where the gradients were (MACO's attribution)",
    )
    render.add_argument("--objective", choices=("channel", "neuron", "layer", "class"), default="channel")
    render.add_argument("--diversity", type=int, default=1, help="different pictures per filter (1)")
    render.add_argument("--steps", type=int, help=f"default per method ({_DEFAULTS})")
    render.add_argument("--step-size", type=float, help="classic: pixels per step; the others: Adam's learning rate")
    render.add_argument("--snapshots", type=int, default=0, help="a frame every N steps, as an animated WebP")
    render.add_argument(
        "--size", type=_size, help="side in pixels, or HxW (128; from --init-image: 128 on its short side, aspect kept)"
    )
    render.add_argument("--seed", type=int, default=0)
    render.add_argument("--noise-mean", type=float, default=127.0)
    render.add_argument("--noise-std", type=float, default=10.0)
    render.add_argument("--init-image", type=Path, help="start from this PNG or JPEG instead of noise")
    render.add_argument("--strength", type=float, default=1.0, help="with --init-image: how far to move (0-1]")
    render.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    render.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        default="fp32",
        help="bf16: autocast, several times faster where the CPU has AMX/AVX512-BF16 or on a GPU",
    )
    render.add_argument("--out", type=Path, required=True, help="directory for the PNGs and result.json")
    render.set_defaults(func=run_render)


def _size(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size: use N or HxW, e.g. 128 or 96x128") from None
    if len(numbers) not in (1, 2):
        raise argparse.ArgumentTypeError(f"{text!r} is not a size: use N or HxW")
    return (numbers[0], numbers[-1])


def describe_validation_error(error: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'request'}: {e['msg']}" for e in error.errors())


def run_render(args: argparse.Namespace) -> int:
    """Render the request (one per conv layer for --layer all-conv) into --out; a bad request, an unreadable
    start image or an unwritable --out exits 2 with a message that names it."""
    from core.engine.runtime import configure_process

    settings = Settings()
    configure_process(settings.torch_threads)
    try:
        init_image, init = _start(args, settings)
        for spec in _specs(args, init, _render_size(args, init_image, settings)):
            out = args.out / (spec.layer or "") if args.layer == ALL_CONV else args.out
            _render_into(out, spec, init_image, args.device, settings)
    except ValidationError as error:
        return fail(describe_validation_error(error))
    except FilterVizError as error:
        return fail(str(error))
    return 0


def _start(args: argparse.Namespace, settings: Settings) -> tuple[Image.Image | None, dict]:
    """The start image (None: noise) and the request's ``init``; InvalidImage if --init-image cannot be read."""
    if args.init_image is None:
        return None, {"type": "noise", "mean": args.noise_mean, "std": args.noise_std}
    try:
        data = args.init_image.read_bytes()
    except OSError as error:
        raise InvalidImage(f"cannot read {args.init_image}: {error.strerror}") from error
    init_image = open_image(data, settings.max_image_pixels)
    return init_image, {"type": "image", "image_id": image_id_for(data), "strength": args.strength}


def _render_size(args: argparse.Namespace, init_image: Image.Image | None, settings: Settings) -> tuple[int, int]:
    """--size, or the start image's aspect ratio with its short side the default, or the default."""
    if args.size is not None:
        return args.size
    if init_image is not None:
        return start_image_size(init_image.width, init_image.height, settings.min_size, settings.max_size)
    return (DEFAULT_SIDE, DEFAULT_SIDE)


def _specs(args: argparse.Namespace, init: dict, size: tuple[int, int]) -> list[RenderSpec]:
    from core.engine import list_layers

    layers = [args.layer]
    if args.layer == ALL_CONV:
        layers = [layer.name for layer in list_layers(args.model, size) if layer.is_conv]
    common = {
        "model": args.model,
        "filters": args.filters,
        "method": args.method,
        "objective": args.objective,
        "diversity": args.diversity,
        "steps": args.steps,
        "step_size": args.step_size,
        "size": size,
        "seed": args.seed,
        "init": init,
        "snapshots": args.snapshots,
        "precision": args.precision,
        "transparency": args.transparency,
    }
    return [RenderSpec(layer=layer, **common) for layer in layers]


def _render_into(out: Path, spec: RenderSpec, init_image: Image.Image | None, device: str, settings: Settings) -> None:
    """Render ``spec`` with a progress bar and write its files to ``out``, made first: an unwritable directory
    is found before the render, not after it."""
    from core.engine import render

    with _writing_to(out):
        out.mkdir(parents=True, exist_ok=True)
    with tqdm(total=spec.steps, desc=spec.layer, unit="step", disable=None, leave=False) as bar:

        def advance(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        result = render(
            spec,
            init_image=init_image,
            weights_dir=settings.weights_dir,
            device=device,
            memory_budget_mb=settings.memory_budget_mb,
            on_progress=advance,
        )
    with _writing_to(out):
        _write_outputs(out, spec, result)
    took = f"{result.seconds['optimize']:.1f}s on {result.device}"
    print(f"{spec.model} {result.layer.name}: {len(result.pictures)} filters in {took} -> {out}")


@contextmanager
def _writing_to(out: Path) -> Iterator[None]:
    """A refused write (no permission, a file in the way, a full disk) is a StorageError that names the output
    directory, and the path refused where that is another one."""
    try:
        yield
    except OSError as error:
        refused = f" ({error.filename})" if error.filename and Path(error.filename) != out else ""
        raise StorageError(f"cannot write to the output directory {out}{refused}: {error.strerror}") from error


def picture_name(picture: Picture, suffix: str = ".png") -> str:
    """filter_0005.png; filter_0005_v1.png for the second of several diverse pictures."""
    return f"filter_{picture.filter:04d}" + (f"_v{picture.variant}" if picture.variant else "") + suffix


def _write_outputs(out: Path, spec: RenderSpec, result: RenderResult) -> None:
    """Each picture's PNG (and WebP animation), the grid, and result.json: the request and what each picture did."""
    for picture in result.pictures:
        assert picture.png is not None  # the engine's pictures carry their bytes
        (out / picture_name(picture)).write_bytes(picture.png)
        if picture.webp is not None:
            (out / picture_name(picture, ".webp")).write_bytes(picture.webp)
    (out / "grid.png").write_bytes(result.grid_png)
    summary = {
        "request": spec.model_dump(mode="json"),
        "layer": result.layer.to_dict(),
        "device": result.device,
        "seconds": result.seconds,
        "filters": [
            {
                "filter": picture.filter,
                "variant": picture.variant,
                "file": picture_name(picture),
                "activation": picture.activation,
                "start_activation": picture.start_activation,
                "dead": picture.dead,
            }
            for picture in result.pictures
        ],
    }
    (out / "result.json").write_text(json.dumps(summary, indent=2) + "\n")
