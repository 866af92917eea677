"""Clients that send their request too slowly are answered 408 and disconnected, over real sockets."""

import json
import socket
import time
from collections.abc import Iterator

import pytest

from testkit.services import service_settings_for, settings_env, start_api
from tests.service_fixtures import redis_db

READ_TIMEOUT_SECONDS = 1.0
PATIENCE_SECONDS = 4.0  # how long the test waits for the server to give up on the client


@pytest.fixture(scope="module")
def api_address(redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    root = tmp_path_factory.mktemp("slow-clients")
    settings = service_settings_for(redis_db(redis_server, 3), root)
    env = settings_env(settings, root / "torch") | {"FILTERVIZ_REQUEST_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT_SECONDS)}
    api, url = start_api(env, root / "api.log")
    try:
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port)
    finally:
        api.stop()


def held_for(address: tuple[str, int], sent: bytes) -> tuple[float, bytes]:
    """Send ``sent`` and nothing more; how long until the server closed the connection, and what it answered."""
    with socket.create_connection(address, timeout=PATIENCE_SECONDS) as connection:
        connection.sendall(sent)
        started, answer = time.monotonic(), b""
        try:
            while chunk := connection.recv(65536):
                answer += chunk
        except TimeoutError:
            return float("inf"), answer
        return time.monotonic() - started, answer


def problem(answer: bytes) -> dict:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), answer
    assert b"content-type: application/problem+json" in head.lower() and b"connection: close" in head.lower()
    return json.loads(body)


@pytest.mark.parametrize(
    "sent",
    [b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slo", b"G"],
    ids=["half-sent headers", "one byte"],
)
def test_headers_sent_too_slowly_are_answered_408(api_address: tuple[str, int], sent: bytes) -> None:
    seconds, answer = held_for(api_address, sent)

    assert seconds < READ_TIMEOUT_SECONDS + 1.5, f"the connection was held {seconds:.1f} s"
    assert (
        problem(answer)["detail"] == "the request was not received within 1 s (FILTERVIZ_REQUEST_READ_TIMEOUT_SECONDS)"
    )


def test_a_body_sent_too_slowly_is_answered_408(api_address: tuple[str, int]) -> None:
    head = b"POST /v1/images HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\nContent-Length: 5000\r\n\r\n"
    seconds, answer = held_for(api_address, head + b"\x89PNG\r\n\x1a\n")  # 8 of the 5,000 bytes it announced

    assert seconds < READ_TIMEOUT_SECONDS + 1.5, f"the connection was held {seconds:.1f} s"
    assert problem(answer)["status"] == 408


def test_a_connection_that_never_sends_a_byte_is_closed(api_address: tuple[str, int]) -> None:
    seconds, answer = held_for(api_address, b"")

    assert seconds < READ_TIMEOUT_SECONDS + 1.5 and answer == b""


def test_a_prompt_client_is_served_on_a_kept_alive_connection(api_address: tuple[str, int]) -> None:
    with socket.create_connection(api_address, timeout=PATIENCE_SECONDS) as connection:
        for _ in range(2):
            connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            answer = b""
            while not answer.endswith(b"}") and (chunk := connection.recv(65536)):  # head and body may come apart
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b'{"status":"ok"}'), answer
            time.sleep(READ_TIMEOUT_SECONDS * 1.5)  # idle between requests: the keep-alive timeout's business
