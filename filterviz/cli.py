"""Entry point of the ``filterviz`` console script."""

import argparse

from filterviz.client_command import add_client_commands
from filterviz.render_command import add_engine_commands
from filterviz.service import add_service_commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="filterviz", description="See what the filters of a CNN respond to.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_engine_commands(subparsers)
    add_service_commands(subparsers)
    add_client_commands(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
