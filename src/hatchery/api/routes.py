"""The HTTP routes. Each one is thin: authenticate, call the store or a service, wrap the result."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from hatchery.api import cursor, query, usage, watch, webhooks
from hatchery.api.auth import authenticate
from hatchery.api.cancel import cancel
from hatchery.api.context import services_of
from hatchery.api.envelope import ok
from hatchery.api.generate import Submitter, read_body
from hatchery.api.idempotency import idempotency_key
from hatchery.api.storage import serve_object
from hatchery.domain.money import format_balance, format_cost
from hatchery.domain.present import task_json
from hatchery.domain.tasks import EGG_TYPES, Task, is_task_id
from hatchery.errors import NotFound, ServiceUnavailable
from hatchery.services import Services
from hatchery.storage import CONTENT_TYPES, output_key
from hatchery.store import accounts, counts
from hatchery.store import tasks as task_store
from hatchery.store import usage as usage_store

OUTPUT_NAME = re.compile(r"^[A-Za-z0-9_-]{16,64}/(?P<index>[0-9]{1,3})\.(?P<ext>png|jpg|webp|mp4)$")
EGG_TYPE_VALUES = tuple(t.value for t in EGG_TYPES)

router = APIRouter()
router.include_router(usage.router)
router.include_router(webhooks.router)


def _waited(wait: int | None) -> dict[str, str]:
    return {} if wait is None else {"Preference-Applied": f"wait={wait}"}


@router.post("/v1/generate", status_code=202)
async def generate(request: Request) -> Response:
    """202 with the task; 200 once it has ended, when the request waited for it (``Prefer:
    wait=N``, or a synchronous model) or repeats an Idempotency-Key whose task has ended."""
    services = services_of(request)
    account = await authenticate(services, request)
    key, wait = idempotency_key(request), watch.requested_wait(request)
    submitter: Submitter = request.app.state.submitter
    task, replayed = await submitter.submit(account, await read_body(request), key)
    headers = _waited(wait) | ({"Idempotent-Replayed": "true"} if replayed else {})
    model = services.catalog.models.get(task.model)
    if wait is None and model is not None and model.synchronous:
        wait = watch.MAX_WAIT
    if wait:
        task = await watch.until_terminal(services, task.id, account.id, wait)
    status = 200 if task.status.terminal else 202
    return ok(task_json(task, services.settings.public_url), status, headers)


async def _for_task(request: Request, task_id: str) -> tuple[Services, str]:
    """The services and the authenticated account's id; NotFound for what is not a task id."""
    services = services_of(request)
    account = await authenticate(services, request)
    if not is_task_id(task_id):
        raise NotFound(f"Task not found: {task_id}")
    return services, account.id


@router.get("/v1/tasks/{task_id}")
async def get_task(request: Request, task_id: str) -> Response:
    """The task; with ``Prefer: wait=N``, once it has ended or N seconds have passed."""
    wait = watch.requested_wait(request)
    services, account_id = await _for_task(request, task_id)
    task = await watch.until_terminal(services, task_id, account_id, wait or 0)
    return ok(task_json(task, services.settings.public_url), headers=_waited(wait))


@router.post("/v1/tasks/{task_id}/cancel")
async def cancel_task(request: Request, task_id: str) -> Response:
    services, account_id = await _for_task(request, task_id)
    task = await cancel(services, account_id, task_id)
    return ok(task_json(task, services.settings.public_url))


@router.get("/v1/tasks/{task_id}/events")
async def task_events(request: Request, task_id: str) -> Response:
    """The task's status changes as Server-Sent Events (``api.watch``)."""
    after = watch.last_event_id(request)
    services, account_id = await _for_task(request, task_id)
    task = await watch.read_task(services, task_id, account_id)
    return StreamingResponse(
        watch.stream(services, task, after),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/v1/tasks")
async def list_tasks(request: Request) -> Response:
    services = services_of(request)
    account = await authenticate(services, request)
    page, per_page = query.page_and_size(request)
    where = task_store.TaskFilter(
        status=query.status(request),
        model=request.query_params.get("model") or None,
        type=query.task_type(request),
        types=EGG_TYPE_VALUES,  # not the VideoGen API's tool executions
    )
    before = query.position(request)
    found, after, total = await _listed(
        services,
        account.id,
        where,
        per_page,
        0 if before is not None else (page - 1) * per_page,
        before,
    )
    public_url = services.settings.public_url
    pagination = query.pagination(None if before is not None else page, per_page, total)
    pagination["cursor"] = None if after is None else cursor.encode(after)
    return ok({"items": [task_json(t, public_url) for t in found], "pagination": pagination})


async def _listed(
    services: Services,
    account_id: str,
    where: task_store.TaskFilter,
    limit: int,
    offset: int,
    before: int | None,
) -> tuple[list[Task], int | None, int]:
    """A page of the account's tasks, where the next starts, and how many there are in all."""
    if where.model is not None and "\x00" in where.model:  # no model's name (nor PostgreSQL's
        return [], None, 0  # text) holds a NUL: none of the account's tasks is that model's
    async with services.db.read() as conn:
        found, after = await task_store.page(
            conn, account_id, where, limit=limit, offset=offset, before=before
        )
        total = await counts.total(conn, account_id, where)
    return found, after, total


@router.get("/v1/account")
async def account(request: Request) -> Response:
    """The account's balance, and its usage: all of it, or that of one of its keys
    (``?api_key=``)."""
    services = services_of(request)
    account = await authenticate(services, request)
    async with services.db.read() as conn:
        key = await usage.api_key_filter(conn, account, request)
        spent = await usage_store.totals(conn, account.id, usage_store.UsageFilter(api_key=key))
        account = await accounts.by_id(conn, account.id) or account  # the balance as it is now
    return ok(
        {
            "id": account.id,
            "email": account.email,
            "status": account.status,
            "balance": format_balance(account.balance_micros),
            "reserved": format_balance(account.reserved_micros),
            "available": format_balance(account.available_micros),
            "api_key": key,
            "usage": {
                "request_count": spent.requests,
                "total_units": spent.units,
                "total_cost": format_cost(spent.cost_micros),
            },
        }
    )


@router.get("/healthz")
async def healthz(request: Request) -> Response:
    """200 after a round trip to the database; 503 while the database cannot be reached."""
    try:
        await services_of(request).db.ping()
    except Exception as exc:
        raise ServiceUnavailable(f"the database is unreachable ({type(exc).__name__})") from None
    return ok({"status": "ok"})


@router.get("/files/{token}/{name}")
async def output_file(request: Request, token: str, name: str) -> Response:
    """A task's output file: kept as long as the task's file record is (see docs/files.md)."""
    match = OUTPUT_NAME.match(f"{token}/{name}")
    if match is None:
        raise NotFound("File not found")
    key = output_key(token, int(match["index"]), match["ext"])
    return await serve_object(services_of(request), key, CONTENT_TYPES[match["ext"]])
