"""How the client commands print: tables, key/value blocks, JSON and the live status line. Text
goes to stdout; progress and errors to stderr, so ``$(hatchery generate ...)`` is just the paths."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from types import TracebackType
from typing import Any, TextIO

from hatchery.client.models import (
    Account,
    Pagination,
    Task,
    TaskEvent,
    TaskPage,
    UsagePage,
    UsageRecord,
    UsageSummary,
)

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
TASK_COLUMNS = ("ID", "STATUS", "MODEL", "TYPE", "COST", "CREATED")
USAGE_COLUMNS = (
    "TASK",
    "MODEL",
    "TYPE",
    "UNITS",
    "UNIT",
    "PRICE",
    "COST",
    "SIZE",
    "KEY",
    "CREATED",
)
SUMMARY_COLUMNS = ("MODEL", "REQUESTS", "UNITS", "COST")


def print_json(stream: TextIO, value: Any) -> None:
    stream.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(line.rstrip() for line in lines)


def _when(item: Task | UsageRecord) -> str:
    return item.created_at.strftime("%Y-%m-%d %H:%M:%S") if item.created_at else ""


def _footer(p: Pagination, what: str) -> str:
    where = "after the cursor" if p.page is None else f"page {p.page} of {max(p.total_pages, 1)}"
    footer = f"{where}, {p.total} {what}(s)"
    if p.cursor:
        footer += f"; next page: --cursor {p.cursor}"
    return footer


def task_table(page: TaskPage) -> str:
    rows = [TASK_COLUMNS]
    rows += [(t.id, t.status, t.model, t.type, t.cost, _when(t)) for t in page.items]
    return (table(rows) + "\n" if page.items else "no tasks\n") + _footer(page.pagination, "task")


def _usage_row(r: UsageRecord) -> tuple[str, ...]:
    size, key = r.resolution or "-", r.api_key or "-"
    return (
        r.task_id,
        r.model,
        r.type,
        str(r.units),
        r.unit,
        r.unit_price,
        r.cost,
        size,
        key,
        _when(r),
    )


def usage_table(page: UsagePage) -> str:
    """A page of usage records: one row per charge, newest first."""
    rows = [USAGE_COLUMNS, *(_usage_row(r) for r in page.items)]
    body = table(rows) + "\n" if page.items else "no usage\n"
    return body + _footer(page.pagination, "record")


def summary_table(entries: Sequence[UsageSummary]) -> str:
    """The usage summed per model, a row each, and what all of it cost."""
    if not entries:
        return "no usage"
    rows = [SUMMARY_COLUMNS]
    rows += [(e.model, str(e.request_count), str(e.total_units), e.total_cost) for e in entries]
    requests = sum(e.request_count for e in entries)
    cost = sum((e.total_cost_usd for e in entries), start=Decimal(0))
    return table(rows) + f"\n{len(entries)} model(s), {requests} request(s), ${cost} in all"


def key_values(pairs: Sequence[tuple[str, str | None]]) -> str:
    shown = [(k, v) for k, v in pairs if v]
    width = max(len(k) for k, _ in shown)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in shown)


def task_details(task: Task) -> str:
    pairs: list[tuple[str, str | None]] = [
        ("id", task.id),
        ("status", task.status),
        ("model", task.model),
        ("type", task.type),
        ("cost", task.cost),
        ("error", task.error),
    ]
    for name in ("created_at", "started_at", "completed_at"):
        pairs.append((name, task.raw.get(name)))
    pairs += [("output", url) for url in task.urls]
    return key_values(pairs)


def event_line(event: TaskEvent) -> str:
    """``<when>  <task id>  <status>``; the terminal event adds the error or the outputs."""
    when = event.at.strftime("%Y-%m-%d %H:%M:%S") if event.at else "-"
    task = event.task
    extra = [task.error] if task and task.error else (task.urls if task else [])
    return "  ".join([when, str(event.raw.get("id", "")), event.status, *extra]).rstrip()


def event_json(event: TaskEvent) -> str:
    """One event as a line of JSON: its id, status, time and (at the end) the task."""
    at = event.raw.get("at") if event.task is None else event.raw.get("completed_at")
    task = event.task.raw if event.task else None
    value = {"event_id": event.id, "status": event.status, "at": at, "task": task}
    return json.dumps(value, ensure_ascii=False)


def account_details(account: Account) -> str:
    """The account's balance, then its usage (of the key asked for, if one was)."""
    names = ("id", "email", "status", "balance", "reserved", "available")
    pairs: list[tuple[str, str | None]] = [(name, str(getattr(account, name))) for name in names]
    usage = account.usage
    if usage is not None:
        pairs += [
            ("key", account.api_key),
            ("requests", str(usage.request_count)),
            ("units", str(usage.total_units)),
            ("spent", usage.total_cost),
        ]
    return key_values(pairs)


class StatusLine:
    """A task's status and the time waited so far. On a terminal it is one line redrawn in place
    ten times a second; elsewhere (a log, a pipe) it prints a line each time the status changes."""

    def __init__(
        self, stream: TextIO, task_id: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.stream = stream
        self.task_id = task_id
        self.clock = clock
        self.began = clock()
        self.status = "submitted"
        self.live = stream.isatty()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._redraw, daemon=True)

    def text(self, frame: int = 0) -> str:
        elapsed = self.clock() - self.began
        return f"{SPINNER[frame % len(SPINNER)]} {self.task_id} {self.status} {elapsed:.1f}s"

    def update(self, task: Task) -> None:
        if task.status != self.status and not self.live:
            self.status = task.status
            self.stream.write(self.text()[2:] + "\n")
            self.stream.flush()
        self.status = task.status

    def _redraw(self) -> None:
        frame = 0
        while not self._stop.wait(0.1):
            self.stream.write("\r\033[K" + self.text(frame))
            self.stream.flush()
            frame += 1

    def __enter__(self) -> StatusLine:
        if self.live:
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.live:
            self._stop.set()
            self._thread.join()
            self.stream.write("\r\033[K" + self.text()[2:] + "\n")  # the last state stays
            self.stream.flush()
