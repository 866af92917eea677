"""Clients that send a request too slowly: answered 408 and disconnected, never held for as long as they like.

uvicorn bounds only the idle time between requests (``--timeout-keep-alive``). A client that opens
connections and sends their headers a byte at a time, or announces a body and never sends it,
would hold each connection (and, for a body, a request) forever. Two bounds, both
FILTERVIZ_REQUEST_READ_TIMEOUT_SECONDS long:

- a request's headers must be complete that long after its first byte, or after the connection
  opened (:class:`HeaderTimeoutProtocol`, the protocol class ``filterviz api`` gives uvicorn);
- its body must be complete that long after its headers (:class:`BodyTimeoutMiddleware`).
"""

import asyncio
import functools
import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.problems import PROBLEM_JSON, ProblemDetail
from core.settings import Settings

_log = logging.getLogger(__name__)
CLOSE_HEADERS = [(b"content-type", PROBLEM_JSON.encode()), (b"connection", b"close")]


def timeout_problem(seconds: float) -> bytes:
    detail = f"the request was not received within {seconds:g} s (FILTERVIZ_REQUEST_READ_TIMEOUT_SECONDS)"
    problem = ProblemDetail(type="/problems/request-timeout", title="Request Timeout", status=408, detail=detail)
    return problem.model_dump_json(exclude_none=True).encode()


class BodyTimeoutMiddleware:
    """Each request's body must arrive within ``seconds`` of its headers; else 408 and the connection closes."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self._app, self._seconds = app, seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        request = _TimedRequest(receive, send, self._seconds)
        try:
            await self._app(scope, request.receive, request.send)
        except Exception:
            if not request.timed_out:
                raise
            _log.info(
                "%s %s: the body timed out; the app's reaction to the disconnect it was shown is dropped",
                scope["method"],
                scope["path"],
                exc_info=True,
            )
        if request.timed_out and not request.response_started:
            body = timeout_problem(self._seconds)
            headers = [*CLOSE_HEADERS, (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 408, "headers": headers})
            await send({"type": "http.response.body", "body": body})


class _TimedRequest:
    """One request's receive and send: until the body is complete, receive waits only until the deadline.

    On the deadline the app is shown a disconnect, and what it answers to that is dropped."""

    def __init__(self, receive: Receive, send: Send, seconds: float) -> None:
        self._receive, self._send = receive, send
        self._deadline = asyncio.get_running_loop().time() + seconds
        self.body_complete = self.timed_out = self.response_started = False

    async def receive(self) -> Message:
        if self.timed_out:
            return {"type": "http.disconnect"}
        if self.body_complete:  # waiting for a disconnect (a streamed response) is no slow read
            return await self._receive()
        remaining = self._deadline - asyncio.get_running_loop().time()
        try:
            message = await asyncio.wait_for(self._receive(), max(remaining, 0))
        except TimeoutError:
            self.timed_out = True
            return {"type": "http.disconnect"}
        self.body_complete = message["type"] != "http.request" or not message.get("more_body", False)
        return message

    async def send(self, message: Message) -> None:
        if self.timed_out:
            return
        self.response_started = True
        await self._send(message)


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a deadline for each request's headers.

    Armed when the connection opens and when a request's first byte arrives, disarmed when its
    headers are complete. A request begun is answered 408; a connection that never sent a byte is
    just closed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._request_begun = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._request_begun = True
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        self._request_begun = False
        super().on_headers_complete()

    def _arm(self) -> None:
        self._disarm()
        self._header_deadline = self.loop.call_later(read_timeout_seconds(), self._headers_timed_out)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_timed_out(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing():
            return
        if self._request_begun:
            body = timeout_problem(read_timeout_seconds())
            headers = [*self.server_state.default_headers, *CLOSE_HEADERS, (b"content-length", str(len(body)).encode())]
            head = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
            self.transport.write(b"HTTP/1.1 408 Request Timeout\r\n" + head + b"\r\n" + body)
        self.transport.close()


@functools.cache
def read_timeout_seconds() -> float:
    """The protocol is made by uvicorn, not by the app factory: it reads the setting once per process."""
    return Settings().request_read_timeout_seconds
