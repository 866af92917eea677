"""``make bench``: every benchmark, one after another, each printing its own ratios.

    python -m bench            # all of them
    python -m bench engine     # just some, by module name
    python -m bench gpu        # on a CUDA machine (make bench-gpu): not in the default set

Each runs in this process, in turn; bench.quality (minutes) runs apart, as ``make bench-quality``.
The exit status is the first non-zero one a benchmark's main() returned.
"""

import importlib
import sys
import time

# bench.<name> modules with a main(); `make bench-quality` runs bench.quality
BENCHES = ["startup", "engine", "folding", "precision", "memory", "service", "sweep", "batching", "load", "storage"]


def main() -> int:
    names = sys.argv[1:] or BENCHES
    status = 0
    for name in names:
        print(f"\n=== bench.{name} " + "=" * (60 - len(name)), flush=True)
        started = time.perf_counter()
        module = importlib.import_module(f"bench.{name}")
        sys.argv = [f"bench.{name}"]
        status = status or module.main() or 0
        print(f"(bench.{name}: {time.perf_counter() - started:.0f} s)", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
