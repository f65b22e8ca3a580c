"""A fake Hatchery API on 127.0.0.1 that speaks the task-control contract, for the SDK and CLI:
``POST /v1/generate`` with ``Idempotency-Key`` and ``Prefer: wait``, ``GET /v1/tasks/{id}`` (also
held by ``Prefer: wait``), ``POST /v1/tasks/{id}/cancel`` and the event stream
``GET /v1/tasks/{id}/events`` (Server-Sent Events, resumed after ``Last-Event-ID``). A test moves
tasks along (``advance``) and scripts faults for the next requests of a method and path: an error
answer, a request carried out whose answer is lost, or an event stream cut after some events.

It also answers the lists and the account: ``GET /v1/tasks`` (``data.items``, or ``data.tasks``
as Hatchery before 0.2 did with ``legacy_lists``), ``GET /v1/usage`` (a record per completed
task), ``GET /v1/usage/summary`` and ``GET /v1/account``, with their filters, page by page
numbers (no cursor, like the Egg API)."""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.helpers import ThreadingServer, reply

TERMINAL = {"completed", "failed", "cancelled"}
KEY = "hk_test"  # the prefix of the key every usage record is charged to
CODES = {409: "CONFLICT", 429: "RATE_LIMITED", 500: "INTERNAL_ERROR", 503: "SERVICE_UNAVAILABLE"}


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def envelope(data: Any = None, code: str | None = None, message: str = "") -> bytes:
    error = {"code": code, "message": message} if code else None
    return json.dumps({"data": data, "error": error}).encode()


@dataclass
class Fault:
    status: int = 0  # > 0: answer this error instead
    headers: dict[str, str] = field(default_factory=dict)
    lost: bool = False  # carry the request out, then hang up without an answer
    cut_after: int | None = None  # an event stream: send this many events, then hang up
    half: bool = False  # ... and half of the next one first
    clean_end: bool = False  # ... ending the stream properly instead (no terminal event)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    at: float
    status: int = 0

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.path).query))


class FakeTaskAPI:
    def __init__(self) -> None:
        self.tasks: dict[str, dict[str, Any]] = {}
        self.events: dict[str, list[tuple[int, str, dict[str, Any]]]] = {}
        self.keys: dict[str, tuple[str, str]] = {}  # key: (body hash, task id)
        self.seen: list[Seen] = []
        self.linger = 0.0  # seconds an event stream stays open after its terminal event
        self.usage: list[dict[str, Any]] = []  # a record per completed task, oldest first
        self.legacy_lists = False  # answer GET /v1/tasks with data.tasks, not data.items
        self.complete_after: float | None = None  # a submitted task completes after this long
        self._faults: list[tuple[str, str, Fault]] = []
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                api._handle(self, b"")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                api._handle(self, self.rfile.read(length) if length else b"")

        self.httpd = ThreadingServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # what a test does

    def create(self, status: str = "pending") -> str:
        with self._cond:
            task_id = f"gen_{next(self._ids):016d}"
            self.tasks[task_id] = {
                "id": task_id,
                "status": "pending",
                "model": "nanobanana",
                "type": "image_generate",
                "output": None,
                "error": None,
                "cost": "$0.0100",
                "created_at": now(),
                "started_at": None,
                "completed_at": None,
            }
            self.events[task_id] = []
            self._event(task_id)
        if status != "pending":
            self.advance(task_id, status)
        return task_id

    def advance(self, task_id: str, status: str) -> None:
        with self._cond:
            task = self.tasks[task_id]
            task["status"] = status
            if status == "processing":
                task["started_at"] = now()
            if status in TERMINAL:
                task["completed_at"] = now()
            if status == "completed":
                task["output"] = {"urls": [f"{self.url}/files/{task_id}/0.png"]}
                self._charge(task)
            if status == "cancelled":
                task["cost"] = "0.0000"
            self._event(task_id)

    def advance_later(self, task_id: str, *steps: tuple[float, str]) -> None:
        """Move the task to each status after each delay, in a thread."""

        def run() -> None:
            for delay, status in steps:
                time.sleep(delay)
                self.advance(task_id, status)

        threading.Thread(target=run, daemon=True).start()

    def charged(self, task_id: str, **fields: Any) -> None:
        """Change what a completed task's usage record says (``created_at``, ``model``, ...)."""
        record = next(r for r in self.usage if r["task_id"] == task_id)
        record.update(fields)
        self.tasks[task_id].update({k: v for k, v in fields.items() if k in ("model", "type")})

    def fail(self, method: str, path: str, *faults: Fault) -> None:
        with self._cond:
            self._faults += [(method, path, f) for f in faults]

    def requests(self, method: str, path: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method and s.path.startswith(path)]

    # the server side

    def _event(self, task_id: str) -> None:
        task = self.tasks[task_id]
        status = task["status"]
        data = dict(task) if status in TERMINAL else {"id": task_id, "status": status, "at": now()}
        events = self.events[task_id]
        events.append((len(events) + 1, status, data))
        self._cond.notify_all()

    def _take(self, handler: BaseHTTPRequestHandler) -> tuple[Seen, Fault | None]:
        seen = Seen(handler.command, handler.path, dict(handler.headers.items()), time.monotonic())
        with self._cond:
            self.seen.append(seen)
            for i, (method, prefix, fault) in enumerate(self._faults):
                if method == handler.command and handler.path.startswith(prefix):
                    del self._faults[i]
                    return seen, fault
        return seen, None

    def _handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        seen, fault = self._take(handler)
        if fault and fault.status:
            code = CODES.get(fault.status, "BAD_REQUEST")
            payload = envelope(code=code, message=f"injected {fault.status}")
            return self._reply(handler, seen, fault.status, payload, fault.headers)
        parts = handler.path.split("?")[0].strip("/").split("/")
        reads = {
            "v1/tasks": self._tasks,
            "v1/usage": self._usage,
            "v1/usage/summary": self._summary,
            "v1/account": self._account,
        }
        read = reads.get("/".join(parts)) if handler.command == "GET" else None
        if read is not None:
            with self._cond:
                status, headers, payload = read(seen.query)
        elif parts == ["v1", "generate"]:
            status, headers, payload = self._generate(handler, body)
        elif parts[:2] == ["v1", "tasks"] and len(parts) == 3:
            status, headers, payload = self._get(handler, parts[2])
        elif parts[:2] == ["v1", "tasks"] and parts[3:] == ["cancel"]:
            status, headers, payload = self._cancel(parts[2])
        elif parts[:2] == ["v1", "tasks"] and parts[3:] == ["events"]:
            return self._stream(handler, seen, parts[2], fault)
        else:
            status, headers, payload = 404, {}, envelope(code="NOT_FOUND", message="no route")
        if fault and fault.lost:
            handler.close_connection = True
            return None
        return self._reply(handler, seen, status, payload, headers)

    def _reply(
        self,
        handler: BaseHTTPRequestHandler,
        seen: Seen,
        status: int,
        payload: bytes,
        headers: dict[str, str],
    ) -> None:
        seen.status = status
        reply(handler, status, {"Content-Type": "application/json", **headers}, payload)

    def _generate(
        self, handler: BaseHTTPRequestHandler, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        key = handler.headers.get("Idempotency-Key")
        digest = hashlib.sha256(body).hexdigest()
        if key in self.keys:
            first, task_id = self.keys[key]
            if first != digest:
                message = "this Idempotency-Key was used with another request body"
                return 422, {}, envelope(code="IDEMPOTENCY_MISMATCH", message=message)
            status, headers, payload = self._held(handler, task_id)
            return status, {"Idempotent-Replayed": "true", **headers}, payload
        task_id = self.create()
        if key:
            self.keys[key] = (digest, task_id)
        if self.complete_after is not None:
            self.advance_later(task_id, (self.complete_after, "completed"))
        return self._held(handler, task_id)

    def _held(
        self, handler: BaseHTTPRequestHandler, task_id: str
    ) -> tuple[int, dict[str, str], bytes]:
        """The task, once terminal or after ``Prefer: wait=N``; 200 when it ended, else 202."""
        headers = self._hold(handler, task_id)
        task = self.tasks[task_id]
        return (200 if task["status"] in TERMINAL else 202), headers, envelope(dict(task))

    def _hold(self, handler: BaseHTTPRequestHandler, task_id: str) -> dict[str, str]:
        prefer = handler.headers.get("Prefer", "")
        if not prefer.startswith("wait="):
            return {}
        seconds = int(prefer.removeprefix("wait="))
        deadline = time.monotonic() + seconds
        with self._cond:
            while self.tasks[task_id]["status"] not in TERMINAL:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
        return {"Preference-Applied": f"wait={seconds}"}

    def _get(
        self, handler: BaseHTTPRequestHandler, task_id: str
    ) -> tuple[int, dict[str, str], bytes]:
        if task_id not in self.tasks:
            return 404, {}, envelope(code="NOT_FOUND", message=f"task {task_id} not found")
        headers = self._hold(handler, task_id)
        return 200, headers, envelope(dict(self.tasks[task_id]))

    def _cancel(self, task_id: str) -> tuple[int, dict[str, str], bytes]:
        task = self.tasks.get(task_id)
        if task is None:
            return 404, {}, envelope(code="NOT_FOUND", message=f"task {task_id} not found")
        if task["status"] in TERMINAL:
            message = f"task {task_id} is already {task['status']}"
            return 409, {}, envelope(code="CONFLICT", message=message)
        self.advance(task_id, "cancelled")
        return 200, {}, envelope(dict(task))

    # the lists and the account

    def _charge(self, task: dict[str, Any]) -> None:
        self.usage.append(
            {
                "id": "usage_" + task["id"].removeprefix("gen_"),
                "task_id": task["id"],
                "model": task["model"],
                "type": task["type"],
                "units": 1,
                "unit": "image",
                "unit_price": task["cost"],
                "cost": task["cost"],
                "resolution": "1k",
                "api_key": KEY,
                "created_at": task["completed_at"],
            }
        )

    def _tasks(self, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        wanted = [(name, query.get(name)) for name in ("status", "model", "type")]
        found = [t for t in self.tasks.values() if all(t[k] == v for k, v in wanted if v)]
        data = paged(found[::-1], query)
        if self.legacy_lists:
            data["tasks"] = data.pop("items")
        return 200, {}, envelope(data)

    def _usage_of(self, query: dict[str, str]) -> list[dict[str, Any]] | None:
        """The records the query's filters select; None for a key that is not the account's."""
        key = query.get("api_key")
        if key and not key.startswith(KEY):
            return None
        first, last = query.get("start_date", ""), query.get("end_date", "9999")
        wanted = [(name, query.get(name)) for name in ("model", "type")]
        return [
            r
            for r in self.usage
            if first <= r["created_at"][:10] <= last and all(r[k] == v for k, v in wanted if v)
        ]

    def _usage(self, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        found = self._usage_of(query)
        if found is None:
            return not_found_key(query)
        return 200, {}, envelope(paged(found[::-1], query))

    def _summary(self, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        found = self._usage_of({k: v for k, v in query.items() if k not in ("model", "type")})
        if found is None:
            return not_found_key(query)
        models = sorted({r["model"] for r in found})
        return 200, {}, envelope([totals([r for r in found if r["model"] == m]) for m in models])

    def _account(self, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        found = self._usage_of({"api_key": query.get("api_key", "")})
        if found is None:
            return not_found_key(query)
        account = {
            "id": "acct_fake",
            "email": "fake@example.com",
            "status": "active",
            "balance": "$10.0000",
            "reserved": "$0.0000",
            "available": "$10.0000",
            "api_key": KEY if query.get("api_key") else None,
            "usage": {k: v for k, v in totals(found).items() if k != "model"},
        }
        return 200, {}, envelope(account)

    # the event stream

    def _stream(
        self, handler: BaseHTTPRequestHandler, seen: Seen, task_id: str, fault: Fault | None
    ) -> None:
        if task_id not in self.tasks:
            payload = envelope(code="NOT_FOUND", message=f"task {task_id} not found")
            return self._reply(handler, seen, 404, payload, {})
        seen.status = 200
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        chunk(handler, b"retry: 100\n\n")
        after = int(handler.headers.get("Last-Event-ID") or 0)
        sent = self._send_events(handler, task_id, after, fault)
        if sent is not None:
            chunk(handler, b": keep-alive\n\n")
            time.sleep(self.linger)
        if sent is not None or (fault and fault.clean_end):
            handler.wfile.write(b"0\r\n\r\n")
        else:
            handler.close_connection = True
        return None

    def _send_events(
        self, handler: BaseHTTPRequestHandler, task_id: str, after: int, fault: Fault | None
    ) -> int | None:
        """Send every event after ``after``, waiting for new ones until the terminal one; the
        number sent, or None when the fault cut the stream first."""
        sent = 0
        while True:
            event = self._next_event(task_id, after)
            if fault and fault.cut_after is not None and sent >= fault.cut_after:
                if fault.half and event is not None:
                    chunk(handler, sse(*event)[:-12])
                return None
            if event is None:
                chunk(handler, b": keep-alive\n\n")
                continue
            chunk(handler, sse(*event))
            after, sent = event[0], sent + 1
            if event[1] in TERMINAL:
                return sent

    def _next_event(self, task_id: str, after: int) -> tuple[int, str, dict[str, Any]] | None:
        with self._cond:
            if len(self.events[task_id]) <= after:
                self._cond.wait(0.5)
            events = self.events[task_id]
            return events[after] if len(events) > after else None


def paged(items: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
    """A page of ``items`` as the query's ``page`` and ``per_page`` (20) ask, with its
    pagination."""
    page, per_page = int(query.get("page", 1)), int(query.get("per_page", 20))
    pagination = {
        "page": page,
        "per_page": per_page,
        "total": len(items),
        "total_pages": (len(items) + per_page - 1) // per_page,
    }
    return {"items": items[(page - 1) * per_page : page * per_page], "pagination": pagination}


def totals(records: list[dict[str, Any]]) -> dict[str, Any]:
    cost = sum(float(r["cost"].lstrip("$")) for r in records)
    return {
        "model": records[0]["model"] if records else None,
        "total_units": sum(r["units"] for r in records),
        "total_cost": f"${cost:.4f}",
        "request_count": len(records),
    }


def not_found_key(query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    message = f"API key not found: {query['api_key']!r} is not one of this account's keys"
    return 404, {}, envelope(code="NOT_FOUND", message=message)


def sse(event_id: int, status: str, data: dict[str, Any]) -> bytes:
    return f"id: {event_id}\nevent: {status}\ndata: {json.dumps(data)}\n\n".encode()


def chunk(handler: BaseHTTPRequestHandler, data: bytes) -> None:
    handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
    handler.wfile.flush()
