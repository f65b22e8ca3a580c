"""The HTTP routes. Each one is thin: authenticate, call the store or a service, wrap the result."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import FileResponse, Response, StreamingResponse

from hatchery.api import cursor, watch
from hatchery.api.auth import authenticate
from hatchery.api.cancel import cancel
from hatchery.api.envelope import ok
from hatchery.api.generate import Submitter, read_body
from hatchery.api.idempotency import idempotency_key
from hatchery.domain.money import format_balance
from hatchery.domain.present import task_json
from hatchery.domain.tasks import TaskStatus, is_task_id
from hatchery.errors import BadRequest, NotFound, ServiceUnavailable
from hatchery.services import Services
from hatchery.storage import CONTENT_TYPES
from hatchery.store import counts
from hatchery.store import tasks as task_store

MAX_PER_PAGE = 100
MAX_PAGE = 1_000_000_000


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


router = APIRouter()


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
    if wait is None and services.catalog.models[task.model].synchronous:
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


def _positive_int(request: Request, name: str, default: int, maximum: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    limit = maximum or MAX_PAGE
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= limit:
        raise BadRequest(f"{name} must be a whole number from 1 to {limit} (got {raw!r})")
    return int(raw)


def _status_filter(request: Request) -> str | None:
    status = request.query_params.get("status") or None
    if status is not None and status not in TaskStatus.__members__.values():
        allowed = ", ".join(s.value for s in TaskStatus)
        raise BadRequest(f"status must be one of: {allowed} (got {status!r})")
    return status


def _position(request: Request) -> int | None:
    """Where a cursor says the page starts; None without one."""
    raw = request.query_params.get("cursor")
    if not raw:
        return None
    if request.query_params.get("page"):
        raise BadRequest("pass either page or cursor, not both")
    return cursor.decode(raw)


@router.get("/v1/tasks")
async def list_tasks(request: Request) -> Response:
    services = services_of(request)
    account = await authenticate(services, request)
    page = _positive_int(request, "page", 1)
    per_page = _positive_int(request, "per_page", 20, MAX_PER_PAGE)
    status = _status_filter(request)
    model = request.query_params.get("model") or None
    before = _position(request)
    async with services.db.read() as conn:
        found, after = await task_store.page(
            conn,
            account.id,
            limit=per_page,
            offset=0 if before is not None else (page - 1) * per_page,
            before=before,
            status=status,
            model=model,
        )
        total = await counts.total(conn, account.id, status, model)
    public_url = services.settings.public_url
    pagination = {
        "page": None if before is not None else page,
        "per_page": per_page,
        "total": total,
        "total_pages": (total + per_page - 1) // per_page,
        "cursor": None if after is None else cursor.encode(after),
    }
    return ok({"tasks": [task_json(t, public_url) for t in found], "pagination": pagination})


@router.get("/v1/account")
async def account(request: Request) -> Response:
    account = await authenticate(services_of(request), request)
    return ok(
        {
            "id": account.id,
            "email": account.email,
            "status": account.status,
            "balance": format_balance(account.balance_micros),
            "reserved": format_balance(account.reserved_micros),
            "available": format_balance(account.available_micros),
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
    path = services_of(request).files.locate(token, name)
    if path is None:
        raise NotFound("File not found")
    return FileResponse(
        path,
        media_type=CONTENT_TYPES[path.suffix.lstrip(".")],
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )
