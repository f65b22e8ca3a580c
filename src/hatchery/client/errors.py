"""What the SDK raises. Catch :class:`HatcheryError` for everything, or a kind of it::

    HatcheryError                       anything the SDK raises
    ├── APIError                        the API answered with an error envelope (or an error status)
    │   ├── BadRequestError             BAD_REQUEST            400
    │   ├── ValidationError             VALIDATION_ERROR       400
    │   ├── UnauthorizedError           UNAUTHORIZED           401
    │   ├── ForbiddenError              FORBIDDEN              403
    │   ├── InsufficientBalanceError    INSUFFICIENT_BALANCE   403
    │   ├── NotFoundError               NOT_FOUND              404
    │   ├── ConflictError               CONFLICT               409
    │   ├── IdempotencyMismatchError    IDEMPOTENCY_MISMATCH   422
    │   ├── RateLimitedError            RATE_LIMITED           429
    │   ├── InternalServerError         INTERNAL_ERROR         500
    │   ├── UpstreamError               UPSTREAM_ERROR         502
    │   └── ServiceUnavailableError     SERVICE_UNAVAILABLE    503
    ├── APIConnectionError              no answer: the server could not be reached
    │   └── APITimeoutError             no answer in time (also a ``TimeoutError``)
    ├── TaskFailedError                 a waited-for task ended ``failed``
    │   └── TaskCancelledError          ... or ``cancelled``
    ├── WaitTimeoutError                a task was still running when the wait ran out
    │                                   (also a ``TimeoutError``)
    └── ConfigurationError              no API key, or a base URL that is not http(s)

An :class:`APIError` carries ``code``, ``message``, ``status`` (HTTP), ``request_id`` (the
server's ``X-Request-ID``; quote it when reporting a problem) and ``retry_after`` (seconds, when the
response said). An error code this SDK does not
know yet becomes the class of its HTTP status, keeping its ``code``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hatchery.client.models import Task


class HatcheryError(Exception):
    pass


class ConfigurationError(HatcheryError):
    pass


class APIError(HatcheryError):
    code = "API_ERROR"
    status = 0

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.message = message
        self.code = code or type(self).code
        self.status = status if status is not None else type(self).status
        self.request_id = request_id
        self.retry_after = retry_after  # seconds, from a Retry-After header
        super().__init__(f"{self.code}: {message}")


class BadRequestError(APIError):
    code, status = "BAD_REQUEST", 400


class ValidationError(APIError):
    code, status = "VALIDATION_ERROR", 400


class UnauthorizedError(APIError):
    code, status = "UNAUTHORIZED", 401


class ForbiddenError(APIError):
    code, status = "FORBIDDEN", 403


class InsufficientBalanceError(APIError):
    code, status = "INSUFFICIENT_BALANCE", 403


class NotFoundError(APIError):
    code, status = "NOT_FOUND", 404


class ConflictError(APIError):
    code, status = "CONFLICT", 409


class IdempotencyMismatchError(APIError):
    """The ``Idempotency-Key`` of a submit was used before with a different body."""

    code, status = "IDEMPOTENCY_MISMATCH", 422


class RateLimitedError(APIError):
    code, status = "RATE_LIMITED", 429


class InternalServerError(APIError):
    code, status = "INTERNAL_ERROR", 500


class UpstreamError(APIError):
    code, status = "UPSTREAM_ERROR", 502


class ServiceUnavailableError(APIError):
    code, status = "SERVICE_UNAVAILABLE", 503


class APIConnectionError(HatcheryError):
    def __init__(self, message: str, *, request_sent: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.request_sent = request_sent  # True: the server may have acted on it


class APITimeoutError(APIConnectionError, TimeoutError):
    pass


class TaskFailedError(HatcheryError):
    def __init__(self, task: Task) -> None:
        self.task = task
        self.error = task.error or f"task {task.status}"
        super().__init__(f"task {task.id} {task.status}: {self.error}")


class TaskCancelledError(TaskFailedError):
    pass


class WaitTimeoutError(HatcheryError, TimeoutError):
    def __init__(self, task: Task, timeout: float) -> None:
        self.task = task
        self.timeout = timeout
        super().__init__(f"task {task.id} is still {task.status} after {timeout:g}s")


BY_CODE: dict[str, type[APIError]] = {
    cls.code: cls
    for cls in (
        BadRequestError,
        ValidationError,
        UnauthorizedError,
        ForbiddenError,
        InsufficientBalanceError,
        NotFoundError,
        ConflictError,
        IdempotencyMismatchError,
        RateLimitedError,
        InternalServerError,
        UpstreamError,
        ServiceUnavailableError,
    )
}
BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    413: BadRequestError,
    422: ValidationError,
    429: RateLimitedError,
    500: InternalServerError,
    502: UpstreamError,
    503: ServiceUnavailableError,
    504: UpstreamError,
}


def error_class(code: str | None, status: int) -> type[APIError]:
    """The class for an error envelope's ``code``; by HTTP status for codes not known here."""
    if code in BY_CODE:
        return BY_CODE[code]
    if status in BY_STATUS:
        return BY_STATUS[status]
    return InternalServerError if status >= 500 else APIError
