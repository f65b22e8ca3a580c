"""Tests for hatchery.webhooks.signing: HMAC-SHA256 webhook signatures and their verification.

Expected signatures are computed here with hmac/hashlib directly, not with the module's sign().
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable

import pytest

from hatchery.webhooks.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    InvalidSignatureError,
    MissingHeaderError,
    StaleTimestampError,
    WebhookVerificationError,
    sign,
    signed_headers,
    verify,
)

SECRET = "whsec_test_secret"
TS = 1_778_236_200
BODY = json.dumps(
    {"event": "task.completed", "task_id": "gen_abcdefghijklmnop", "cost": "0.010000"},
    separators=(",", ":"),
)


def expected_signature(secret: str, ts: int | str, body: str) -> str:
    digest = hmac.new(secret.encode(), f"{ts}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def test_header_names() -> None:
    assert SIGNATURE_HEADER == "X-EggAPI-Signature"
    assert TIMESTAMP_HEADER == "X-EggAPI-Timestamp"


@pytest.mark.parametrize(
    ("secret", "ts", "body"),
    [
        (SECRET, TS, BODY),
        ("s", 0, ""),
        ("ключ", 42, '{"prompt":"café ☕"}'),
        (SECRET, "1778236200", BODY),
    ],
)
def test_sign_matches_independent_hmac(secret: str, ts: int | str, body: str) -> None:
    assert sign(secret, ts, body) == expected_signature(secret, ts, body)


def test_sign_str_and_bytes_agree() -> None:
    assert sign(SECRET, TS, BODY) == sign(SECRET, TS, BODY.encode("utf-8"))


def test_sign_depends_on_every_input() -> None:
    base = sign(SECRET, TS, BODY)
    assert sign(SECRET + "x", TS, BODY) != base
    assert sign(SECRET, TS + 1, BODY) != base
    assert sign(SECRET, TS, BODY + " ") != base


def test_signed_headers_with_secret() -> None:
    headers = signed_headers(BODY, SECRET, TS)
    assert headers == {
        "Content-Type": "application/json",
        "X-EggAPI-Timestamp": str(TS),
        "X-EggAPI-Signature": expected_signature(SECRET, TS, BODY),
    }


@pytest.mark.parametrize("secret", [None, ""])
def test_signed_headers_without_secret(secret: str | None) -> None:
    headers = signed_headers(BODY, secret, TS)
    assert headers == {"Content-Type": "application/json", "X-EggAPI-Timestamp": str(TS)}


def test_verify_returns_the_parsed_event() -> None:
    headers = signed_headers(BODY, SECRET, TS)
    assert verify(BODY, headers, SECRET, now=TS) == json.loads(BODY)


def test_verify_accepts_bytes_body() -> None:
    raw = BODY.encode("utf-8")
    headers = signed_headers(raw, SECRET, TS)
    assert verify(raw, headers, SECRET, now=TS + 10) == json.loads(BODY)


def test_verify_accepts_non_ascii_bodies_signed_as_str_verified_as_bytes() -> None:
    body = json.dumps({"prompt": "café ☕"}, ensure_ascii=False)
    headers = signed_headers(body, SECRET, TS)
    assert verify(body.encode("utf-8"), headers, SECRET, now=TS) == {"prompt": "café ☕"}


@pytest.mark.parametrize("transform", [str.lower, str.upper, lambda s: s])
def test_header_names_are_case_insensitive(transform: Callable[[str], str]) -> None:
    headers = {transform(k): v for k, v in signed_headers(BODY, SECRET, TS).items()}
    assert verify(BODY, headers, SECRET, now=TS)["task_id"] == "gen_abcdefghijklmnop"


def test_verify_with_a_hand_built_delivery() -> None:
    headers = {
        "x-eggapi-timestamp": str(TS),
        "x-eggapi-signature": expected_signature(SECRET, TS, BODY),
    }
    assert verify(BODY, headers, SECRET, now=TS)["event"] == "task.completed"


@pytest.mark.parametrize("missing", [TIMESTAMP_HEADER, SIGNATURE_HEADER])
def test_missing_header(missing: str) -> None:
    headers = signed_headers(BODY, SECRET, TS)
    del headers[missing]
    with pytest.raises(MissingHeaderError, match=missing):
        verify(BODY, headers, SECRET, now=TS)


def test_unsigned_delivery_is_missing_the_signature() -> None:
    with pytest.raises(MissingHeaderError, match=SIGNATURE_HEADER):
        verify(BODY, signed_headers(BODY, None, TS), SECRET, now=TS)


def test_empty_header_counts_as_missing() -> None:
    headers = signed_headers(BODY, SECRET, TS)
    headers[SIGNATURE_HEADER] = ""
    with pytest.raises(MissingHeaderError):
        verify(BODY, headers, SECRET, now=TS)


@pytest.mark.parametrize("offset", [301, -301, 3600, -86400])
def test_timestamp_outside_tolerance_is_stale(offset: int) -> None:
    headers = signed_headers(BODY, SECRET, TS)
    with pytest.raises(StaleTimestampError, match="tolerance 300s"):
        verify(BODY, headers, SECRET, now=TS + offset)


@pytest.mark.parametrize("offset", [0, 300, -300, 299.9])
def test_timestamp_inside_tolerance_is_accepted(offset: float) -> None:
    headers = signed_headers(BODY, SECRET, TS)
    assert verify(BODY, headers, SECRET, now=TS + offset)


def test_custom_tolerance() -> None:
    headers = signed_headers(BODY, SECRET, TS)
    assert verify(BODY, headers, SECRET, tolerance=10, now=TS + 10)
    with pytest.raises(StaleTimestampError):
        verify(BODY, headers, SECRET, tolerance=10, now=TS + 11)


def test_zero_tolerance_disables_the_freshness_check() -> None:
    headers = signed_headers(BODY, SECRET, TS)
    assert verify(BODY, headers, SECRET, tolerance=0, now=TS + 10**9)


def test_non_numeric_timestamp_is_stale() -> None:
    headers = {TIMESTAMP_HEADER: "yesterday", SIGNATURE_HEADER: sign(SECRET, "yesterday", BODY)}
    with pytest.raises(StaleTimestampError, match="not a Unix timestamp"):
        verify(BODY, headers, SECRET, now=TS)


def test_tampered_body_is_invalid() -> None:
    headers = signed_headers(BODY, SECRET, TS)
    tampered = BODY.replace("0.010000", "0.000000")
    assert tampered != BODY
    with pytest.raises(InvalidSignatureError):
        verify(tampered, headers, SECRET, now=TS)


def test_reserialised_json_does_not_verify() -> None:
    headers = signed_headers(BODY, SECRET, TS)
    with pytest.raises(InvalidSignatureError):
        verify(json.dumps(json.loads(BODY)), headers, SECRET, now=TS)


def test_wrong_secret_is_invalid() -> None:
    headers = signed_headers(BODY, SECRET, TS)
    with pytest.raises(InvalidSignatureError):
        verify(BODY, headers, "another-secret", now=TS)


def test_replayed_signature_with_a_new_timestamp_is_invalid() -> None:
    headers = signed_headers(BODY, SECRET, TS)
    headers[TIMESTAMP_HEADER] = str(TS + 100)
    with pytest.raises(InvalidSignatureError):
        verify(BODY, headers, SECRET, now=TS + 100)


def test_signature_without_prefix_is_invalid() -> None:
    headers = signed_headers(BODY, SECRET, TS)
    headers[SIGNATURE_HEADER] = headers[SIGNATURE_HEADER].removeprefix("sha256=")
    with pytest.raises(InvalidSignatureError):
        verify(BODY, headers, SECRET, now=TS)


def test_error_hierarchy() -> None:
    for cls in (MissingHeaderError, StaleTimestampError, InvalidSignatureError):
        assert issubclass(cls, WebhookVerificationError)
    assert issubclass(WebhookVerificationError, ValueError)
