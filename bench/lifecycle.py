"""Lifecycle: how long a task takes to be picked up, to complete, and to reach its webhook.

Submits at a fixed rate (open loop) to a server with its workers on, every task with a webhook
to a receiver in this process. Dispatch is ``started_at - created_at`` as stored (both stamped
by the server); completed and webhook are measured from the moment the load generator sent the
submit (wall clock, same machine).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from bench.common import Stack, free_port, request, summary
from hatchery.store.tables import tasks


class Receiver:
    """A webhook receiver on 127.0.0.1 that notes when each task's event arrived."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.port = free_port()
        arrived = self.arrived

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                arrived.setdefault(json.loads(body)["task_id"], time.time())
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def wait_for(self, ids: set[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ids <= self.arrived.keys() and time.monotonic() < deadline:
            time.sleep(0.1)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def stamps(database_url: str, ids: list[str]) -> list[tuple[Any, ...]]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            query = sa.select(
                tasks.c.id,
                tasks.c.status,
                tasks.c.created_at,
                tasks.c.started_at,
                tasks.c.completed_at,
            ).where(tasks.c.id.in_(ids))
            return [tuple(row) for row in await conn.execute(query)]
    finally:
        await engine.dispose()


def ms(later: datetime | None, earlier: float) -> float | None:
    return None if later is None else (later.timestamp() - earlier) * 1000


def run(
    stack: Stack,
    *,
    rate: float,
    seconds: float,
    body: dict[str, Any],
    load: Callable[[dict[str, Any]], dict[str, Any]],
) -> dict[str, Any]:
    receiver = Receiver()
    try:
        hooked = request("POST", "/v1/generate", stack.key, {**body, "webhook_url": receiver.url})
        with stack.server() as proc:
            spec = {"port": stack.port, "pid": proc.pid, "mode": "open", "rate": rate}
            spec |= {"duration": seconds, "connections": 16, "record_bodies": True}
            report = load(spec | {"requests": [hooked]})
            sent = {
                json.loads(r["body"])["data"]["id"]: r["t"]
                for r in report["responses"]
                if r["status"] == 202
            }
            receiver.wait_for(set(sent), timeout=120)
        rows = asyncio.run(stamps(stack.database_url, list(sent)))
    finally:
        receiver.stop()
    return measure(sent, rows, receiver.arrived) | {"submit_rate": rate}


def measure(
    sent: dict[str, float], rows: list[tuple[Any, ...]], arrived: dict[str, float]
) -> dict[str, Any]:
    dispatch = [(s - c).total_seconds() * 1000 for _, _, c, s, _ in rows if s is not None]
    completed = [ms(done, sent[i]) for i, *_, done in rows]
    hooks = [(arrived[i] - t) * 1000 for i, t in sent.items() if i in arrived]
    statuses: dict[str, int] = {}
    for _, status, *_ in rows:
        statuses[status] = statuses.get(status, 0) + 1
    return {
        "tasks": len(sent),
        "statuses": statuses,
        "webhooks_received": len(hooks),
        "dispatch_ms": summary(dispatch),
        "completed_ms": summary([c for c in completed if c is not None]),
        "webhook_ms": summary(hooks),
    }
