"""The outermost ASGI layer: every HTTP request timed and counted by route template, method and
status (``observe.metrics``), and, with tracing on, its span (continuing the client's
``traceparent``). ``GET /metrics`` is served here too, before the rest of the stack: a scrape
is neither rate limited nor counted as an API request.

The route is the template the router matched (``/v1/tasks/{task_id}``), the edge's for the hot
routes it serves itself, and ``unmatched`` for a path no route has (so a scan of random paths
cannot grow the metrics).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hatchery.observe import metrics, tracing
from hatchery.observe.scrape import Exposition
from hatchery.observe.server import answer

ROUTE = "hatchery.route"  # the scope key of a route the edge served itself
METRICS_PATH = "/metrics"


def route_of(scope: Scope) -> str:
    served = scope.get(ROUTE)
    if served is not None:
        return str(served)
    route = scope.get("route")
    if route is not None:
        return str(route.path)
    root = scope.get("root_path")
    if root and "endpoint" in scope:  # a mounted app's (the dashboard's static files)
        return f"{root}/{{path}}"
    return "unmatched"


class Observe:
    def __init__(self, app: ASGIApp, exposition: Exposition, token: str = "") -> None:
        self.app = app
        self.exposition = exposition
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == METRICS_PATH and scope["method"] == "GET":
            await self.scrape(scope, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            if tracing.enabled():
                await self.traced(scope, receive, sending, lambda: status)
            else:
                await self.app(scope, receive, sending)
        finally:
            elapsed = time.perf_counter() - started
            method = metrics.method_of(scope["method"])
            metrics.http_request(route_of(scope), method, status, elapsed)

    async def traced(
        self, scope: Scope, receive: Receive, send: Send, status: Callable[[], int]
    ) -> None:
        method = scope["method"]
        parent = _header(scope, b"traceparent")
        with tracing.span(  # a new trace unless the client's: never the last request's
            method, kind=tracing.SERVER, parent=parent, root=True
        ) as current:
            try:
                await self.app(scope, receive, send)
            finally:
                route = route_of(scope)
                tracing.set_attributes(  # not the path: a file's carries its secret token
                    current,
                    **{
                        "http.request.method": method,
                        "http.route": route,
                        "http.response.status_code": status(),
                    },
                )
                if current is not None:
                    current.update_name(f"{method} {route}")

    async def scrape(self, scope: Scope, send: Send) -> None:
        authorization = _header(scope, b"authorization")
        status, kind, body = await answer(self.exposition.render, self.token, authorization)
        headers = [
            (b"content-type", kind.encode()),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None
