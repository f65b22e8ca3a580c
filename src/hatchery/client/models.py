"""The API's objects as typed, read-only values. Each keeps the JSON it came from in ``raw``, so a
field the server adds later is readable before this SDK knows its name."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Generic, TypeVar

TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})
T = TypeVar("T")


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
    """A completed task's files; ``resolution`` is the size made (``"1k"``, ``"2k"``, ``"4k"``;
    None from a server that does not say)."""

    urls: list[str]
    url: str | None = None
    duration_seconds: float | None = None
    resolution: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaskOutput:
        urls = list(data.get("urls") or ([data["url"]] if data.get("url") else []))
        return cls(
            urls=urls,
            url=data.get("url") or (urls[0] if urls else None),
            duration_seconds=data.get("duration_seconds"),
            resolution=data.get("resolution"),
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
class Page(Generic[T]):
    """One page of a list: its ``items`` and its ``pagination``; iterating it gives the items."""

    items: list[T]
    pagination: Pagination

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


@dataclass(frozen=True)
class TaskPage(Page[Task]):
    """A page of ``GET /v1/tasks``: ``data.items`` (``data.tasks`` from a Hatchery server older
    than 0.2)."""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaskPage:
        found = data["items"] if "items" in data else data.get("tasks", [])
        return cls(
            items=[Task.from_json(t) for t in found],
            pagination=Pagination.from_json(data.get("pagination") or {}),
        )

    @property
    def tasks(self) -> list[Task]:
        """The page's tasks: ``items`` by its former name."""
        return self.items


@dataclass(frozen=True)
class UsageRecord:
    """What one charge was for (``GET /v1/usage``): a task of ``model`` and ``type`` quoted
    ``units`` of ``unit`` (``"image"``: an output image; ``"second"``: a second of video) at
    ``unit_price``, charged ``cost``; ``resolution`` is the image size made and ``api_key`` the
    prefix of the key that submitted it (None when unknown)."""

    id: str
    task_id: str
    model: str
    type: str
    units: int
    unit: str
    unit_price: str
    cost: str
    resolution: str | None
    api_key: str | None
    created_at: datetime | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UsageRecord:
        return cls(
            id=data["id"],
            task_id=data.get("task_id", ""),
            model=data.get("model", ""),
            type=data.get("type", ""),
            units=int(data.get("units", 0)),
            unit=data.get("unit", ""),
            unit_price=data.get("unit_price") or "$0.00",
            cost=data.get("cost") or "$0.00",
            resolution=data.get("resolution"),
            api_key=data.get("api_key"),
            created_at=_time(data.get("created_at")),
            raw=data,
        )

    @property
    def cost_usd(self) -> Decimal:
        return dollars(self.cost) or Decimal(0)

    @property
    def unit_price_usd(self) -> Decimal:
        return dollars(self.unit_price) or Decimal(0)


@dataclass(frozen=True)
class UsagePage(Page[UsageRecord]):
    """A page of ``GET /v1/usage``, newest first."""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UsagePage:
        return cls(
            items=[UsageRecord.from_json(r) for r in data["items"]],
            pagination=Pagination.from_json(data.get("pagination") or {}),
        )


@dataclass(frozen=True)
class UsageTotals:
    """Usage summed (an account's ``usage``): requests charged, their units and their cost."""

    request_count: int
    total_units: int
    total_cost: str
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UsageTotals:
        return cls(
            request_count=int(data.get("request_count", 0)),
            total_units=int(data.get("total_units", 0)),
            total_cost=data.get("total_cost") or "$0.00",
            raw=data,
        )

    @property
    def total_cost_usd(self) -> Decimal:
        return dollars(self.total_cost) or Decimal(0)


@dataclass(frozen=True)
class UsageSummary:
    """One model's usage summed (an entry of ``GET /v1/usage/summary``)."""

    model: str
    request_count: int
    total_units: int
    total_cost: str
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UsageSummary:
        totals = UsageTotals.from_json(data)
        return cls(
            model=data["model"],
            request_count=totals.request_count,
            total_units=totals.total_units,
            total_cost=totals.total_cost,
            raw=data,
        )

    @classmethod
    def list_from_json(cls, data: Any) -> list[UsageSummary]:
        """The entries of ``GET /v1/usage/summary`` (a list, one per model)."""
        if not isinstance(data, list):
            raise TypeError(f"a usage summary is a list, not {type(data).__name__}")
        return [cls.from_json(entry) for entry in data]

    @property
    def total_cost_usd(self) -> Decimal:
        return dollars(self.total_cost) or Decimal(0)


@dataclass(frozen=True)
class Account:
    """The account's balance and its ``usage``: all of it, or, when ``api_key`` is set, that of
    the key it names (``client.account(api_key=...)``). ``usage`` is None from a server that does
    not report it."""

    id: str
    email: str
    status: str
    balance: str
    reserved: str
    available: str
    raw: dict[str, Any] = field(repr=False, compare=False)
    api_key: str | None = None
    usage: UsageTotals | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Account:
        usage = data.get("usage")
        return cls(
            id=str(data.get("id", "")),
            email=data.get("email", ""),
            status=data.get("status", ""),
            balance=data.get("balance", ""),
            reserved=data.get("reserved", ""),
            available=data.get("available", ""),
            raw=data,
            api_key=data.get("api_key"),
            usage=UsageTotals.from_json(usage) if isinstance(usage, dict) else None,
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


@dataclass(frozen=True)
class WebhookAttempt:
    """One try at delivering a webhook: its HTTP status (None: no answer), how long it took,
    the first bytes of the answer, and what went wrong."""

    attempt: int
    attempted_at: datetime | None
    duration_ms: int
    status_code: int | None
    response: str | None
    error: str | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WebhookAttempt:
        return cls(
            attempt=int(data["attempt"]),
            attempted_at=_time(data.get("attempted_at")),
            duration_ms=int(data.get("duration_ms") or 0),
            status_code=data.get("status_code"),
            response=data.get("response"),
            error=data.get("error"),
        )


@dataclass(frozen=True)
class WebhookDelivery:
    """A webhook message to one receiver (the task's ``webhook_url`` or a registered endpoint)
    and every attempt at it; ``status`` is ``pending``, ``delivered``, ``failed`` or
    ``cancelled``. ``webhook_id`` is its ``webhook-id`` header, the same on every attempt."""

    id: str
    webhook_id: str
    event: str
    url: str
    endpoint_id: str | None
    status: str
    created_at: datetime | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    attempts: list[WebhookAttempt]
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WebhookDelivery:
        return cls(
            id=data["id"],
            webhook_id=data.get("webhook_id", ""),
            event=data.get("event", ""),
            url=data.get("url", ""),
            endpoint_id=data.get("endpoint_id"),
            status=data.get("status", ""),
            created_at=_time(data.get("created_at")),
            next_attempt_at=_time(data.get("next_attempt_at")),
            delivered_at=_time(data.get("delivered_at")),
            attempts=[WebhookAttempt.from_json(a) for a in data.get("attempts") or []],
            raw=data,
        )

    @classmethod
    def list_from_json(cls, data: Any) -> list[WebhookDelivery]:
        """The items of ``GET /v1/tasks/{id}/webhooks``."""
        if not isinstance(data, dict):
            raise TypeError(f"a webhook log is an object, not {type(data).__name__}")
        return [cls.from_json(item) for item in data.get("items") or []]
