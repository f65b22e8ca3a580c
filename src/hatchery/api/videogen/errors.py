"""The VideoGen API's errors: every domain error becomes ``{"message", "code"}`` here, once.

The statuses and codes the contract documents (``missing_api_key``, ``invalid_api_key``,
``invalid_id``, ``invalid_parameters``) and the ones it leaves to us, written down in
``docs/videogen.md``::

    Unauthorized            401  invalid_api_key (missing_api_key when no key was sent)
    NotAllowed              403  its reason (watermark_removal_not_allowed), with its
                                 ``requirement``
    Forbidden               403  forbidden
    InsufficientBalance     402  insufficient_credits
    InvalidId               400  invalid_id
    WrongFileType           400  invalid_file_type
    ValidationFailed, BadRequest
                            400  invalid_parameters
    PayloadTooLarge         413  file_too_large
    NotFound                404  not_found
    FileNotReady            409  file_not_ready
    Conflict                409  conflict
    IdempotencyMismatch     422  idempotency_key_reused
    RateLimited             429  rate_limited
    ServiceUnavailable      503  service_unavailable
    anything else           500  internal_error

:class:`VideoGenRoute` applies it to every route of the dialect's router, request validation
included, so the Egg API's envelope never reaches a VideoGen client.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hatchery import errors

log = logging.getLogger("hatchery.api")

MISSING_KEY = "missing_api_key"
ANSWERS: dict[type[errors.HatcheryError], tuple[int, str]] = {
    errors.Unauthorized: (401, "invalid_api_key"),
    errors.NotAllowed: (403, "not_allowed"),
    errors.WrongFileType: (400, "invalid_file_type"),
    errors.FileNotReady: (409, "file_not_ready"),
    errors.IdempotencyMismatch: (422, "idempotency_key_reused"),
    errors.Forbidden: (403, "forbidden"),
    errors.InsufficientBalance: (402, "insufficient_credits"),
    errors.InvalidId: (400, "invalid_id"),
    errors.PayloadTooLarge: (413, "file_too_large"),
    errors.RequestTimeout: (408, "request_timeout"),
    errors.BadRequest: (400, "invalid_parameters"),
    errors.ValidationFailed: (400, "invalid_parameters"),
    errors.NotFound: (404, "not_found"),
    errors.Conflict: (409, "conflict"),
    errors.RateLimited: (429, "rate_limited"),
    errors.ServiceUnavailable: (503, "service_unavailable"),
}


class MissingKey(errors.Unauthorized):
    """No API key was sent at all."""


def error_body(message: str, code: str) -> dict[str, object]:
    return {"message": message, "code": code}


def error_response(exc: errors.HatcheryError) -> Response:
    status, code = next(
        (ANSWERS[kind] for kind in type(exc).__mro__ if kind in ANSWERS),
        (500, "internal_error"),
    )
    if isinstance(exc, MissingKey):
        code = MISSING_KEY
    headers = None if exc.retry_after is None else {"Retry-After": str(exc.retry_after)}
    body = error_body(exc.message, code)
    if isinstance(exc, errors.NotAllowed):
        body.update(code=exc.reason, requirement=exc.requirement)
    return JSONResponse(body, status_code=status, headers=headers)


def validation_message(exc: RequestValidationError) -> str:
    """The first problem of a request, as ``field: what is wrong`` (camelCase, as sent)."""
    problems = []
    for error in exc.errors()[:3]:
        where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("body",))
        problems.append(f"{where}: {error.get('msg', 'invalid')}" if where else error["msg"])
    return "; ".join(problems) or "the request is not valid"


class VideoGenRoute(APIRoute):
    """A route whose every error is the VideoGen API's body."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except errors.HatcheryError as exc:
                return error_response(exc)
            except RequestValidationError as exc:
                return JSONResponse(
                    error_body(validation_message(exc), "invalid_parameters"), status_code=400
                )
            except HTTPException as exc:  # e.g. a body that is not JSON
                return http_error(exc.status_code, str(exc.detail), exc.headers)

        return handle


# Where the VideoGen API answers: errors on these paths that no route of the dialect handled
# (no such method, the per-IP limit at the edge) get its body too (``api.app``, ``api.edge``).
PATHS = ("/v1/files", "/v1/tools", "/v1/resources", "/v1/webhooks")
STATUS_CODES = {400: "invalid_parameters", 404: "not_found", 405: "method_not_allowed"}


def owns(path: str) -> bool:
    """Whether ``path`` is the VideoGen API's."""
    return path.startswith(PATHS) and (len(path) == _length(path) or path[_length(path)] == "/")


def _length(path: str) -> int:
    return next(len(prefix) for prefix in PATHS if path.startswith(prefix))


def http_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """An error that is not a domain error (the framework's 404 and 405, a body that could not
    be read), in the dialect's body."""
    code = STATUS_CODES.get(status, "internal_error" if status >= 500 else "invalid_parameters")
    return JSONResponse(error_body(message, code), status_code=status, headers=headers)
