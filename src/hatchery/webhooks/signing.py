"""Webhook signatures, shared by the server (signing) and the SDK (verifying); stdlib only.

Two schemes, side by side:

* the Egg API's: ``X-EggAPI-Timestamp`` (Unix seconds) and, when the account has a webhook
  secret, ``X-EggAPI-Signature: sha256=<hex HMAC-SHA256 of "{timestamp}.{raw_body}">`` keyed
  with the secret's text (:func:`sign`, :func:`verify`);
* Standard Webhooks (registered endpoints, and per-task webhooks beside the Egg headers):
  ``webhook-id`` (the message id, the same on every attempt), ``webhook-timestamp`` and
  ``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{raw_body}">``, keyed with
  the base64-decoded part of a ``whsec_`` secret, as the ``standardwebhooks`` library and the
  VideoGen SDK read it (:func:`standard_key`, :func:`verify_standard`).

    WebhookVerificationError        the delivery cannot be trusted
    ├── MissingHeaderError          a required header is absent
    ├── StaleTimestampError         the timestamp is outside the tolerance
    └── InvalidSignatureError       the signature does not match
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

SIGNATURE_HEADER = "X-EggAPI-Signature"
TIMESTAMP_HEADER = "X-EggAPI-Timestamp"
ID = "webhook-id"
TIMESTAMP = "webhook-timestamp"
SIGNATURE = "webhook-signature"


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


def _check_fresh(name: str, timestamp: str, tolerance: int, now: float | None) -> None:
    """StaleTimestampError unless ``timestamp`` is Unix seconds within ``tolerance`` of now."""
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise StaleTimestampError(f"{name} is not a Unix timestamp") from None
    current = time.time() if now is None else now
    if tolerance and abs(current - sent_at) > tolerance:
        raise StaleTimestampError(
            f"webhook timestamp is {int(current - sent_at)}s away from now (tolerance {tolerance}s)"
        )


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
    _check_fresh(TIMESTAMP_HEADER, timestamp, tolerance, now)
    if not hmac.compare_digest(signature, sign(secret, timestamp, raw_body)):
        raise InvalidSignatureError("webhook signature does not match")
    event: dict[str, Any] = json.loads(_as_bytes(raw_body))
    return event


# --------------------------------------------------------------------------- Standard Webhooks


def standard_key(secret: str) -> bytes:
    """The HMAC key of a secret: after an optional ``whsec_``, its base64, decoded (as the
    ``standardwebhooks`` library reads it); a secret that is not base64, its UTF-8 bytes."""
    text = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(text + "==")
    except (binascii.Error, ValueError):
        key = b""
    return key or text.encode("utf-8")


def standard_signature(
    secret: str, message_id: str, timestamp: int | str, body: bytes | str
) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + _as_bytes(body)
    digest = hmac.new(standard_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def standard_headers(
    message_id: str, timestamp: int, body: bytes | str, secret: str | None
) -> dict[str, str]:
    """``webhook-id`` and ``webhook-timestamp``, and with a secret ``webhook-signature``."""
    headers = {ID: message_id, TIMESTAMP: str(timestamp)}
    if secret:
        headers[SIGNATURE] = standard_signature(secret, message_id, timestamp, body)
    return headers


def verify_standard(
    raw_body: bytes | str,
    headers: Mapping[str, str],
    secret: str,
    tolerance: int = 300,
    *,
    now: float | None = None,
) -> dict[str, Any]:
    """Check a Standard Webhooks delivery (any of its ``v1,`` signatures, a timestamp within
    ``tolerance`` seconds); return the parsed event. Deduplicate by its ``webhook-id``."""
    message_id = _header(headers, ID)
    timestamp = _header(headers, TIMESTAMP)
    signatures = _header(headers, SIGNATURE)
    _check_fresh(TIMESTAMP, timestamp, tolerance, now)
    expected = standard_signature(secret, message_id, timestamp, raw_body)
    if not any(hmac.compare_digest(expected, given) for given in signatures.split(" ")):
        raise InvalidSignatureError("no webhook-signature matches")
    event: dict[str, Any] = json.loads(_as_bytes(raw_body))
    return event
