"""A reverse proxy on 127.0.0.1 in front of a real Hatchery server. It forwards every request,
except that a test can make the next requests of a method and path answer with scripted faults (a
503, a 429 with ``Retry-After``, a gateway error) or stall with no answer, as a load balancer or a
busy server would, or forward the request and then lose the answer (``after_forwarding``), as a
network that drops a connection after the server did the work would. It records every request it
receives."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx

from tests.helpers import ThreadingServer, reply

CODES = {
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    502: "UPSTREAM_ERROR",
    503: "SERVICE_UNAVAILABLE",
}
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}


@dataclass
class Fault:
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None  # None: the contract's error envelope for ``status``
    stall: float = 0.0  # > 0: read the request, answer nothing for this long, then hang up
    after_forwarding: bool = False  # forward the request first: the server has done it

    def payload(self) -> bytes:
        if self.body is not None:
            return self.body
        code = CODES.get(self.status, "BAD_REQUEST")
        error = {"code": code, "message": f"injected {self.status}"}
        return json.dumps({"data": None, "error": error}).encode()


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    at: float
    fault: Fault | None


class FaultProxy:
    def __init__(self, upstream: str = "") -> None:
        self.upstream = upstream
        self.seen: list[Seen] = []
        self._faults: list[tuple[str, str, Fault]] = []
        self._lock = threading.Lock()
        self._http = httpx.Client(timeout=30)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fault = proxy._take(self.command, self.path, dict(self.headers.items()))
                if fault is None or fault.after_forwarding:
                    answer = proxy._forward(self, body)
                if fault is not None and fault.stall:
                    time.sleep(fault.stall)
                    self.close_connection = True
                    return
                if fault is not None:
                    headers = {"Content-Type": "application/json", **fault.headers}
                    answer = (fault.status, headers, fault.payload())
                reply(self, *answer)

            do_GET = do_POST = _handle

        self.httpd = ThreadingServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def fail(self, method: str, path: str, *faults: Fault) -> None:
        """Answer the next ``len(faults)`` requests of ``method`` whose path starts with ``path``
        with ``faults``, in order."""
        with self._lock:
            self._faults += [(method, path, f) for f in faults]

    def reset(self) -> None:
        """No faults pending and no history."""
        with self._lock:
            self._faults.clear()
            self.seen.clear()

    def requests(self, method: str, path: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method and s.path.startswith(path)]

    def _take(self, method: str, path: str, headers: dict[str, str]) -> Fault | None:
        with self._lock:
            fault = None
            for i, (m, prefix, scripted) in enumerate(self._faults):
                if m == method and path.startswith(prefix):
                    fault = scripted
                    del self._faults[i]
                    break
            self.seen.append(Seen(method, path, headers, time.monotonic(), fault))
            return fault

    def _forward(
        self, handler: BaseHTTPRequestHandler, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in {"host"}}
        response = self._http.request(
            handler.command, self.upstream + handler.path, headers=headers, content=body
        )
        kept = {k: v for k, v in response.headers.items() if k.lower() not in HOP_BY_HOP}
        return response.status_code, kept, response.content

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._http.close()
