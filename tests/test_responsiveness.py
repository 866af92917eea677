"""The /healthz prober itself: it reports a stall it saw, and stays quiet when there was none."""

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.responsiveness import HealthProbe

STALL_SECONDS = 0.8


class _Healthz(BaseHTTPRequestHandler):
    stall_on_request = 0  # 0: never
    served = 0

    def do_GET(self) -> None:
        type(self).served += 1
        if type(self).served == self.stall_on_request:
            time.sleep(STALL_SECONDS)
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def healthz_server() -> Iterator[tuple[str, type[_Healthz]]]:
    handler = type("Healthz", (_Healthz,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", handler
    finally:
        server.shutdown()
        thread.join(5)


def test_a_single_stalled_answer_fails_the_probe(healthz_server: tuple[str, type[_Healthz]]) -> None:
    url, handler = healthz_server
    handler.stall_on_request = 3
    with HealthProbe(url) as probe:
        time.sleep(STALL_SECONDS + 0.5)
    with pytest.raises(AssertionError, match="took up to"):
        probe.assert_responsive()
    assert probe.worst >= STALL_SECONDS


def test_prompt_answers_pass_the_probe(healthz_server: tuple[str, type[_Healthz]]) -> None:
    url, _ = healthz_server
    with HealthProbe(url) as probe:
        time.sleep(0.5)
    probe.assert_responsive()
    assert len(probe.latencies) >= 3 and probe.worst < 0.2
