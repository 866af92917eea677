"""``filterviz models check FILE.toml``: a models file's entries checked as a worker checks them at start.

It prints what the catalog will show for each entry (architecture, classes, layers with a few of
their shapes) and renders one step of each at its default size; a bad entry prints its reason, and
the command exits 2 — before a deployment restarts its workers with the file.
"""

import argparse
import time
from pathlib import Path

from core.catalog import ModelEntry
from core.errors import FilterVizError
from core.model_config import ModelsFileError, model_table, read_models_file
from core.settings import Settings
from core.spec import RenderSpec
from filterviz.render_command import fail

SHOWN_LAYERS = 4  # layer names with shapes printed per model: the first, some middle ones, the last


def add_models_commands(subparsers: argparse._SubParsersAction) -> None:
    models = subparsers.add_parser("models", help="a deployment's own models (FILTERVIZ_MODELS_FILE)")
    commands = models.add_subparsers(dest="models_command", required=True, metavar="SUBCOMMAND")
    check = commands.add_parser(
        "check", help="check a models file's entries and print what the catalog will show (exit 2: a bad entry)"
    )
    check.add_argument("file", type=Path, help="the TOML file, as FILTERVIZ_MODELS_FILE would name it")
    check.set_defaults(func=run_check)


def run_check(args: argparse.Namespace) -> int:
    try:
        names = list(read_models_file(args.file))
        settings = Settings(models_file=args.file, models=list(model_table(args.file)))
    except ModelsFileError as error:
        return fail(str(error))
    from core.engine import models
    from core.engine.runtime import configure_process
    from worker.catalog import checked_entry

    configure_process(settings.torch_threads)
    models.use_models_file(args.file)
    bad = 0
    for name in names:
        try:
            entry = checked_entry(name, settings.weights_dir)
            seconds = _render_once(entry, settings)
        except FilterVizError as error:
            bad += 1
            print(f"✗ {name}: unavailable: {error}")
            continue
        _print_entry(entry, seconds)
    print(f"{len(names) - bad} of {len(names)} models ok" + (f"; {bad} unavailable" if bad else ""))
    return 2 if bad else 0


def _render_once(entry: ModelEntry, settings: Settings) -> float:
    """One step of class 0 at the default size: the whole network runs forward and back on its weights."""
    from core.engine import render

    side = entry.default_size
    spec = RenderSpec(model=entry.name, objective="class", filters=[0], steps=1, size=(side, side))
    started = time.monotonic()
    render(spec, weights_dir=settings.weights_dir, device="cpu", memory_budget_mb=settings.memory_budget_mb)
    return time.monotonic() - started


def _print_entry(entry: ModelEntry, seconds: float) -> None:
    layers = entry.layers
    picked = sorted({0, len(layers) // 3, 2 * len(layers) // 3, len(layers) - 1})[:SHOWN_LAYERS] if layers else []
    facts = f"{entry.architecture}, {entry.num_classes} classes, {len(layers)} layers, weights {entry.weights_file}"
    print(f"✓ {entry.name}: {facts}")
    for index in picked:
        layer = layers[index]
        aliases = f" ({', '.join(layer.aliases)})" if layer.aliases else ""
        shape = "×".join(map(str, layer.output_shape))
        print(f"    {layer.name}{aliases}: {layer.type} {shape} at {entry.default_size} px, {layer.filters} filters")
    print(f"    renders at {entry.default_size}x{entry.default_size}: loaded and one step in {seconds:.1f} s")
