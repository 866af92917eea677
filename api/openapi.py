"""The API's OpenAPI document, written without a server or Redis: ``python -m api.openapi OUT.json``.

The typed TypeScript client (``clients/typescript``) is generated from this file by ``make client``;
building the document only describes the routes, so the app gets a Redis URL it never connects to.
"""

import json
import sys
from pathlib import Path
from typing import Any

from api.app import create_app
from core.settings import Settings

UNUSED_REDIS_URL = "redis://127.0.0.1:6379/0"  # the app factory needs one; describing routes never connects


def openapi_document() -> dict[str, Any]:
    """The document GET /openapi.json serves."""
    return create_app(Settings(redis_url=UNUSED_REDIS_URL)).openapi()


def openapi_text() -> str:
    """The document as the client's generator reads it: stable key order, one trailing newline."""
    return json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m api.openapi OUT.json", file=sys.stderr)
        return 2
    Path(argv[0]).write_text(openapi_text(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
