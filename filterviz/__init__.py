"""The ``filterviz`` command line: render and inspect from a terminal, or start the service."""
