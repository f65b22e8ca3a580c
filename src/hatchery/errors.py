"""Domain errors, raised by the store and the services and mapped to HTTP once, in ``api.app``.

::

    HatcheryError                 INTERNAL_ERROR      500
    ├── BadRequest                BAD_REQUEST         400
    │   ├── InvalidId             BAD_REQUEST         400  (an id of the wrong shape or kind)
    │   ├── PayloadTooLarge       BAD_REQUEST         413
    │   └── RequestTimeout        BAD_REQUEST         408  (the body did not arrive in time)
    ├── ValidationFailed          VALIDATION_ERROR    400
    │   └── WrongFileType         VALIDATION_ERROR    400  (a stored file of another type)
    ├── Unauthorized              UNAUTHORIZED        401
    ├── Forbidden                 FORBIDDEN           403
    │   └── NotAllowed            FORBIDDEN           403  (needs what the account lacks; says what)
    ├── InsufficientBalance       INSUFFICIENT_BALANCE 403
    ├── NotFound                  NOT_FOUND           404
    ├── Conflict                  CONFLICT            409
    │   └── FileNotReady          CONFLICT            409  (a stored file still being processed)
    ├── IdempotencyMismatch       IDEMPOTENCY_MISMATCH 422
    ├── RateLimited               RATE_LIMITED        429  (carries retry_after, in seconds)
    └── ServiceUnavailable        SERVICE_UNAVAILABLE 503
        ├── StoreUnavailable      SERVICE_UNAVAILABLE 503  (the database did not answer)
        └── ObjectStoreUnavailable SERVICE_UNAVAILABLE 503 (the object store did not answer)
"""

from __future__ import annotations


class HatcheryError(Exception):
    code = "INTERNAL_ERROR"

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after  # sent as Retry-After, in seconds, when set


class BadRequest(HatcheryError):
    code = "BAD_REQUEST"


class InvalidId(BadRequest):
    pass


class PayloadTooLarge(BadRequest):
    pass


class RequestTimeout(BadRequest):
    pass


class ValidationFailed(HatcheryError):
    code = "VALIDATION_ERROR"


class WrongFileType(ValidationFailed):
    """A stored file given where a file of another type is needed."""


class Unauthorized(HatcheryError):
    code = "UNAUTHORIZED"


class Forbidden(HatcheryError):
    code = "FORBIDDEN"


class NotAllowed(Forbidden):
    """Something the account may not do until the operator allows it; ``requirement`` says
    what it needs (``{"type": ..., "details": {...}}``)."""

    def __init__(self, message: str, reason: str, requirement: dict[str, object]) -> None:
        super().__init__(message)
        self.reason = reason  # a snake_case word for it (``watermark_removal_not_allowed``)
        self.requirement = requirement


class InsufficientBalance(HatcheryError):
    code = "INSUFFICIENT_BALANCE"


class NotFound(HatcheryError):
    code = "NOT_FOUND"


class Conflict(HatcheryError):
    code = "CONFLICT"


class FileNotReady(Conflict):
    """A stored file that is still being uploaded or processed."""


class IdempotencyMismatch(HatcheryError):
    code = "IDEMPOTENCY_MISMATCH"


class RateLimited(HatcheryError):
    code = "RATE_LIMITED"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, retry_after)


class ServiceUnavailable(HatcheryError):
    code = "SERVICE_UNAVAILABLE"


class StoreUnavailable(ServiceUnavailable):
    """The database could not be reached, or was too busy to answer in time: nothing was
    written, and trying again later is right."""


class ObjectStoreUnavailable(ServiceUnavailable):
    """The object store (local directory or S3-compatible service) could not be reached or
    failed: nothing was recorded as done, and trying again later is right."""
