"""The API's objects as typed, read-only values. Each keeps the JSON it came from in ``raw``, so a
field the server adds later is readable before this SDK knows its name."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def dollars(value: str | None) -> Decimal | None:
    """``"$0.0160"`` (``"-$1.00"``, ``"0.016000"``) as a Decimal; None if absent or unreadable."""
    if not value:
        return None
    try:
        return Decimal(value.replace("$", ""))
    except InvalidOperation:
        return None


@dataclass(frozen=True)
class TaskOutput:
    urls: list[str]
    url: str | None = None
    duration_seconds: float | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaskOutput:
        urls = list(data.get("urls") or ([data["url"]] if data.get("url") else []))
        return cls(
            urls=urls,
            url=data.get("url") or (urls[0] if urls else None),
            duration_seconds=data.get("duration_seconds"),
        )


@dataclass(frozen=True)
class Task:
    id: str
    status: str
    model: str
    type: str
    output: TaskOutput | None
    error: str | None
    cost: str
    created_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Task:
        output = data.get("output")
        return cls(
            id=data["id"],
            status=data["status"],
            model=data.get("model", ""),
            type=data.get("type", ""),
            output=TaskOutput.from_json(output) if isinstance(output, dict) else None,
            error=data.get("error"),
            cost=data.get("cost") or "$0.00",
            created_at=_time(data.get("created_at")),
            started_at=_time(data.get("started_at")),
            completed_at=_time(data.get("completed_at")),
            raw=data,
        )

    @property
    def done(self) -> bool:
        """True once the task is terminal: completed, failed (or cancelled)."""
        return self.status in TERMINAL_STATUSES

    @property
    def urls(self) -> list[str]:
        return self.output.urls if self.output else []

    @property
    def cost_usd(self) -> Decimal:
        return dollars(self.cost) or Decimal(0)


@dataclass(frozen=True)
class Pagination:
    """A list's ``data.pagination``. ``page`` is None on a page reached by ``cursor``; ``cursor``
    is where the next page starts (None on the last page, or from a server without cursors)."""

    page: int | None
    per_page: int
    total: int
    total_pages: int
    raw: dict[str, Any] = field(repr=False, compare=False)
    cursor: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Pagination:
        page = data.get("page", 1)
        cursor = data.get("cursor")
        return cls(
            page=None if page is None else int(page),
            per_page=int(data.get("per_page", 0)),
            total=int(data.get("total", 0)),
            total_pages=int(data.get("total_pages", 0)),
            raw=data,
            cursor=None if cursor is None else str(cursor),
        )

    @property
    def has_next(self) -> bool:
        if "cursor" in self.raw:
            return self.cursor is not None
        return self.page is not None and self.page < self.total_pages


@dataclass(frozen=True)
class TaskPage:
    tasks: list[Task]
    pagination: Pagination

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaskPage:
        return cls(
            tasks=[Task.from_json(t) for t in data.get("tasks", [])],
            pagination=Pagination.from_json(data.get("pagination") or {}),
        )

    def __iter__(self) -> Iterator[Task]:
        return iter(self.tasks)

    def __len__(self) -> int:
        return len(self.tasks)


@dataclass(frozen=True)
class Account:
    id: str
    email: str
    status: str
    balance: str
    reserved: str
    available: str
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Account:
        return cls(
            id=str(data.get("id", "")),
            email=data.get("email", ""),
            status=data.get("status", ""),
            balance=data.get("balance", ""),
            reserved=data.get("reserved", ""),
            available=data.get("available", ""),
            raw=data,
        )

    @property
    def available_usd(self) -> Decimal:
        return dollars(self.available) or Decimal(0)


@dataclass(frozen=True)
class TaskEvent:
    """One event of a task's stream (``tasks.stream``): the task's status when the stream began,
    then each change. The terminal one (completed, failed, cancelled) carries the whole ``task``;
    ``at`` is when the status changed (for the terminal one: the task's ``completed_at``)."""

    id: int
    status: str
    at: datetime | None
    task: Task | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, event_id: int, status: str, data: dict[str, Any]) -> TaskEvent:
        """An event from its SSE ``id``, ``event`` (the status) and ``data``."""
        status = status or data["status"]
        task = Task.from_json(data) if status in TERMINAL_STATUSES else None
        at = _time(data.get("at")) or (task.completed_at if task else None)
        return cls(id=event_id, status=status, at=at, task=task, raw=data)

    @property
    def terminal(self) -> bool:
        """True for the last event: the task completed, failed or was cancelled."""
        return self.status in TERMINAL_STATUSES
