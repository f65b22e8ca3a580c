"""The opaque position a list returns as ``data.pagination.cursor`` and accepts as ``?cursor=``.

It names the last task of a page (its place in the account's history), so the next page starts
right after it however deep it is, and a task submitted meanwhile never pushes one onto the next
page twice. Clients pass it back unchanged; its shape may change between versions.
"""

from __future__ import annotations

import base64
import binascii

from hatchery.errors import BadRequest

PREFIX = "t1."
MAX_DIGITS = 18  # positions are BIGINT sequence values: 18 digits is short of 2**63


def encode(position: int) -> str:
    raw = f"{PREFIX}{position}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> int:
    """The position in ``cursor``; BadRequest when it is not one this server gave out."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
    except (UnicodeError, binascii.Error, ValueError):
        text = ""
    digits = text.removeprefix(PREFIX)
    if (
        not text.startswith(PREFIX)
        or not (digits.isascii() and digits.isdigit())
        or len(digits) > MAX_DIGITS
    ):
        raise BadRequest(
            f"cursor {cursor[:64]!r} is not valid: pass back data.pagination.cursor from the "
            "previous page unchanged"
        )
    return int(digits)
