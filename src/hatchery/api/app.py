"""The application factory. Domain errors become HTTP responses here and nowhere else."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.routing import iter_route_contexts
from fastapi.telemetry import TelemetryConfig
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Match

from hatchery import errors
from hatchery.api import admin, dashboard, ratelimit, routes, storage, videogen
from hatchery.api.dashboard import errors as dash_errors
from hatchery.api.edge import REQUEST_ID, Edge
from hatchery.api.envelope import fail
from hatchery.api.generate import Submitter
from hatchery.api.observe import Observe
from hatchery.api.openapi import served_document
from hatchery.api.videogen import auth as vg_auth
from hatchery.api.videogen import errors as vg_errors
from hatchery.api.videogen import playback
from hatchery.observe import tracing
from hatchery.observe.scrape import Exposition
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


def error_response(exc: errors.HatcheryError, path: str = "") -> Response:
    """A domain error as the API that owns ``path`` answers it (the Egg API's envelope unless
    the path is the VideoGen API's)."""
    if vg_errors.owns(path):
        return vg_errors.error_response(exc)
    headers = None if exc.retry_after is None else {"Retry-After": str(exc.retry_after)}
    return fail(status_of(exc), exc.code, exc.message, headers=headers)


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.HatcheryError)
    if dash_errors.owns(request.url.path):
        return dash_errors.error_page(request, exc, status_of(exc))
    return error_response(exc, request.url.path)


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
    if dash_errors.owns(request.url.path):
        return dash_errors.http_error_page(request, status, message)
    if vg_errors.owns(request.url.path):
        return vg_errors.http_error(status, message, headers or None)
    code = HTTP_CODES.get(status, "INTERNAL_ERROR" if status >= 500 else "BAD_REQUEST")
    return fail(status, code, message, headers=headers or None)


async def _request_error(request: Request, exc: Exception) -> Response:
    return fail(400, "BAD_REQUEST", f"Malformed request: {exc}")


async def _unexpected(request: Request, exc: Exception) -> Response:
    """A fault of ours, in the body of the API the path is, with the request's id (this answer
    is made outside the edge, which adds it to every other)."""
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    message = "Internal server error; the request was not completed"
    rid = request.scope.get(REQUEST_ID)
    headers = {"X-Request-ID": rid.decode("latin-1")} if isinstance(rid, bytes) else None
    if dash_errors.owns(request.url.path):
        return dash_errors.http_error_page(request, 500, message)
    if vg_errors.owns(request.url.path):
        return vg_errors.http_error(500, message, headers)
    return fail(500, "INTERNAL_ERROR", message, headers=headers)


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

    async def openapi(request: Request) -> Response:
        return JSONResponse(served_document(app.state, services.catalog, services.settings))

    async def docs(request: Request) -> Response:
        page: HTMLResponse = get_swagger_ui_html(openapi_url=OPENAPI_URL, title="Hatchery API")
        return page

    app.add_route(OPENAPI_URL, openapi, methods=["GET"], include_in_schema=False)
    app.add_route(DOCS_URL, docs, methods=["GET"], include_in_schema=False)


def create_app(services: Services, *, run_workers: bool = True) -> FastAPI:
    settings = services.settings
    limiter = ratelimit.Limiter.from_settings(services.settings)
    vg_auth.group_limits(services.settings.videogen_rate_limits)  # a bad one stops the start

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await services.routes.start()  # the routes seeded from the catalog file, and read
        background = Background(services) if run_workers else Listening(services)
        background.start()
        try:
            yield
        finally:
            await background.stop()
            await limiter.close()
            await services.close()
            tracing.flush()

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
    app.state.limiter = limiter
    app.include_router(routes.router)
    app.include_router(videogen.router)
    app.include_router(playback.router)
    app.include_router(storage.router)
    app.include_router(admin.router)
    app.include_router(dashboard.router)
    app.mount(dashboard.STATIC_PATH, dashboard.static, name="dashboard-static")
    add_documentation(app, services)
    app.add_exception_handler(errors.HatcheryError, _domain_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _request_error)
    app.add_exception_handler(Exception, _unexpected)
    app.add_middleware(
        Edge,
        limiter=limiter,
        generate=routes.generate,
        get_task=routes.get_task,
        error_response=error_response,
    )
    exposition = Exposition.of(services.db, settings)
    app.add_middleware(Observe, exposition=exposition, token=settings.metrics_token)
    return app
