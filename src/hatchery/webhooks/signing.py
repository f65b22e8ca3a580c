"""Webhook signatures, shared by the server (signing) and the SDK (verifying); stdlib only.

A delivery carries ``X-EggAPI-Timestamp`` (Unix seconds) and, when the account has a webhook
secret, ``X-EggAPI-Signature: sha256=<hex HMAC-SHA256 of "{timestamp}.{raw_body}">``.

    WebhookVerificationError        the delivery cannot be trusted
    ├── MissingHeaderError          a required header is absent
    ├── StaleTimestampError         the timestamp is outside the tolerance
    └── InvalidSignatureError       the signature does not match
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

SIGNATURE_HEADER = "X-EggAPI-Signature"
TIMESTAMP_HEADER = "X-EggAPI-Timestamp"


class WebhookVerificationError(ValueError):
    pass


class MissingHeaderError(WebhookVerificationError):
    pass


class StaleTimestampError(WebhookVerificationError):
    pass


class InvalidSignatureError(WebhookVerificationError):
    pass


def _as_bytes(body: bytes | str) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else body


def sign(secret: str, timestamp: int | str, body: bytes | str) -> str:
    message = f"{timestamp}.".encode() + _as_bytes(body)
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
    return "sha256=" + digest


def signed_headers(body: bytes | str, secret: str | None, timestamp: int) -> dict[str, str]:
    headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: str(timestamp)}
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, timestamp, body)
    return headers


def _header(headers: Mapping[str, str], name: str) -> str:
    lowered = {k.lower(): v for k, v in headers.items()}
    value = lowered.get(name.lower())
    if not value:
        raise MissingHeaderError(f"missing {name} header")
    return value


def verify(
    raw_body: bytes | str,
    headers: Mapping[str, str],
    secret: str,
    tolerance: int = 300,
    *,
    now: float | None = None,
) -> dict[str, Any]:
    """Check a delivery's signature and freshness; return the parsed event.

    Pass the raw request body exactly as received: re-serialised JSON will not verify.
    """
    timestamp = _header(headers, TIMESTAMP_HEADER)
    signature = _header(headers, SIGNATURE_HEADER)
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise StaleTimestampError(f"{TIMESTAMP_HEADER} is not a Unix timestamp") from None
    current = time.time() if now is None else now
    if tolerance and abs(current - sent_at) > tolerance:
        raise StaleTimestampError(
            f"webhook timestamp is {int(current - sent_at)}s away from now (tolerance {tolerance}s)"
        )
    if not hmac.compare_digest(signature, sign(secret, timestamp, raw_body)):
        raise InvalidSignatureError("webhook signature does not match")
    event: dict[str, Any] = json.loads(_as_bytes(raw_body))
    return event
