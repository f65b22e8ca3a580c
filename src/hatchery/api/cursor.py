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


def pack(prefix: str, *numbers: int) -> str:
    """Non-negative integers as an opaque cursor of the kind ``prefix`` names."""
    raw = (prefix + ".".join(str(n) for n in numbers)).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unpack(prefix: str, cursor: str, count: int) -> tuple[int, ...] | None:
    """The ``count`` integers of a cursor of the kind ``prefix`` names; None if it is not one."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
    except (UnicodeError, binascii.Error, ValueError):
        return None
    if not text.startswith(prefix):
        return None
    parts = text.removeprefix(prefix).split(".")
    if len(parts) != count or not all(
        p.isascii() and p.isdigit() and len(p) <= MAX_DIGITS for p in parts
    ):
        return None
    return tuple(int(p) for p in parts)


def encode(position: int) -> str:
    return pack(PREFIX, position)


def decode(cursor: str) -> int:
    """The position in ``cursor``; BadRequest when it is not one this server gave out."""
    numbers = unpack(PREFIX, cursor, 1)
    if numbers is None:
        raise BadRequest(
            f"cursor {cursor[:64]!r} is not valid: pass back data.pagination.cursor from the "
            "previous page unchanged"
        )
    return numbers[0]


def tail(prefix: str, after: int | None) -> dict[str, object]:
    """G2's ``hasMore`` and ``nextCursor`` of a page whose next one starts after the position
    ``after`` (None: this was the last page)."""
    next_cursor = None if after is None else pack(prefix, after)
    return {"hasMore": next_cursor is not None, "nextCursor": next_cursor}


def position(prefix: str, given: str | None, route: str) -> int | None:
    """The one-number position of a ``prefix`` cursor given to ``route`` (None when none was
    given); BadRequest, saying how to page, for one it did not give out."""
    if given is None:
        return None
    numbers = unpack(prefix, given, 1)
    if numbers is None:
        raise BadRequest(
            f"cursor is not valid: pass back nextCursor from the previous page of {route} unchanged"
        )
    return numbers[0]
