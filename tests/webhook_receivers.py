"""A webhook receiver for reliability tests, on 127.0.0.1 only: a small HTTP/1.1 server on raw
sockets whose behaviour a test chooses per request. It can answer (at once or late), hold the
request until the test releases it, or drop the connection without answering: a reset (RST) or a
plain close (FIN). Every request read whole is recorded with the time it arrived; a request cut
off mid-way (its sender was killed) is not a request and is not recorded."""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

HEAD_LIMIT = 64 * 1024
HOLD_LIMIT = 60.0  # a held request is answered after this long even if never released


@dataclass
class Hit:
    """One request, read whole: header names in lower case, ``at`` its arrival (time.time())."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0  # seconds to wait before answering


@dataclass(frozen=True)
class Hold:
    """Keep the request open, unanswered, until :meth:`Receiver.release`; then answer."""

    then: Answer = Answer()


@dataclass(frozen=True)
class Reset:
    """Drop the connection without answering: an RST (SO_LINGER 0)."""


@dataclass(frozen=True)
class Close:
    """Close the connection without answering: a FIN, no status line."""


Action = Answer | Hold | Reset | Close
Behaviour = Callable[[Hit], Action]

REASONS = {200: "OK", 204: "No Content", 302: "Found", 400: "Bad Request", 500: "Server Error"}


class Receiver:
    """``behave(hit)`` chooses what happens to each request (by default: 200 at once)."""

    def __init__(self, behave: Behaviour | None = None) -> None:
        self.behave: Behaviour = behave or (lambda hit: Answer())
        self.hits: list[Hit] = []
        self.in_flight: Counter[str] = Counter()  # per path, requests read and not yet answered
        self.most_in_flight: Counter[str] = Counter()
        self.released = threading.Event()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self._listener.settimeout(0.2)
        self.port = int(self._listener.getsockname()[1])
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def on(self, path: str) -> list[Hit]:
        with self._cond:
            return [hit for hit in self.hits if hit.path == path]

    def wait_until(
        self, done: Callable[[list[Hit]], bool], timeout: float = 30.0, what: str = "requests"
    ) -> list[Hit]:
        """Wait until ``done(every hit so far)``; returns them."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not done(list(self.hits)):
                left = deadline - time.monotonic()
                if left <= 0:
                    paths = Counter(hit.path for hit in self.hits)
                    raise AssertionError(f"{what}: not there after {timeout} s; got {paths}")
                self._cond.wait(min(left, 0.5))
            return list(self.hits)

    def wait_for(self, count: int, path: str, timeout: float = 30.0) -> list[Hit]:
        """Wait until ``count`` requests arrived on ``path``; returns those."""
        self.wait_until(
            lambda hits: sum(hit.path == path for hit in hits) >= count,
            timeout,
            f"{count} request(s) on {path}",
        )
        return self.on(path)

    def wait_held(self, count: int, path: str, timeout: float = 30.0) -> None:
        """Wait until ``count`` requests on ``path`` are open, unanswered, at once."""
        self.wait_until(
            lambda _: self.in_flight[path] >= count, timeout, f"{count} held request(s) on {path}"
        )

    def release(self) -> None:
        self.released.set()

    def close(self) -> None:
        self.released.set()
        self._stop.set()
        self._thread.join(5)
        self._listener.close()

    # ------------------------------------------------------------------------------ the server

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(HOLD_LIMIT + 10)
        try:
            hit = _read(conn)
            if hit is None:  # the sender went away before the request was whole
                return
            with self._cond:
                self.hits.append(hit)
                self.in_flight[hit.path] += 1
                self.most_in_flight[hit.path] = max(
                    self.most_in_flight[hit.path], self.in_flight[hit.path]
                )
                self._cond.notify_all()
            try:
                self._act(conn, self.behave(hit))
            finally:
                with self._cond:
                    self.in_flight[hit.path] -= 1
                    self._cond.notify_all()
        except OSError:  # the sender gave up on us (its timeout) or was killed
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def _act(self, conn: socket.socket, action: Action) -> None:
        if isinstance(action, Hold):
            self.released.wait(HOLD_LIMIT)
            action = action.then
        if isinstance(action, Reset):
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return  # closed by the caller: with linger 0, that sends an RST
        if isinstance(action, Close):
            conn.shutdown(socket.SHUT_RDWR)
            return
        if action.delay:
            time.sleep(action.delay)
        reason = REASONS.get(action.status, "Status")
        lines = [f"HTTP/1.1 {action.status} {reason}"]
        lines += [f"{name}: {value}" for name, value in action.headers.items()]
        lines += [f"Content-Length: {len(action.body)}", "Connection: close", "", ""]
        conn.sendall("\r\n".join(lines).encode("latin-1") + action.body)


def _read(conn: socket.socket) -> Hit | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk or len(data) > HEAD_LIMIT:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length") or 0)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        body += chunk
    path = request_line.split(" ")[1]
    return Hit(path, headers, body[:length], time.time())
