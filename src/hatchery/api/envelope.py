"""The response envelope every endpoint uses: ``{"data": ..., "error": null | {code, message}}``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

# One encoder for every response: json.dumps() with options builds a new one per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


class Envelope(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _ENCODER.encode(content).encode("utf-8")


def ok(data: Any, status_code: int = 200, headers: Mapping[str, str] | None = None) -> Envelope:
    return Envelope({"data": data, "error": None}, status_code=status_code, headers=headers)


def fail(
    status_code: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> Envelope:
    body = {"data": None, "error": {"code": code, "message": message}}
    return Envelope(body, status_code=status_code, headers=headers)
