"""Reading a list's query parameters: each bad value is a BadRequest that says what to fix."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from starlette.requests import Request

from hatchery.api import cursor
from hatchery.domain.tasks import EGG_TYPES, TaskStatus
from hatchery.errors import BadRequest

_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
MAX_PER_PAGE = 100
MAX_PAGE = 1_000_000_000


def positive_int(request: Request, name: str, default: int, maximum: int = MAX_PAGE) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= maximum:
        raise BadRequest(f"{name} must be a whole number from 1 to {maximum} (got {raw!r})")
    return int(raw)


def page_and_size(request: Request) -> tuple[int, int]:
    """``page`` (from 1) and ``per_page`` (1 to 100, 20 by default)."""
    return positive_int(request, "page", 1), positive_int(request, "per_page", 20, MAX_PER_PAGE)


def pagination(page: int | None, per_page: int, total: int) -> dict[str, Any]:
    """A list's ``data.pagination`` (a list with cursors adds ``cursor``)."""
    pages = (total + per_page - 1) // per_page
    return {"page": page, "per_page": per_page, "total": total, "total_pages": pages}


def choice(request: Request, name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.query_params.get(name) or None
    if value is not None and value not in allowed:
        raise BadRequest(f"{name} must be one of: {', '.join(allowed)} (got {value!r})")
    return value


def status(request: Request) -> str | None:
    return choice(request, "status", tuple(s.value for s in TaskStatus))


def task_type(request: Request) -> str | None:
    return choice(request, "type", tuple(t.value for t in EGG_TYPES))


def position(request: Request) -> int | None:
    """Where a cursor says the page starts; None without one."""
    raw = request.query_params.get("cursor")
    if not raw:
        return None
    if request.query_params.get("page"):
        raise BadRequest("pass either page or cursor, not both")
    return cursor.decode(raw)


def day(request: Request, name: str) -> date | None:
    raw = request.query_params.get(name) or None
    return None if raw is None else parse_day(raw, name)


def parse_day(raw: str, name: str) -> date:
    """A date written YYYY-MM-DD; BadRequest naming the field ``name`` otherwise."""
    try:
        if not _DAY.fullmatch(raw):  # date.fromisoformat would take 2026-W19-5 too
            raise ValueError
        return date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a date as YYYY-MM-DD (got {raw!r})") from None


def days(request: Request) -> tuple[date | None, date | None]:
    """``start_date`` and ``end_date``, UTC days, both included."""
    start, end = day(request, "start_date"), day(request, "end_date")
    if start and end and end < start:
        raise BadRequest(f"end_date ({end}) is before start_date ({start})")
    return start, end
