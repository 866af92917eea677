"""Asking the workers "which layers has this model at this size?", and waiting without holding a thread.

The API has no torch, so a size nobody asked before is a task for a worker, whose answer lands in
the catalog. A request thread blocked on that answer is one of the server's few (40), and a burst of
new sizes would hold them all, /healthz included. So the wait is a coroutine: identical questions
share one wait (and one task), and at most ``limit`` distinct questions wait at once per process.
"""

import asyncio
import threading
import time

from starlette.concurrency import run_in_threadpool

from api.dispatch import Dispatcher
from api.problems import unavailable
from core.catalog import LayerAnswer
from core.store.catalog import AsyncCatalogReader

_POLL_SECONDS = 0.05
Question = tuple[str, tuple[int, int]]  # (model, (height, width))


class LayerQuestions:
    def __init__(self, catalog: AsyncCatalogReader, dispatcher: Dispatcher, limit: int, timeout: float) -> None:
        self._catalog, self._dispatcher = catalog, dispatcher
        self._limit, self._timeout = limit, timeout
        self._waits: dict[Question, asyncio.Task[LayerAnswer | None]] = {}
        self._sending = threading.Lock()

    async def ask(self, model: str, size: tuple[int, int]) -> LayerAnswer | None:
        """The workers' answer, or None when none came within the timeout; 503 when too many wait already."""
        question = (model, size)
        wait = self._waits.get(question)
        if wait is None:
            if len(self._waits) >= self._limit:
                detail = (
                    f"{self._limit} questions about layers at new sizes are already waiting for a worker "
                    "(FILTERVIZ_MAX_LAYER_QUESTIONS); retry shortly or ask for a size listed already"
                )
                raise unavailable("Too many layer questions", detail, "/problems/layer-questions-busy")
            wait = asyncio.create_task(self._ask_workers(model, size))
            self._waits[question] = wait
            wait.add_done_callback(lambda _: self._waits.pop(question, None))
        return await asyncio.shield(wait)  # a caller that goes away does not end the others' wait

    async def _ask_workers(self, model: str, size: tuple[int, int]) -> LayerAnswer | None:
        """Send the task (a moment of a thread: Celery's client blocks), then poll the catalog until the deadline."""
        await run_in_threadpool(self._send, model, size)
        deadline = time.monotonic() + self._timeout
        while (answer := await self._catalog.layers(model, size)) is None:
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(_POLL_SECONDS)
        return answer

    def _send(self, model: str, size: tuple[int, int]) -> None:
        """One send at a time: Celery's first sends each open a connection (~25 ms of CPU apiece), so a burst
        of them in parallel would stall the whole process."""
        with self._sending:
            self._dispatcher.describe(model, size, expires_seconds=self._timeout)
