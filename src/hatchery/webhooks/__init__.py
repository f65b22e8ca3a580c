"""Webhook signing and verification (standard library only; the delivery loop lives in
``hatchery.webhooks.delivery`` and needs the server extra)."""

from hatchery.webhooks.signing import (
    InvalidSignatureError,
    MissingHeaderError,
    StaleTimestampError,
    WebhookVerificationError,
    sign,
    standard_headers,
    verify,
    verify_standard,
)

__all__ = [
    "InvalidSignatureError",
    "MissingHeaderError",
    "StaleTimestampError",
    "WebhookVerificationError",
    "sign",
    "standard_headers",
    "verify",
    "verify_standard",
]
