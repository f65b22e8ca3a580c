"""The small HTTP server a worker process answers scrapes on (``GET /metrics`` on
``HATCHERY_METRICS_HOST:HATCHERY_METRICS_PORT``), and a scrape's answer (``answer``: who may
scrape, and what they get), which the API's ``/metrics`` gives too."""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable

from hatchery.observe.scrape import CONTENT_TYPE

log = logging.getLogger("hatchery.metrics")


def authorized(token: str, header: str | None) -> bool:
    """Whether a scrape may read the metrics: always without a token, else with it as a bearer
    token (compared in constant time)."""
    if not token:
        return True
    scheme, _, given = (header or "").strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


Render = Callable[[], Awaitable[bytes]]
MAX_HEAD = 8192  # bytes of a scrape's request line and headers read
TEXT = "text/plain; charset=utf-8"
REASONS = {200: "OK", 401: "Unauthorized", 404: "Not Found", 500: "Internal Server Error"}


async def answer(render: Render, token: str, authorization: str | None) -> tuple[int, str, bytes]:
    """A scrape's answer, on the API's ``/metrics`` and a worker's port alike: its status, its
    content type and its body (401 without the token when one is set; 500 if rendering fails)."""
    if not authorized(token, authorization):
        return 401, TEXT, b"a bearer token is needed (HATCHERY_METRICS_TOKEN)\n"
    try:
        return 200, CONTENT_TYPE, await render()
    except Exception:
        log.exception("rendering the metrics failed")
        return 500, TEXT, b"the metrics could not be rendered\n"


class MetricsServer:
    """A worker process's metrics on ``host:port`` (``GET /metrics``): HTTP/1.1, one request per
    connection, no body read; 404 for another path, 401 without the token when one is set."""

    def __init__(self, render: Render, host: str, port: int, token: str = "") -> None:
        self.render, self.host, self.port, self.token = render, host, port, token
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        sockets = self._server.sockets
        self.port = sockets[0].getsockname()[1] if sockets else self.port
        log.info("metrics on http://%s:%d/metrics", self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            status, content_type, body = await self._answer(head[:MAX_HEAD].decode("latin-1"))
            writer.write(
                f"HTTP/1.1 {status} {REASONS[status]}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass
        finally:
            writer.close()

    async def _answer(self, head: str) -> tuple[int, str, bytes]:
        request, *lines = head.split("\r\n")
        method, _, rest = request.partition(" ")
        path = rest.partition(" ")[0].partition("?")[0]
        if method != "GET" or path != "/metrics":
            return 404, TEXT, b"the metrics are at GET /metrics\n"
        headers = dict(line.partition(":")[::2] for line in lines if ":" in line)
        given = next((v.strip() for k, v in headers.items() if k.lower() == "authorization"), None)
        return await answer(self.render, self.token, given)
