"""Every validation rule of seed 003 over real HTTP: 400 with the envelope, the field named, and
nothing created or reserved."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.helpers import ServerProcess
from tests.validation_cases import CASES
from tests.validation_cases import body_with as shared_body_with

VALID: dict[str, Any] = {"model": "nanobanana", "prompt": "a lighthouse at dusk"}


def body_with(change: dict[str, Any]) -> dict[str, Any]:
    return shared_body_with(VALID, change)


def snapshot(client: httpx.Client) -> tuple[int, str]:
    total = client.get("/v1/tasks").json()["data"]["pagination"]["total"]
    return total, client.get("/v1/account").json()["data"]["available"]


@pytest.mark.parametrize(("change", "field", "tag"), CASES)
def test_invalid_field_is_a_validation_error(
    server: ServerProcess, change: dict[str, Any], field: str, tag: str
) -> None:
    with server.client() as client:
        before = snapshot(client)
        response = client.post("/v1/generate", json=body_with(change))
        assert response.status_code == 400
        body = response.json()
        assert body["data"] is None
        assert body["error"]["code"] == "VALIDATION_ERROR"
        message = body["error"]["message"]
        assert message.startswith(
            f"Key: 'GenerateRequest.{field}' Error:Field validation for '{field}' "
            f"failed on the '{tag}' tag"
        ), message
        assert snapshot(client) == before


def test_unknown_model_message_lists_the_catalog(server: ServerProcess) -> None:
    with server.client() as client:
        message = client.post("/v1/generate", json=body_with({"model": "x"})).json()["error"][
            "message"
        ]
    assert "nanobanana, nanobanana-pro, veo3.1" in message


def test_every_bad_field_is_named(server: ServerProcess) -> None:
    with server.client() as client:
        body = {"model": "nanobanana", "prompt": "", "num_outputs": 9, "resolution": "8k"}
        message = client.post("/v1/generate", json=body).json()["error"]["message"]
    positions = [
        message.index(f"'GenerateRequest.{f}'") for f in ("Prompt", "NumOutputs", "Resolution")
    ]
    assert positions == sorted(positions)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b"", "not valid JSON"),
        (b'"text"', "JSON object"),
        (b"\xff\xfe", "not valid JSON"),
    ],
)
def test_malformed_body_is_bad_request(
    server: ServerProcess, content: bytes, fragment: str
) -> None:
    with server.client() as client:
        before = snapshot(client)
        response = client.post(
            "/v1/generate", content=content, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "BAD_REQUEST"
        assert fragment in response.json()["error"]["message"]
        assert snapshot(client) == before


def test_valid_boundaries_are_accepted(server: ServerProcess) -> None:
    body = {
        "model": "nanobanana",
        "prompt": "p" * 2000,
        "negative_prompt": "n" * 1000,
        "num_outputs": 4,
        "duration": 60,
        "aspect_ratio": "9:16",
        "resolution": "1k",
        "image_urls": [],
        "webhook_url": "http://127.0.0.1:9/hook",
    }
    with server.client() as client:
        response = client.post("/v1/generate", json=body)
    assert response.status_code == 202, response.text
    assert response.json()["data"]["status"] == "pending"


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/v1/nothing", 404, "NOT_FOUND"),
        ("DELETE", "/v1/generate", 405, "BAD_REQUEST"),
        ("PUT", "/v1/tasks", 405, "BAD_REQUEST"),
    ],
)
def test_unknown_routes_and_methods_use_the_envelope(
    server: ServerProcess, method: str, path: str, status: int, code: str
) -> None:
    with server.client() as client:
        response = client.request(method, path)
    assert response.status_code == status
    assert response.json() == {
        "data": None,
        "error": {"code": code, "message": response.json()["error"]["message"]},
    }
    assert path in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "query",
    ["page=0", "page=-1", "page=abc", "per_page=0", "per_page=101", "per_page=x", "status=done"],
)
def test_bad_list_parameters(server: ServerProcess, query: str) -> None:
    with server.client() as client:
        response = client.get(f"/v1/tasks?{query}")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BAD_REQUEST"
    assert query.split("=")[0] in response.json()["error"]["message"]


def test_wrong_method_names_the_allowed_one(server: ServerProcess) -> None:
    with server.client() as client:
        response = client.delete("/v1/generate")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert "use POST" in response.json()["error"]["message"]


def test_oversized_body_is_refused_with_413(server: ServerProcess) -> None:
    with server.client() as client:
        before = snapshot(client)
        big = {**VALID, "padding": "x" * 300_000}
        response = client.post("/v1/generate", json=big)
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "BAD_REQUEST"
        assert "larger than" in response.json()["error"]["message"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: refused while streaming
            yield b'{"model": "nanobanana", "prompt": "p", "padding": "'
            for _ in range(40):
                yield b"x" * 10_000
            yield b'"}'

        streamed = client.post("/v1/generate", content=chunks())
        assert streamed.status_code == 413
        assert snapshot(client) == before
