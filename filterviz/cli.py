"""Entry point of the ``filterviz`` console script.

A command imports only its own module: ``filterviz layers`` or ``render`` never pays for httpx, redis,
celery or uvicorn, nor ``submit`` for torch. Help, and a name that is no command, build every command.
"""

import argparse
import importlib
import sys

# "module:function" that adds some commands to the parser -> the names of those commands
COMMAND_MODULES = {
    "filterviz.layers_command:add_layers_command": ("layers",),
    "filterviz.render_command:add_render_command": ("render",),
    "filterviz.service:add_service_commands": ("serve", "api", "worker"),
    "filterviz.client_command:add_client_commands": ("submit", "status", "watch", "cancel", "download"),
    "filterviz.models_command:add_models_commands": ("models",),
    "filterviz.examples_command:add_examples_command": ("examples",),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser: with only the module that adds ``command`` where that is a known command, else with all."""
    parser = argparse.ArgumentParser(prog="filterviz", description="See what the filters of a CNN respond to.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    known = any(command in names for names in COMMAND_MODULES.values())
    for target, names in COMMAND_MODULES.items():
        if not known or command in names:
            module, function = target.split(":")
            getattr(importlib.import_module(module), function)(subparsers)
    return parser


def fail(message: str) -> int:
    """A command's refusal: the message on stderr, exit status 2."""
    print(f"filterviz: error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    return args.func(args)
