"""Domain errors, raised by the store and the services and mapped to HTTP once, in ``api.app``.

HatcheryError                 code
├── BadRequest                BAD_REQUEST
├── ValidationFailed          VALIDATION_ERROR
├── Unauthorized              UNAUTHORIZED
├── Forbidden                 FORBIDDEN
├── InsufficientBalance       INSUFFICIENT_BALANCE
├── NotFound                  NOT_FOUND
└── Conflict                  CONFLICT
"""

from __future__ import annotations


class HatcheryError(Exception):
    code = "INTERNAL_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(HatcheryError):
    code = "BAD_REQUEST"


class ValidationFailed(HatcheryError):
    code = "VALIDATION_ERROR"


class Unauthorized(HatcheryError):
    code = "UNAUTHORIZED"


class Forbidden(HatcheryError):
    code = "FORBIDDEN"


class InsufficientBalance(HatcheryError):
    code = "INSUFFICIENT_BALANCE"


class NotFound(HatcheryError):
    code = "NOT_FOUND"


class Conflict(HatcheryError):
    code = "CONFLICT"
