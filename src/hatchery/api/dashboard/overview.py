"""The overview: the account's balance (reserved and available), its spend per model per day
over the last ``CHART_DAYS`` UTC days as a chart (``chart``), and its latest tasks and tool
executions.

    GET /dashboard
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from hatchery.api.dashboard import chart
from hatchery.api.dashboard.pages import account_page, render
from hatchery.api.dashboard.usage import today
from hatchery.store import tasks as task_store
from hatchery.store import usage
from hatchery.store.usage import UsageFilter

router = APIRouter()

RECENT = 8
CHART_DAYS = 30


@router.get("")
async def overview(request: Request) -> Response:
    services, signed = await account_page(request)
    end = today()
    start = end - timedelta(days=CHART_DAYS - 1)
    async with services.db.read() as conn:
        recent, _ = await task_store.page(
            conn, signed.account.id, task_store.TaskFilter(), limit=RECENT, offset=0, before=None
        )
        spend = await usage.by_day(conn, signed.account.id, UsageFilter(start=start, end=end))
    return render(
        request, "overview.html", signed, recent=recent, chart=chart.build(spend, start, end)
    )
