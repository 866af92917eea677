"""``make bench``: every benchmark, one after another, each printing its own ratios.

    python -m bench            # all of them
    python -m bench engine     # just some, by module name

Each runs in this process, in turn; bench.quality (minutes) runs apart, as ``make bench-quality``.
"""

import importlib
import sys
import time

# bench.<name> modules with a main(); `make bench-quality` runs bench.quality
BENCHES = ["engine", "precision", "memory", "service", "batching", "load"]


def main() -> None:
    names = sys.argv[1:] or BENCHES
    for name in names:
        print(f"\n=== bench.{name} " + "=" * (60 - len(name)), flush=True)
        started = time.perf_counter()
        module = importlib.import_module(f"bench.{name}")
        sys.argv = [f"bench.{name}"]
        module.main()
        print(f"(bench.{name}: {time.perf_counter() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
