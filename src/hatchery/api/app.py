"""The application factory. Domain errors become HTTP responses here and nowhere else."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.routing import iter_route_contexts
from fastapi.telemetry import TelemetryConfig
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hatchery import errors
from hatchery.api import ratelimit
from hatchery.api.envelope import fail
from hatchery.api.generate import Submitter
from hatchery.api.openapi import openapi_document
from hatchery.api.routes import router
from hatchery.runtime import Background, Listening
from hatchery.services import Services

log = logging.getLogger("hatchery.api")

STATUS = {
    errors.BadRequest: 400,
    errors.ValidationFailed: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.InsufficientBalance: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.IdempotencyMismatch: 422,
    errors.RateLimited: 429,
    errors.RequestTimeout: 408,
    errors.PayloadTooLarge: 413,
    errors.ServiceUnavailable: 503,
}


def status_of(exc: errors.HatcheryError) -> int:
    """The HTTP status of the nearest class in the error's hierarchy that has one (500 if none):
    a new subclass answers like its parent unless it is listed itself."""
    return next((STATUS[kind] for kind in type(exc).__mro__ if kind in STATUS), 500)


HTTP_CODES = {401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND", 429: "RATE_LIMITED"}


def error_response(exc: errors.HatcheryError) -> Response:
    headers = None if exc.retry_after is None else {"Retry-After": str(exc.retry_after)}
    return fail(status_of(exc), exc.code, exc.message, headers=headers)


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.HatcheryError)
    return error_response(exc)


def allowed_methods(request: Request) -> list[str]:
    """The methods of every route whose path matches the request's, whatever its method."""
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= route.methods or set()
    return sorted(methods)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    status, headers = exc.status_code, dict(exc.headers or {})
    if status == 404:
        message = f"Route not found: {request.method} {request.url.path}"
    elif status == 405:  # the envelope, and every method the path takes (RFC 9110's Allow)
        allowed = allowed_methods(request) or [headers.get("Allow", "")]
        headers["Allow"] = ", ".join(allowed)
        message = (
            f"Method {request.method} is not allowed on {request.url.path}; "
            f"use {' or '.join(allowed)}"
        )
    else:
        message = str(exc.detail)
    code = HTTP_CODES.get(status, "INTERNAL_ERROR" if status >= 500 else "BAD_REQUEST")
    return fail(status, code, message, headers=headers or None)


async def _request_error(request: Request, exc: Exception) -> Response:
    return fail(400, "BAD_REQUEST", f"Malformed request: {exc}")


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return fail(500, "INTERNAL_ERROR", "Internal server error; the request was not completed")


class RequestId:
    """Pure ASGI middleware: each response carries ``X-Request-ID`` (the client's or a new one)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"")
        request_id = given[:64] if given else os.urandom(16).hex().encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id)]
            await send(message)

        await self.app(scope, receive, send_with_id)


class RateLimits:
    """Pure ASGI middleware for ``/v1/*``: counts the request against its client IP's limit
    (429 here if over it), keeps the request's limits on its scope for the per-key check after
    authentication, and adds the rate limit headers to whatever response goes out."""

    def __init__(self, app: ASGIApp, limiter: ratelimit.Limiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        limits = scope[ratelimit.SCOPE_KEY] = ratelimit.RequestLimits(self.limiter)
        send = limits.wrap(send)
        try:
            await ratelimit.check_ip(scope)
        except errors.RateLimited as exc:
            await error_response(exc)(scope, receive, send)
            return
        await self.app(scope, receive, send)


NO_TELEMETRY: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
    "auto_configure": False,
}
OPENAPI_URL = "/openapi.json"
DOCS_URL = "/docs"


def add_documentation(app: FastAPI, services: Services) -> None:
    """``GET /openapi.json``: the API's OpenAPI document (``api.openapi``), built on first use
    and kept; ``GET /docs``: Swagger UI (the browser loads its script and styles from a CDN)."""
    built: list[dict[str, Any]] = []

    async def openapi(request: Request) -> Response:
        if not built:
            built.append(openapi_document(services.catalog, services.settings))
        return JSONResponse(built[0])

    async def docs(request: Request) -> Response:
        page: HTMLResponse = get_swagger_ui_html(openapi_url=OPENAPI_URL, title="Hatchery API")
        return page

    app.add_route(OPENAPI_URL, openapi, methods=["GET"], include_in_schema=False)
    app.add_route(DOCS_URL, docs, methods=["GET"], include_in_schema=False)


def create_app(services: Services, *, run_workers: bool = True) -> FastAPI:
    limiter = ratelimit.Limiter.from_settings(services.settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        background = Background(services) if run_workers else Listening(services)
        background.start()
        try:
            yield
        finally:
            await background.stop()
            await limiter.close()
            await services.close()

    app = FastAPI(
        title="Hatchery",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # FastAPI would infer an empty document: see add_documentation
        redoc_url=None,
        openapi_url=None,
        # FastAPI's own OpenTelemetry spans, metrics and logs: nothing here exports them yet,
        # and they cost every request about as much as a key lookup from memory.
        telemetry=NO_TELEMETRY,
    )
    app.state.services = services
    app.state.submitter = Submitter(services)
    app.include_router(router)
    add_documentation(app, services)
    app.add_exception_handler(errors.HatcheryError, _domain_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _request_error)
    app.add_exception_handler(Exception, _unexpected)
    app.add_middleware(RateLimits, limiter=limiter)
    app.add_middleware(RequestId)
    return app
