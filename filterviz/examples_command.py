"""``filterviz examples``: the dataset examples of some filters, in this process (as ``filterviz render``).

The images are the built-in demo set or a folder's PNG/JPEG files (and zip/tar archives of them), read and
normalized as an uploaded image set is; the ranking, the receptive fields and the crops are the service's
(core.engine.examples). The engine (torch) is imported inside the command.
"""

import argparse
import io
import json
from pathlib import Path

from PIL import Image, ImageOps

from core.demo_images import DEMO_DATASET, demo_images
from core.errors import FilterVizError, InvalidImageSet, StorageError
from core.example_index import THUMBNAIL_SIDE, ExampleIndex, png_bytes, view_of
from core.grid import GRID_BACKGROUND, encode_grid
from core.image_sets import IMAGE_SUFFIXES, ImageSetLimits, SetImage, read_image_set
from core.settings import Settings
from core.spec import FILTER_SPEC_HELP, parse_filters
from filterviz.render_command import fail

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tgz", ".gz", ".bz2", ".xz")


def add_examples_command(subparsers: argparse._SubParsersAction) -> None:
    examples = subparsers.add_parser("examples", help="the images of a set that excite some filters most, with crops")
    examples.add_argument("--model", default="efficientnet_lite0")
    examples.add_argument("--layer", required=True, help="layer name or module path")
    examples.add_argument("--filters", default="0-7", help=FILTER_SPEC_HELP)
    examples.add_argument(
        "--dataset", default=DEMO_DATASET, help="'demo' (scikit-image's photos and crops), or a folder of images"
    )
    examples.add_argument("--k", type=int, help="images per filter (default FILTERVIZ_EXAMPLES_TOP_K, 9)")
    examples.add_argument("--size", type=int, help="side of each image's square view (default 224)")
    examples.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    examples.add_argument("--out", type=Path, help="directory for crops, thumbnails, contact sheets, examples.json")
    examples.set_defaults(func=run_examples)


def run_examples(args: argparse.Namespace) -> int:
    """Rank the set for the layer, print each filter's top images, and store their pictures in --out."""
    settings = Settings()
    try:
        filters = parse_filters(args.filters)
    except ValueError as error:
        return fail(f"--filters: {error}")
    try:
        images = _images(args.dataset, settings)
        index = _index(args, images, settings)
        beyond = [f for f in filters if f >= len(index.filters)]
        if beyond:
            return fail(f"layer {index.layer} has {len(index.filters)} filters; out of range: {beyond[:10]}")
        _print(index, filters)
        if args.out is not None:
            _write(args.out, index, images, filters)
    except FilterVizError as error:
        return fail(str(error))
    return 0


def _images(dataset: str, settings: Settings) -> list[SetImage]:
    if dataset == DEMO_DATASET:
        return demo_images()
    folder = Path(dataset)
    if not folder.is_dir():
        raise InvalidImageSet(f"--dataset {dataset}: neither 'demo' nor a folder")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in (*IMAGE_SUFFIXES, *ARCHIVE_SUFFIXES))
    limits = ImageSetLimits(
        max_images=settings.max_dataset_images,
        max_bytes=settings.max_dataset_bytes,
        max_image_bytes=settings.max_upload_bytes,
        max_image_pixels=settings.max_image_pixels,
        min_side=settings.min_size,
    )
    return read_image_set([(path.name, path.read_bytes()) for path in paths], limits)


def _index(args: argparse.Namespace, images: list[SetImage], settings: Settings) -> ExampleIndex:
    from core.engine import load_model, resolve_layer, weights_identity
    from core.engine.examples import IndexRequest, build_example_index
    from core.engine.runtime import configure_process, process_device

    configure_process(settings.torch_threads)
    device = process_device(args.device)
    side = args.size or settings.examples_size
    layer = resolve_layer(args.model, args.layer, side)
    request = IndexRequest(
        model=args.model,
        weights=weights_identity(args.model, settings.weights_dir),
        layer=layer.name,
        module_path=layer.module_path,
        relu=layer.relu,
        dataset=args.dataset,
        fingerprint="",
        k=args.k or settings.examples_top_k,
        side=side,
        batch_size=settings.examples_batch_size,
    )
    model = load_model(args.model, settings.weights_dir, device)

    names = [image.name for image in images]
    index, _ = build_example_index(model, request, names, lambda place: _view(images[place], side), device)
    return index


def _print(index: ExampleIndex, filters: list[int]) -> None:
    print(f"{index.model} {index.layer}: {len(index.images)} images in {index.seconds:.1f} s, top {index.k} by max")
    for f in filters:
        ranked = ", ".join(f"{index.images[e.image]} ({e.activation:.2f})" for e in index.filters[f])
        print(f"filter {f}: {ranked}")


def _write(out: Path, index: ExampleIndex, images: list[SetImage], filters: list[int]) -> None:
    """Per filter a folder of its crops and thumbnails (best first) and a contact sheet of the crops."""
    views = {e.image: _view(images[e.image], index.side) for f in filters for e in index.filters[f]}
    try:
        for f in filters:
            folder = out / f"filter_{f:04d}"
            folder.mkdir(parents=True, exist_ok=True)
            tiles, labels = [], []
            for rank, e in enumerate(index.filters[f], start=1):
                crop = views[e.image].crop(e.box)
                (folder / f"{rank:02d}_crop.png").write_bytes(png_bytes(crop))
                (folder / f"{rank:02d}_thumbnail.png").write_bytes(png_bytes(views[e.image]))
                tiles.append(png_bytes(ImageOps.pad(crop, (THUMBNAIL_SIDE, THUMBNAIL_SIDE), color=GRID_BACKGROUND)))
                labels.append(f"{e.activation:.1f}")
            (out / f"filter_{f:04d}.png").write_bytes(encode_grid(tiles, labels))
        chosen = {"filters": {str(f): [e.model_dump() for e in index.filters[f]] for f in filters}}
        summary = index.model_dump(exclude={"filters", "thumbnails"}) | chosen
        (out / "examples.json").write_text(json.dumps(summary, indent=2))
    except OSError as error:
        raise StorageError(f"cannot write {out}: {error.strerror}") from error


def _view(image: SetImage, side: int) -> Image.Image:
    return view_of(Image.open(io.BytesIO(image.png)).convert("RGB"), side)
