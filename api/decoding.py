"""Decoding uploads within the process's pixel budget, waiting for room without holding a thread."""

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from PIL import Image
from starlette.concurrency import run_in_threadpool

from api.problems import unavailable
from core.errors import InvalidImage
from core.images import image_size
from core.settings import Settings

POLL_SECONDS = 0.02
RETRY_AFTER_SECONDS = 2
_BYTES_PER_PIXEL = 4  # Pillow keeps RGB, RGBA, CMYK and 32-bit pictures in 4 bytes a pixel, the most of its modes


class PixelBudget:
    """How many pixels this process may hold decoded at once, shared by every concurrent decode.

    A 100 KB PNG can declare 40 million pixels (160 MB decoded); twenty such uploads at once would
    hold twenty of them. A decode first takes its picture's pixels from the budget and gives them
    back when the pixels are gone. A picture larger than the whole budget takes all of it: it
    decodes alone (FILTERVIZ_MAX_IMAGE_PIXELS still bounds it).
    """

    def __init__(self, pixels: int) -> None:
        self.pixels = pixels
        self._free = pixels
        self._lock = threading.Lock()

    def take(self, pixels: int) -> int | None:
        """Reserve room for a picture of ``pixels``: the share taken, or None while too little is free."""
        share = min(pixels, self.pixels)
        with self._lock:
            if share > self._free:
                return None
            self._free -= share
            return share

    def give_back(self, share: int) -> None:
        with self._lock:
            self._free += share


def reuse_decode_memory(budget: PixelBudget) -> None:
    """Let Pillow keep the blocks of a freed picture, up to the budget's worth, for the next decode.

    Without it each thread's malloc arena keeps the memory of the pictures it freed, so decodes one
    at a time on 20 request threads grew a process by 1.2 GB; with it, by one picture (164 MB).
    """
    Image.core.set_blocks_max(-(-budget.pixels * _BYTES_PER_PIXEL // Image.core.get_block_size()))


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
