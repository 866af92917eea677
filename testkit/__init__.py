"""What the tests and the benchmarks share, so that neither imports the other.

tests/ -> testkit <- bench/: planted VGG16 weights, the naive seed port and the Lucid-style
reference (the yardsticks), picture scoring, the service's processes, and the load runner.
Not installed with filterviz: it is found on the repository root, as tests/ and bench/ are.
"""
