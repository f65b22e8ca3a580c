"""The edge of the API: one pure ASGI layer between uvicorn's request and the framework.

For every HTTP request it:

- gives the response an ``X-Request-ID``: the client's (up to 64 bytes), or a new one;
- on ``/v1/*`` and ``/admin/v1/*``, counts the request against its client IP's limit (429 here
  when over it), keeps the request's limits on its scope for the per-key check after
  authentication
  (``api.ratelimit``), and adds the rate limit headers to whatever response goes out;
- serves the hot routes itself: ``POST /v1/generate`` and ``GET /v1/tasks/{id}`` go straight to
  their endpoint functions in ``api.routes``, with domain errors answered as the app answers
  them (``api.app.error_response``). FastAPI's routing, its exception middleware and its
  request handler cost a poll as much as the poll's own database read; what those two
  endpoints take is a ``Request`` and a path parameter, which this layer gives them as FastAPI
  would.

Everything else goes on to the app. The hot routes stay registered in the app's router as well,
so that the OpenAPI checks list them and another method on their paths gets its 405 and
``Allow``; with their own method they never reach it. An error no handler maps propagates to the
app's outermost handler (a 500 envelope), as it would from the router.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hatchery import errors
from hatchery.api import ratelimit
from hatchery.api.observe import ROUTE
from hatchery.observe import logs

Endpoint = Callable[[Request], Awaitable[Response]]
TaskEndpoint = Callable[[Request, str], Awaitable[Response]]
ErrorResponse = Callable[[errors.HatcheryError, str], Response]  # the error, the path

TASK_PATH = "/v1/tasks/"
TASK_ROUTE = "/v1/tasks/{task_id}"
GENERATE_ROUTE = "/v1/generate"
LIMITED_ROUTE = "refused"  # the metrics' route of a request the IP limit refused before routing
LIMITED = ("/v1/", "/admin/v1/")  # the APIs: counted against the client IP's and keys' limits


# A new request id: this process's random 64 bits, then a count (32 hex digits in all).
_PROCESS = os.urandom(8).hex()
_COUNT = itertools.count(1)


REQUEST_ID = "hatchery.request_id"  # the scope key the request's id is kept under


def request_id(scope: Scope) -> bytes:
    """The client's ``X-Request-ID`` (its first 64 bytes), else a new one."""
    for name, value in scope["headers"]:
        if name == b"x-request-id" and value:
            given: bytes = value[:64]
            return given
    return f"{_PROCESS}{next(_COUNT):016x}".encode()


class Edge:
    """See the module docstring. ``generate`` and ``get_task`` are the hot endpoints;
    ``error_response`` turns a domain error into its response."""

    def __init__(
        self,
        app: ASGIApp,
        limiter: ratelimit.Limiter,
        generate: Endpoint,
        get_task: TaskEndpoint,
        error_response: ErrorResponse,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.generate = generate
        self.get_task = get_task
        self.error_response = error_response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = scope[REQUEST_ID] = request_id(scope)  # an error page of the app's says it too
        logs.begin_request(rid.decode("latin-1"))  # every line logged for it says it too
        headers: list[tuple[bytes, bytes]] = [(b"x-request-id", rid)]
        path: str = scope["path"]
        if not path.startswith(LIMITED):
            await self.app(scope, receive, _adding(send, headers))
            return
        limits = scope[ratelimit.SCOPE_KEY] = ratelimit.RequestLimits(self.limiter)
        scope[ROUTE] = hot_route(scope["method"], path) or LIMITED_ROUTE  # the router's, later
        try:
            await ratelimit.check_ip(scope)
            response = await self.hot(scope, receive, path)
        except errors.HatcheryError as exc:
            response = self.error_response(exc, path)
        if response is None:
            await self.app(scope, receive, _adding(send, headers, limits))
            return
        response.raw_headers += headers + limits.headers()
        await response(scope, receive, send)

    async def hot(self, scope: Scope, receive: Receive, path: str) -> Response | None:
        """The response of a hot route; None for a request that is not one (its label for the
        metrics is then the route the router finds)."""
        route = scope[ROUTE]
        if route == TASK_ROUTE:
            return await self.get_task(Request(scope, receive), path[len(TASK_PATH) :])
        if route == GENERATE_ROUTE:
            return await self.generate(Request(scope, receive))
        del scope[ROUTE]
        return None


def hot_route(method: str, path: str) -> str | None:
    """The template of the hot route a request is for, if it is for one."""
    if method == "GET" and path.startswith(TASK_PATH):
        task_id = path[len(TASK_PATH) :]
        return TASK_ROUTE if task_id and "/" not in task_id else None
    if method == "POST" and path == GENERATE_ROUTE:
        return GENERATE_ROUTE
    return None


def _adding(
    send: Send, headers: list[tuple[bytes, bytes]], limits: ratelimit.RequestLimits | None = None
) -> Send:
    """``send``, adding ``headers`` (and the rate limit headers, as they stand by then) to the
    response's start."""

    async def send_adding(message: Message) -> None:
        if message["type"] == "http.response.start":
            extra = headers if limits is None else headers + limits.headers()
            message["headers"] = [*message.get("headers", []), *extra]
        await send(message)

    return send_adding
