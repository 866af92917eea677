"""Decoding uploads within the process's pixel budget, waiting for room without holding a thread."""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool

from api.problems import unavailable
from core.errors import InvalidImage
from core.images import PixelBudget, image_size, reuse_decode_memory
from core.settings import Settings

POLL_SECONDS = 0.02
RETRY_AFTER_SECONDS = 2


def install_decode_budget(app: FastAPI, settings: Settings) -> None:
    budget = PixelBudget(settings.decode_pixel_budget)
    reuse_decode_memory(budget)
    app.state.decode_budget = budget


@asynccontextmanager
async def decode_room(request: Request, data: bytes, settings: Settings) -> AsyncIterator[None]:
    """Hold room in the budget for decoding ``data`` (its header says how much), or answer 503.

    Waits on the event loop, up to FILTERVIZ_DECODE_WAIT_SECONDS, for other decodes to end."""
    budget: PixelBudget = request.app.state.decode_budget
    try:
        pixels = (await run_in_threadpool(image_size, data, settings.max_image_pixels)).pixels
    except InvalidImage:
        pixels = 0  # the upload's own check refuses it, before decoding anything
    deadline = time.monotonic() + settings.decode_wait_seconds
    while (share := budget.take(pixels)) is None:
        if time.monotonic() >= deadline:
            detail = (
                f"other uploads are being decoded ({budget.pixels} pixels at a time, FILTERVIZ_DECODE_PIXEL_BUDGET); "
                f"try again in {RETRY_AFTER_SECONDS} s"
            )
            raise unavailable("Busy decoding", detail, "/problems/decoding-busy", retry_after=RETRY_AFTER_SECONDS)
        await asyncio.sleep(POLL_SECONDS)
    try:
        yield
    finally:
        budget.give_back(share)
