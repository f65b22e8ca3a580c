"""The usage page: what the account spent over a range of UTC days, per model and record by
record, and the same records as a CSV file.

    GET /dashboard/usage?start=&end=&model=&api_key=&page=
    GET /dashboard/usage.csv?start=&end=&model=&api_key=

``start`` and ``end`` are days (``YYYY-MM-DD``, UTC, both included): the last ``DAYS`` days to
today by default (``end`` today, ``start`` ``DAYS - 1`` days before ``end``); a start after the
end is a 400 page. ``api_key`` is one of the account's keys (a prefix or the whole key; another
is a 404 page, as on ``GET /v1/usage``), ``model`` a model's or tool's name. The summary (per
model: requests, units, cost, and their total) reads the daily sums, the list ``PER_PAGE``
records a page, newest first; each record links to its task.

The CSV file (``hatchery-usage-<start>-<end>.csv``, an attachment) has a header row, then every
matching record, newest first, read ``CSV_BATCH`` at a time as it is sent (never all at once).
Money is plain decimal dollars with six places and no ``$`` (``0.039000``: a spreadsheet reads it
as a number, and nothing is rounded away), times ISO 8601 in UTC. A cell that a spreadsheet would
take for a formula (it starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) gets a
leading ``'`` (:func:`csv_cell`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from hatchery.api import query
from hatchery.api.dashboard.pages import MAX_MODEL, PAGE_HEADERS, account_page, link, render
from hatchery.api.usage import api_key_filter
from hatchery.domain.money import format_webhook_cost
from hatchery.domain.present import iso
from hatchery.domain.usage import Totals, UsageRecord
from hatchery.errors import BadRequest
from hatchery.services import Services
from hatchery.store import usage
from hatchery.store.usage import UsageFilter

router = APIRouter()

DAYS = 30
PER_PAGE = 50
CSV_BATCH = 500
CSV_COLUMNS = (
    "created_at",
    "task_id",
    "model",
    "type",
    "api_key",
    "units",
    "unit",
    "unit_price",
    "cost",
    "resolution",
)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Asked:
    """What a usage page or file is asked for, checked (``api_key`` as given until the page's
    read has checked it against the account's keys and made it the key's prefix)."""

    start: date
    end: date
    model: str | None
    api_key: str | None
    page: int = 1

    def where(self) -> UsageFilter:
        return UsageFilter(model=self.model, api_key=self.api_key, start=self.start, end=self.end)

    def link(self, path: str, page: int = 1) -> str:
        """The URL of ``path`` with these filters, at ``page``."""
        return link(
            path,
            start=self.start.isoformat(),
            end=self.end.isoformat(),
            model=self.model or "",
            api_key=self.api_key or "",
            page=str(page) if page > 1 else "",
        )


def today() -> date:
    return datetime.now(UTC).date()


def asked_for(request: Request) -> Asked:
    """The range and filters of a request; BadRequest says what to fix."""
    end = query.day(request, "end") or today()
    start = query.day(request, "start") or end - timedelta(days=DAYS - 1)
    if start > end:
        raise BadRequest(
            f"start must be on or before end (start is {start.isoformat()}, "
            f"end is {end.isoformat()})"
        )
    model = request.query_params.get("model") or None
    if model is not None and len(model) > MAX_MODEL:
        raise BadRequest(f"model must be at most {MAX_MODEL} characters")
    api_key = request.query_params.get("api_key") or None
    return Asked(start, end, model, api_key, query.positive_int(request, "page", 1))


def total_of(summary: Iterable[Totals]) -> Totals:
    rows = list(summary)
    return Totals(
        None,
        sum(t.units for t in rows),
        sum(t.cost_micros for t in rows),
        sum(t.requests for t in rows),
    )


@router.get("/usage")
async def usage_page(request: Request) -> Response:
    services, signed = await account_page(request)
    asked = asked_for(request)
    account_id = signed.account.id
    async with services.db.read() as conn:
        asked = replace(asked, api_key=await api_key_filter(conn, signed.account, request))
        where = asked.where()
        summary = await usage.summary(conn, account_id, where)
        records = await usage.page(
            conn, account_id, where, limit=PER_PAGE, offset=(asked.page - 1) * PER_PAGE
        )
        models, keys = await usage.used(conn, account_id)
    total = total_of(summary)
    pages = max(1, -(-total.requests // PER_PAGE))
    return render(
        request,
        "usage.html",
        signed,
        asked=asked,
        summary=summary,
        total=total,
        records=records,
        models=_with(models, asked.model),
        keys=_with(keys, asked.api_key),
        pages=pages,
        previous=asked.link("/usage", page=asked.page - 1) if asked.page > 1 else None,
        next=asked.link("/usage", page=asked.page + 1) if asked.page < pages else None,
        csv_link=asked.link("/usage.csv"),
    )


def _with(options: Iterable[str | None], chosen: str | None) -> list[str]:
    """A select's options: ``options``, and the chosen one even when it is not among them."""
    names = [o for o in options if o]
    return names if chosen is None or chosen in names else [*names, chosen]


@router.get("/usage.csv")
async def usage_csv(request: Request) -> Response:
    services, signed = await account_page(request)
    asked = asked_for(request)
    async with services.db.read() as conn:
        asked = replace(asked, api_key=await api_key_filter(conn, signed.account, request))
    name = f"hatchery-usage-{asked.start.isoformat()}-{asked.end.isoformat()}.csv"
    headers = {
        **{k: v for k, v in PAGE_HEADERS.items() if k != "Content-Security-Policy"},
        "Content-Disposition": f'attachment; filename="{name}"',
    }
    where = asked.where()
    async with services.db.read() as conn:  # the first batch before the answer starts: an
        first = await usage.batch(conn, signed.account.id, where, before=None, limit=CSV_BATCH)
    return StreamingResponse(  # error there is an error page, not a cut-off 200
        csv_lines(services, signed.account.id, where, first),
        media_type="text/csv; charset=utf-8",
        headers=headers,
    )


async def csv_lines(
    services: Services, account_id: str, where: UsageFilter, found: list[tuple[int, UsageRecord]]
) -> AsyncIterator[str]:
    """The header row, then the matching records from the batch ``found`` on, a batch at a time
    (each on a read of its own: no connection is held while the client reads)."""
    yield csv_line(CSV_COLUMNS)
    while True:
        if found:
            yield "".join(csv_line(csv_row(record)) for _, record in found)
        if len(found) < CSV_BATCH:
            return
        async with services.db.read() as conn:
            found = await usage.batch(conn, account_id, where, before=found[-1][0], limit=CSV_BATCH)


def csv_row(record: UsageRecord) -> tuple[str | int | None, ...]:
    """A record's cells, in ``CSV_COLUMNS``' order."""
    return (
        iso(record.created_at),
        record.task_id,
        record.model,
        record.type.value,
        record.api_key,
        record.units,
        record.unit,
        format_webhook_cost(record.unit_price_micros),
        format_webhook_cost(record.cost_micros),
        record.resolution,
    )


def csv_line(cells: Iterable[str | int | None]) -> str:
    out = io.StringIO()
    csv.writer(out).writerow([csv_cell(cell) for cell in cells])
    return out.getvalue()


def csv_cell(value: str | int | None) -> str:
    """A cell's text, with a ``'`` before one a spreadsheet would run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text
