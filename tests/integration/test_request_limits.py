"""Request body limits over real HTTP: a body over HATCHERY_MAX_BODY_BYTES is refused with 413
(declared or streamed), one that does not arrive within HATCHERY_BODY_TIMEOUT with 408, and
neither creates nor reserves anything."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.helpers import ServerProcess

pytestmark = pytest.mark.slow

CAP = 2048
TIMEOUT = 1.0
SETTINGS = {"HATCHERY_MAX_BODY_BYTES": str(CAP), "HATCHERY_BODY_TIMEOUT": str(TIMEOUT)}


@pytest.fixture(scope="module")
def limited(
    tmp_path_factory: pytest.TempPathFactory,
    new_database: Callable[[], tuple[str | None, str | None]],
) -> Iterator[ServerProcess]:
    """One server per backend with a small body cap and a short body timeout."""
    url, key = new_database()
    proc = ServerProcess(
        tmp_path_factory.mktemp("limited"), SETTINGS, database_url=url, key=key
    ).start()
    yield proc
    proc.stop()


def snapshot(client: httpx.Client) -> tuple[int, str]:
    total = client.get("/v1/tasks").json()["data"]["pagination"]["total"]
    return total, client.get("/v1/account").json()["data"]["available"]


def body_of(size: int) -> bytes:
    """A valid request padded with spaces to ``size`` bytes."""
    raw = json.dumps({"model": "nanobanana", "prompt": "a lighthouse"}).encode()
    return raw[:-1] + b" " * (size - len(raw)) + b"}"


def assert_envelope(response: httpx.Response, status: int, words: str) -> None:
    assert response.status_code == status
    body = response.json()
    assert body["data"] is None
    assert body["error"]["code"] == "BAD_REQUEST"
    assert words in body["error"]["message"]


def test_a_body_at_the_cap_is_taken(limited: ServerProcess) -> None:
    with limited.client() as client:
        before = snapshot(client)
        headers = {"Content-Type": "application/json"}
        response = client.post("/v1/generate", content=body_of(CAP), headers=headers)
        assert response.status_code == 202
        assert snapshot(client)[0] == before[0] + 1  # what the refusals below must not do


def test_a_declared_length_over_the_cap_is_413(limited: ServerProcess) -> None:
    with limited.client() as client:
        before = snapshot(client)
        response = client.post("/v1/generate", content=body_of(CAP + 1))
        assert_envelope(response, 413, f"Request body is larger than {CAP} bytes")
        assert snapshot(client) == before


def test_a_chunked_body_over_the_cap_is_413(limited: ServerProcess) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: refused while it streams in
        body = body_of(CAP + 500)
        for at in range(0, len(body), 256):
            yield body[at : at + 256]

    with limited.client() as client:
        before = snapshot(client)
        response = client.post("/v1/generate", content=chunks())
        assert response.request.headers.get("Transfer-Encoding") == "chunked"
        assert_envelope(response, 413, f"Request body is larger than {CAP} bytes")
        assert snapshot(client) == before


def raw_request(server: ServerProcess, head: str, first_part: bytes) -> tuple[bytes, float]:
    """Send a request's head and the start of its body, then nothing more; the server's whole
    answer and how long after the head it came."""
    assert server.key is not None
    head = head.format(key=server.key, port=server.port).replace("\n", "\r\n") + "\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        started = time.monotonic()
        conn.sendall(head.encode() + first_part)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            part = conn.recv(65536)
            if not part:
                break
            answer += part
        return answer, time.monotonic() - started


HEAD = """POST /v1/generate HTTP/1.1
Host: 127.0.0.1:{port}
Authorization: Bearer {key}
Content-Type: application/json
"""


@pytest.mark.parametrize(
    ("framing", "first_part"),
    [
        ("Content-Length: 200\n", b'{"model": "nanobanana", '),
        ("Transfer-Encoding: chunked\n", b'18\r\n{"model": "nanobanana", \r\n'),
    ],
    ids=["content-length", "chunked"],
)
def test_a_body_that_stalls_is_408_within_the_timeout(
    limited: ServerProcess, framing: str, first_part: bytes
) -> None:
    with limited.client() as client:
        before = snapshot(client)
        answer, took = raw_request(limited, HEAD + framing, first_part)
        assert snapshot(client) == before
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), answer
    error = json.loads(body)
    assert error["data"] is None
    assert error["error"] == {
        "code": "BAD_REQUEST",
        "message": f"Request body did not arrive within {TIMEOUT:g} s",
    }
    assert TIMEOUT * 0.9 <= took < TIMEOUT + 3
