"""Log lines that say which request and which task they are about.

The ids live in context variables, set where they become known: the edge sets the request's id,
the submit the new task's id and account, the worker a task's id, account and provider while it
runs it, the webhook dispatcher a message's task and account. asyncio copies them into every task
it starts, so a line logged anywhere below carries them. ``ContextFilter`` puts them on each
record; the formatter writes them:

- ``text`` (the default): the usual line, with ``[request_id=... task_id=...]`` after the
  message when there are ids;
- ``json``: one object per line: ``time``, ``level``, ``logger``, ``message``, the ids that are
  set (``request_id``, ``task_id``, ``account_id``, ``provider``, ``trace_id``) and ``exception``.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime

REQUEST_ID: ContextVar[str | None] = ContextVar("hatchery_request_id", default=None)
TASK_ID: ContextVar[str | None] = ContextVar("hatchery_task_id", default=None)
ACCOUNT_ID: ContextVar[str | None] = ContextVar("hatchery_account_id", default=None)
PROVIDER: ContextVar[str | None] = ContextVar("hatchery_provider", default=None)
TRACE_ID: ContextVar[str | None] = ContextVar("hatchery_trace_id", default=None)

FIELDS: dict[str, ContextVar[str | None]] = {
    "request_id": REQUEST_ID,
    "task_id": TASK_ID,
    "account_id": ACCOUNT_ID,
    "provider": PROVIDER,
    "trace_id": TRACE_ID,
}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s%(context)s"


@contextlib.contextmanager
def bound(
    *, task_id: str | None = None, account_id: str | None = None, provider: str | None = None
) -> Iterator[None]:
    """Lines logged inside carry these ids (the ones given; the others stay as they are)."""
    given = {"task_id": task_id, "account_id": account_id, "provider": provider}
    tokens = [(FIELDS[k], FIELDS[k].set(v)) for k, v in given.items() if v is not None]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def begin_request(request_id: str) -> None:
    """A new request's lines carry its id, and none of another's: uvicorn may start a request in
    the context the previous one on its connection left (pipelining, a large body)."""
    REQUEST_ID.set(request_id)
    TASK_ID.set(None)
    ACCOUNT_ID.set(None)
    PROVIDER.set(None)


def bind_task(task_id: str, account_id: str) -> None:
    """From here to the end of the current asyncio task (a request), lines carry the task's ids."""
    TASK_ID.set(task_id)
    ACCOUNT_ID.set(account_id)


def context() -> dict[str, str]:
    """The ids set here, by field name."""
    return {name: value for name, var in FIELDS.items() if (value := var.get()) is not None}


class ContextFilter(logging.Filter):
    """Adds the ids to every record: ``record.ids`` (a mapping) and ``record.context`` (text)."""

    def filter(self, record: logging.LogRecord) -> bool:
        ids = context()
        record.ids = ids
        record.context = (" [" + " ".join(f"{k}={v}" for k, v in ids.items()) + "]") if ids else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **(getattr(record, "ids", None) or context()),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=str)


def configure(level: str, fmt: str) -> None:
    """Send every logger's lines (ours, uvicorn's, the libraries') to stderr in ``fmt``."""
    handler = logging.StreamHandler()
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)  # uvicorn's own handlers would print a second line
        logger.handlers.clear()
        logger.propagate = True
