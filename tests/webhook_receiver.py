"""A tiny webhook receiver on 127.0.0.1 for tests: records every POST, answers scripted statuses."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Delivery:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass
class Receiver:
    url: str
    statuses: list[int] = field(default_factory=list)  # answered in turn; 204 once they run out
    deliveries: list[Delivery] = field(default_factory=list)  # recorded as they arrive, before any hang
    hang_seconds: float = 0.0  # how long each answer is held back (a slow receiver)
    released: threading.Event = field(default_factory=threading.Event)  # set: stop hanging, answer at once
    in_flight: int = 0
    most_in_flight: int = 0  # the most requests it held at one time
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _arrived(self, delivery: Delivery) -> None:
        with self._lock:
            self.deliveries.append(delivery)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)

    def _answered(self) -> int:
        with self._lock:
            self.in_flight -= 1
            return self.statuses.pop(0) if self.statuses else 204


@contextmanager
def webhook_receiver(statuses: list[int] | None = None, hang_seconds: float = 0.0) -> Iterator[Receiver]:
    receiver = Receiver(url="", statuses=list(statuses or []), hang_seconds=hang_seconds)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            headers = {name.lower(): value for name, value in self.headers.items()}
            receiver._arrived(Delivery(self.path, headers, body))
            receiver.released.wait(receiver.hang_seconds)
            status = receiver._answered()
            try:
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()
            except OSError:  # the sender gave up waiting and closed the connection
                pass

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.released.set()
        server.shutdown()
        server.server_close()
