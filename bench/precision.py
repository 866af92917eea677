"""What bf16 does to the pictures and to the time: fp32 against bf16, classic and robust, in one run.

    python -m bench.precision [--filters 8] [--size 128]

Each layer's filters are rendered with each method at its default steps, in fp32 and in bf16, and
every picture is scored as bench.quality scores it (testkit.scoring): the filter's mean
activation on the 8-bit PNG evaluated in fp32, the same under random moves of the PNG (structure,
not adversarial noise), and the fraction of dead filters. EfficientNet-Lite0 has real ImageNet weights; VGG16 uses its
real weights when present, else planted random ones (then its rows tell the speed, not the looks).
"""

import argparse

from bench.engine import plant_weights_if_missing
from bench.quality import engine_run
from core.engine import load_model, resolve_layer
from core.engine.runtime import configure_process
from core.spec import RenderSpec
from testkit.scoring import score

LAYERS = [("efficientnet_lite0", "blocks.3"), ("efficientnet_lite0", "blocks.5"), ("vgg16", "block4_conv1")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--filters", type=int, default=8)
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args()
    threads = configure_process()
    plant_weights_if_missing()
    filters = list(range(args.filters))

    print(
        f"\n{args.filters} filters, {args.size} px, default steps per method, {threads} threads; "
        "activations of the final PNGs in fp32"
    )
    print(
        f"{'layer':30}{'method':>8}{'activation fp32 / bf16':>26}{'moved fp32 / bf16':>24}{'dead':>11}"
        f"{'seconds fp32 / bf16':>23}"
    )
    for model_name, layer_name in LAYERS:
        model, layer = load_model(model_name), resolve_layer(model_name, layer_name, args.size)
        base = {"model": model_name, "layer": layer_name, "filters": filters, "size": args.size}
        for method in ("classic", "robust"):
            scores, seconds = {}, {}
            for precision in ("fp32", "bf16"):
                spec = RenderSpec(method=method, precision=precision, **base)
                pictures, seconds[precision] = engine_run(spec)
                scores[precision] = score(model, layer, filters, pictures)
            (act32, moved32, dead32), (act16, moved16, dead16) = scores["fp32"], scores["bf16"]
            print(
                f"{model_name + ' ' + layer_name:30}{method:>8}{act32:10.2f} /{act16:7.2f} ({act16 / act32:4.0%})"
                f"{moved32:9.2f} /{moved16:6.2f} ({moved16 / moved32:4.0%}){dead32:5.0%} /{dead16:4.0%}"
                f"{seconds['fp32']:9.1f} /{seconds['bf16']:5.1f} ({seconds['fp32'] / seconds['bf16']:3.1f}x)"
            )


if __name__ == "__main__":
    main()
