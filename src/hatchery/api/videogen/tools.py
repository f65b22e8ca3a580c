"""The VideoGen API's tools and tool executions (contract §3.1 to §3.8): thin routes on the engine.

An execution is a task of type ``tool`` (``domain.tools``): the same queue, leases, fallback,
cancel, events, idempotency and ledger as the Egg API's tasks. A submit validates the body against
its tool's schema, looks up everything the request names (``api.videogen.requests``), prices it
from the catalog and queues it, reserving the price, in one transaction; ``Idempotency-Key``
works as on ``POST /v1/generate``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import ValidationError
from starlette.responses import JSONResponse, Response, StreamingResponse

from hatchery.api import cursor, idempotency, watch
from hatchery.api.cancel import cancel
from hatchery.api.context import services_of
from hatchery.api.generate import json_object, read_body
from hatchery.api.idempotency import idempotency_key
from hatchery.api.videogen.auth import Group, caller
from hatchery.api.videogen.errors import VideoGenRoute
from hatchery.api.videogen.files import hydrated
from hatchery.api.videogen.present import EXECUTION_STATUS, execution, result
from hatchery.api.videogen.requests import ToolRequests
from hatchery.api.videogen.schemas import TOOL_BODIES, ToolBody
from hatchery.domain.tasks import Task, TaskStatus, TaskType
from hatchery.domain.tools import TOOLS, ToolParams, is_execution_id, new_execution_id
from hatchery.errors import Conflict, InvalidId, NotFound, ValidationFailed
from hatchery.providers.base import Job
from hatchery.providers.registry import servable
from hatchery.services import Services
from hatchery.store import events
from hatchery.store import files as file_store
from hatchery.store import tasks as task_store
from hatchery.store.accounts import Account
from hatchery.store.idempotency import Claimed

router = APIRouter(route_class=VideoGenRoute, tags=["Tools"])
CURSOR = "vge1."
PAGE = 50
TOOL_TYPE = TaskType.TOOL.value


def _body(tool: str, data: dict[str, Any]) -> ToolBody:
    try:
        return TOOL_BODIES[tool].model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(_problems(exc)) from None


def _problems(exc: ValidationError) -> str:
    """The first problems of a body, as ``field: what is wrong`` (camelCase, as sent)."""
    said = []
    for error in exc.errors()[:3]:
        where = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        said.append(f"{where}: {message}" if where else message)
    return "; ".join(said)


async def _queue(
    services: Services, account: Account, params: ToolParams, key: tuple[str, Claimed] | None
) -> Task:
    model = services.catalog.tools.get(params.tool)
    if model is None:
        raise NotFound(f"the tool {params.tool} is not offered by this server")
    params = replace(params, unit=model.unit)
    values = params.to_json()
    usable, why = servable(model, services.providers, Job.for_tool("", params))
    if not usable:
        raise ValidationFailed(f"{params.tool} cannot make this request: {why}")
    quote = model.quote({**values, "provider": usable[0]})  # priced as its first provider
    return await services.queue.submit(
        {
            "id": new_execution_id(),
            "account_id": account.id,
            "api_key": account.api_key,
            "model": params.tool,
            "type": TOOL_TYPE,
            "params": values,
            "webhook_url": None,
            "price_micros": quote.total_micros,
            "units": quote.units,
        },
        key,
    )


async def submit(
    services: Services, account: Account, tool: str, raw: bytes, key: str | None
) -> Task:
    """The execution the body asks for (or, for a repeated Idempotency-Key, the first one)."""
    data = json_object(raw or b"{}")  # no body: each missing field is named
    speech = services.catalog.tools.get("text-to-speech")
    speakers = speech.providers if speech else ()
    params = await ToolRequests(services.files, services.settings, speakers).params(
        account, tool, _body(tool, data)
    )
    if key is None:
        return await _queue(services, account, params, None)
    task, _ = await idempotency.once(
        services.queue,
        account.id,
        key,
        {"tool": tool, **data},
        lambda claimed: _queue(services, account, params, claimed),
        lambda task_id: _read(services, task_id, account),
    )
    return task


def _tool_route(tool: str) -> Callable[[Request], Awaitable[Response]]:
    async def run_tool(request: Request) -> Response:
        """Queue an execution of the tool: 202 with its id."""
        services = services_of(request)
        account = await caller(services, request, Group.TOOLS)
        raw = await read_body(request)
        task = await submit(services, account, tool, raw, idempotency_key(request))
        return JSONResponse({"toolExecutionId": task.id}, status_code=202)

    run_tool.__name__ = f"run_{tool.replace('-', '_')}"
    return run_tool


for _name in TOOLS:  # one path each, as the contract lists them
    router.add_api_route(f"/v1/tools/{_name}", _tool_route(_name), methods=["POST"])


# ----------------------------------------------------------------------------- executions


def _check(execution_id: str) -> None:
    if not is_execution_id(execution_id):
        raise InvalidId(f"{execution_id!r} is not a tool execution id; they look like vg_exec_...")


async def _read(services: Services, execution_id: str, account: Account) -> Task:
    task = await task_store.read(services.db.driver, execution_id, account.id)
    if task is None or task.type is not TaskType.TOOL:
        raise NotFound(f"Tool execution not found: {execution_id}")
    return task


async def shown(services: Services, task: Task, *, hydrate: bool = True) -> dict[str, Any]:
    """The execution; its results' files hydrated (signed URLs fresh), or, in lists, only their
    ids and types (``file`` null: hydrate with ``GET /v1/files/{fileId}``). A result whose file
    has since been removed (a temporary one) keeps its place, with ``file`` null."""
    if not (task.status is TaskStatus.COMPLETED and task.output):
        return execution(task, None)
    ids: list[str] = list(task.output.get("file_ids", []))
    files: dict[str, dict[str, Any]] = {}
    if hydrate:
        async with services.db.read() as conn:
            found = await file_store.many(conn, ids, task.account_id)
        for file in found:
            files[file.id] = await hydrated(services, file)
    kind = TOOLS[task.model].output.value.upper() if task.model in TOOLS else None
    return execution(task, [result(file_id, kind, files.get(file_id)) for file_id in ids])


@router.get("/v1/tools/executions")
async def list_executions(
    request: Request,
    limit: int | None = Query(None, ge=1, le=200),
    cursor_: str | None = Query(None, alias="cursor"),
    selfOnly: bool | None = None,
) -> Response:
    """The account's executions, newest first, a page at a time (G2's list)."""
    services = services_of(request)
    account = await caller(services, request, Group.EXECUTION)
    before = _position(cursor_)
    async with services.db.read() as conn:
        found, after = await task_store.page(
            conn,
            account.id,
            task_store.TaskFilter(type=TOOL_TYPE),
            limit=limit or PAGE,
            before=before,
        )
    page = [await shown(services, task, hydrate=False) for task in found]
    return JSONResponse({"toolExecutions": page, **cursor.tail(CURSOR, after)})


def _position(given: str | None) -> int | None:
    return cursor.position(CURSOR, given, "GET /v1/tools/executions")


@router.get("/v1/tools/executions/{toolExecutionId}")
async def get_execution(request: Request, toolExecutionId: str) -> Response:
    services = services_of(request)
    account = await caller(services, request, Group.EXECUTION)
    _check(toolExecutionId)
    task = await _read(services, toolExecutionId, account)
    return JSONResponse(await shown(services, task))


@router.post("/v1/tools/executions/{toolExecutionId}/cancel", status_code=202)
async def cancel_execution(request: Request, toolExecutionId: str) -> Response:
    """Cancel it if it has not ended; one that has is left as it is (202 all the same)."""
    services = services_of(request)
    account = await caller(services, request, Group.CANCEL)
    _check(toolExecutionId)
    task = await _read(services, toolExecutionId, account)
    if not task.status.terminal:
        await cancel_quietly(services, task)
    return JSONResponse({"toolExecutionId": task.id}, status_code=202)


async def cancel_quietly(services: Services, task: Task) -> None:
    try:
        await cancel(services, task.account_id, task.id)
    except Conflict:  # it ended meanwhile: as if it had before
        pass


async def _frame_data(services: Services, task: Task, event: events.TaskEvent) -> dict[str, Any]:
    if event.status.terminal:
        return await shown(services, task)
    return {
        "toolExecutionId": task.id,
        "status": EXECUTION_STATUS[event.status],
        "occurredAt": event.at.timestamp(),
    }


@router.get("/v1/tools/executions/{toolExecutionId}/events")
async def execution_events(request: Request, toolExecutionId: str) -> Response:
    """Its status changes as Server-Sent Events, the last one carrying the whole execution."""
    services = services_of(request)
    after = watch.last_event_id(request)
    account = await caller(services, request, Group.EXECUTION)
    _check(toolExecutionId)
    task = await _read(services, toolExecutionId, account)
    frames = watch.stream(services, task, after, _frame_data)
    return StreamingResponse(
        frames,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
