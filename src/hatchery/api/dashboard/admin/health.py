"""The operator's read-only views of the service's health, from the same functions as the admin
API's (``hatchery.admin.health``): a summary, the providers, the queue and its workers, the
webhook outbox.

    GET  /dashboard/admin              the summary, with a link to each section
    GET  /dashboard/admin/providers    each provider: breaker states, attempts, error rate, latency
    GET  /dashboard/admin/queue        depth by status and model, the oldest pending task, the
                                       workers (alive, last heartbeat, tasks in flight)
    GET  /dashboard/admin/outbox       the backlog, the oldest due message, failing endpoints
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from hatchery.admin import health
from hatchery.api.admin.routes import provider_views, workers_of
from hatchery.api.dashboard.admin.common import ADMIN, admin_page, page
from hatchery.api.dashboard.tasks import span
from hatchery.store import accounts
from hatchery.worker.gate import OUTCOMES

router = APIRouter()


def breaker_summary(view: dict[str, Any]) -> str:
    """How many live workers have the provider's breaker in each state: ``closed (2), open``."""
    named = {None: "unknown", "none": "no breaker"}
    counts = Counter(named.get(state, state) for state in view["breakers"].values())
    return ", ".join(f"{state} ({n})" if n > 1 else state for state, n in sorted(counts.items()))


@router.get(ADMIN)
async def summary_page(request: Request) -> Response:
    services, signed = await admin_page(request)
    workers = await workers_of(services)
    async with services.db.read() as conn:
        count = await accounts.count(conn)
    providers = await provider_views(services)
    return page(
        request,
        "admin/summary.html",
        signed,
        accounts=count,
        alive=sum(w["alive"] for w in workers),
        workers=len(workers),
        queue=await health.queue_view(services.db),
        outbox=await health.outbox_view(services.db),
        open_breakers=[p["name"] for p in providers if p["open_breakers"]],
        span=span,
    )


@router.get(ADMIN + "/providers")
async def providers_page(request: Request) -> Response:
    services, signed = await admin_page(request)
    views = await provider_views(services)
    live = [w for w in await workers_of(services) if w["alive"]]
    return page(
        request,
        "admin/providers.html",
        signed,
        providers=[{**v, "breaker_summary": breaker_summary(v)} for v in views],
        outcomes=OUTCOMES,
        live=len(live),
    )


@router.get(ADMIN + "/queue")
async def queue_page(request: Request) -> Response:
    services, signed = await admin_page(request)
    return page(
        request,
        "admin/queue.html",
        signed,
        queue=await health.queue_view(services.db),
        workers=await workers_of(services),
        heartbeat=services.settings.heartbeat_interval,
        span=span,
    )


@router.get(ADMIN + "/outbox")
async def outbox_page(request: Request) -> Response:
    services, signed = await admin_page(request)
    return page(
        request,
        "admin/outbox.html",
        signed,
        outbox=await health.outbox_view(services.db),
        span=span,
    )
