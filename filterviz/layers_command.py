"""``filterviz layers``: a model's layer table, from filterviz.layers_cache where it was computed before.

A module of its own, so that the command imports neither torch (but for a table not cached yet) nor what
``render`` needs (PIL, tqdm): printing a cached table takes a fraction of a second.
"""

import argparse
import json

from core.errors import FilterVizError
from filterviz.cli import fail
from filterviz.layers_cache import cached_layers, keep_layers

CONV_TYPE = "Conv2d"  # LayerInfo.type of a conv layer (LayerInfo.is_conv), in the cached table


def add_layers_command(subparsers: argparse._SubParsersAction) -> None:
    layers = subparsers.add_parser("layers", help="list a model's visualizable layers (the seed's table)")
    layers.add_argument("model", help="model name, e.g. vgg16")
    layers.add_argument("--size", type=int, default=128, help="input side in pixels for the output shapes (128)")
    layers.add_argument("--json", action="store_true", help="print JSON instead of a table")
    layers.set_defaults(func=run_layers)


def run_layers(args: argparse.Namespace) -> int:
    """The table from filterviz.layers_cache where it was computed before (no torch), else from the engine."""
    size = (args.size, args.size)
    layers = cached_layers(args.model, size)
    if layers is None:
        from core.engine import list_layers

        try:
            layers = [layer.to_dict() for layer in list_layers(args.model, size)]
        except FilterVizError as error:
            return fail(str(error))
        keep_layers(args.model, size, layers)
    if args.json:
        print(json.dumps(layers, indent=2))
        return 0
    rows = [("Layer (type)", "Alias", "Output shape (C, H, W)", "Param #", "Filters")]
    for layer in layers:
        shape = "(" + ", ".join(map(str, layer["output_shape"])) + ")"
        name, params = f"{layer['name']} ({layer['type']})", f"{layer['params']:,}"
        rows.append((name, ",".join(layer["aliases"]), shape, params, str(layer["filters"])))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if index == 0:
            print("=" * (sum(widths) + 2 * (len(widths) - 1)))
    conv_params = sum(layer["params"] for layer in layers if layer["type"] == CONV_TYPE)
    print(f"Total params (conv layers): {conv_params:,}")
    return 0
