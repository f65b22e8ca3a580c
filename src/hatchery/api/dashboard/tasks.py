"""The dashboard's tasks and tool executions (both are rows of the tasks table: an execution is a
task of type ``tool``): the list, with filters and keyset pages both ways, and one task's page
with its parameters, status timeline, attempts, providers, cost, outputs inline, and webhook
deliveries with redelivery.

    GET  /dashboard/tasks                    ?status= &model= &kind=all|generations|tools
                                             &before= | &after= (opaque page positions)
    GET  /dashboard/tasks/{id}               a task (gen_...) or an execution (vg_exec_...)
    POST /dashboard/tasks/{id}/cancel        cancel it while it is pending or processing
    POST /dashboard/tasks/{id}/webhooks/{delivery_id}/redeliver
                                             send one of its webhook messages again now

Another account's task, or what is not a task id, is the 404 page. While a task runs, its page
follows the task's event stream (``static/tasks.js``, on the session) and reloads on a change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from hatchery.api import cursor
from hatchery.api.cancel import cancel
from hatchery.api.dashboard.pages import (
    MAX_MODEL,
    account_page,
    change_form,
    choice,
    kind_label,
    link,
    redirect,
    render,
)
from hatchery.api.videogen.tools import shown
from hatchery.domain.present import output_json
from hatchery.domain.tasks import EGG_TYPES, Task, TaskStatus, TaskType, is_task_id
from hatchery.domain.tools import is_execution_id
from hatchery.domain.webhooks import is_delivery_id
from hatchery.errors import BadRequest, Conflict, NotFound
from hatchery.services import Services
from hatchery.storage import CONTENT_TYPES
from hatchery.store import counts, events
from hatchery.store import tasks as task_store
from hatchery.store.tasks import TaskFilter

router = APIRouter()

PAGE = 25  # tasks a page
DELIVERIES = 200  # webhook messages shown on a task's page (as GET /v1/tasks/{id}/webhooks)
CURSOR = "dt1."  # the kind of the list's page positions (``api.cursor``)
STATUSES = tuple(s.value for s in TaskStatus)
KINDS = {
    "all": ("All", TaskFilter()),
    "generations": ("Generations", TaskFilter(types=tuple(t.value for t in EGG_TYPES))),
    "tools": ("Tool executions", TaskFilter(type=TaskType.TOOL.value)),
}


# ------------------------------------------------------------------------------------ helpers


def stamp(value: datetime | None) -> str:
    """A moment to the second, as the timeline shows it: ``2026-12-04 21:07:03 UTC``."""
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else ""


def span(seconds: float) -> str:
    """A duration: ``1.4 s``, ``3 min 2 s``, ``2 h 5 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def duration(task: Task) -> str:
    """From the submit to the end; empty while it has not ended."""
    if task.completed_at is None:
        return ""
    return span(max((task.completed_at - task.created_at).total_seconds(), 0.0))


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


# --------------------------------------------------------------------------------- the list


@dataclass(frozen=True)
class Listing:
    """What the list was asked for: its filters, and where its page starts."""

    status: str = ""
    model: str = ""
    kind: str = "all"
    before: int | None = None
    after: int | None = None

    def where(self) -> TaskFilter:
        return replace(KINDS[self.kind][1], status=self.status or None, model=self.model or None)

    def link(self, **position: int | None) -> str:
        """The list with these filters, at ``before=`` or ``after=`` the position given."""
        packed = {k: cursor.pack(CURSOR, v) for k, v in position.items() if v is not None}
        kind = self.kind if self.kind != "all" else ""
        return link("/tasks", status=self.status, model=self.model, kind=kind, **packed)


def _position(request: Request, name: str) -> int | None:
    given = request.query_params.get(name)
    if not given:
        return None
    numbers = cursor.unpack(CURSOR, given, 1)
    if numbers is None:
        raise BadRequest("That page link is not valid: start again from the first page")
    return numbers[0]


def _listing(request: Request) -> Listing:
    params = request.query_params
    model = params.get("model", "").strip()
    if len(model) > MAX_MODEL or "\x00" in model:
        raise BadRequest(
            f"model must be a model's or a tool's name (at most {MAX_MODEL} characters)"
        )
    return Listing(
        status=choice(params, "status", ("", *STATUSES), ""),
        model=model,
        kind=choice(params, "kind", tuple(KINDS), "all"),
        before=_position(request, "before"),
        after=_position(request, "after"),
    )


def _choices(services: Services, current: str) -> dict[str, list[str]]:
    """The model filter's options: the catalog's models and tools (and the one asked for, if it
    is neither: a model since removed from the catalog)."""
    models, tools = sorted(services.catalog.models), sorted(services.catalog.tools)
    if current and current not in models and current not in tools:
        models.append(current)
    return {"Models": models, "Tools": tools}


@router.get("/tasks")
async def task_list(request: Request) -> Response:
    services, signed = await account_page(request)
    listing = _listing(request)
    where = listing.where()
    async with services.db.read() as conn:
        found = await task_store.window(
            conn, signed.account.id, where, limit=PAGE, before=listing.before, after=listing.after
        )
        total = await counts.total(conn, signed.account.id, where)
    return render(
        request,
        "tasks.html",
        signed,
        listing=listing,
        tasks=found.tasks,
        total=total,
        newer=None if found.newer is None else listing.link(after=found.newer),
        older=None if found.older is None else listing.link(before=found.older),
        first=listing.link() if found.newer is not None else None,
        statuses=STATUSES,
        kinds={name: label for name, (label, _) in KINDS.items()},
        choices=_choices(services, listing.model),
        filtered=listing != Listing(before=listing.before, after=listing.after),
        duration=duration,
    )


# ------------------------------------------------------------------------------ one task


@dataclass(frozen=True)
class Output:
    """One output as the page shows it: ``kind`` image, video or audio (else only a link);
    ``url`` None when its file has since been removed."""

    kind: str
    url: str | None
    name: str
    content_type: str | None = None


@dataclass(frozen=True)
class ProviderTry:
    """One provider's try at the task (``worker.progress``: in its usage once it ended)."""

    provider: str
    outcome: str
    at: datetime | None
    error: str | None


async def own_task(services: Services, account_id: str, task_id: str) -> Task:
    """The account's task or execution; NotFound for another account's, or for a malformed id."""
    task = None
    if is_task_id(task_id) or is_execution_id(task_id):
        async with services.db.read() as conn:
            task = await task_store.get(conn, task_id, account_id)
    if task is None:
        raise NotFound(f"Task not found: {task_id}")
    return task


def _egg_outputs(task: Task, public_url: str) -> list[Output]:
    urls: list[str] = (output_json(task, public_url) or {}).get("urls") or []
    found = []
    for url in urls:
        name = url.rsplit("/", 1)[-1]  # 0.png
        kind = CONTENT_TYPES.get(name.rsplit(".", 1)[-1].lower(), "").partition("/")[0]
        found.append(Output(kind, url, f"{task.id}-{name}"))  # as the CLI saves it
    return found


def _tool_output(result: dict[str, Any]) -> Output:
    kind = str(result.get("type") or "").lower()
    file = result.get("file")
    if not file:
        return Output(kind, None, str(result.get("fileId")))
    url = (file.get("downloadSource") or {}).get("url")
    suffix = PurePosixPath(urlsplit(url).path).suffix if url else ""
    return Output(kind, url, f"{file.get('fileId')}{suffix}", file.get("contentType"))


async def outputs(services: Services, task: Task) -> list[Output]:
    """A completed task's outputs: the Egg task's files at their public URLs, an execution's
    stored files with fresh signed URLs (as the VideoGen API shows them)."""
    if task.status is not TaskStatus.COMPLETED or not task.output:
        return []
    if task.type is not TaskType.TOOL:
        return _egg_outputs(task, services.settings.public_url)
    executed = await shown(services, task)
    return [_tool_output(result) for result in executed.get("results") or []]


def _moment(value: Any) -> datetime | None:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return None


def providers(task: Task) -> list[ProviderTry]:
    """Every provider tried, with how it went: from the usage once the task ended, from its
    upstream record while it runs (or if it ended without a usage, cancelled)."""
    usage, upstream = task.usage or {}, task.upstream or {}
    tried = usage.get("attempts") if "attempts" in usage else upstream.get("attempts")
    return [
        ProviderTry(
            str(entry.get("provider")),
            str(entry.get("outcome", "")),
            _moment(entry.get("at")),
            entry.get("error"),
        )
        for entry in tried or []
        if isinstance(entry, dict)
    ]


def in_flight(task: Task) -> tuple[str, datetime | None] | None:
    """The provider running the task's upstream job now, and since when (None: none)."""
    upstream = task.upstream or {}
    if task.status.terminal or not upstream.get("provider") or not upstream.get("handle"):
        return None
    return str(upstream["provider"]), _moment(upstream.get("since"))


def events_path(task: Task) -> str | None:
    """The task's event stream, while it has not ended (the page follows it)."""
    if task.status.terminal:
        return None
    if task.type is TaskType.TOOL:
        return f"/v1/tools/executions/{task.id}/events"
    return f"/v1/tasks/{task.id}/events"


def usage_shown(task: Task) -> str | None:
    """The usage the task recorded, but for the providers' tries (shown as a table)."""
    if not task.usage:
        return None
    return pretty({k: v for k, v in task.usage.items() if k != "attempts"})


@router.get("/tasks/{task_id}")
async def task_page(request: Request, task_id: str) -> Response:
    services, signed = await account_page(request)
    task = await own_task(services, signed.account.id, task_id)
    async with services.db.read() as conn:
        timeline = await events.since(conn, task, -1)  # all of them, the submit first
        tries = await task_store.attempts(conn, task.id)
    deliveries, _ = await services.webhooks.log(
        signed.account.id, subject_id=task.id, limit=DELIVERIES
    )
    return render(
        request,
        "task.html",
        signed,
        task=task,
        kind=kind_label(task),
        is_tool=task.type is TaskType.TOOL,
        parameters=pretty(task.params),
        timeline=timeline,
        attempts=tries,
        providers=providers(task),
        in_flight=in_flight(task),
        served_by=(task.usage or {}).get("provider"),
        usage=usage_shown(task),
        outputs=await outputs(services, task),
        deliveries=deliveries,
        events_path=events_path(task),
        duration=duration(task),
        stamp=stamp,
    )


# ---------------------------------------------------------------------------------- changes


@router.post("/tasks/{task_id}/cancel")
async def cancel_task(request: Request, task_id: str) -> Response:
    services, signed, _ = await change_form(request)
    task = await own_task(services, signed.account.id, task_id)
    try:
        await cancel(services, signed.account.id, task.id)
    except Conflict:  # it ended meanwhile
        current = await own_task(services, signed.account.id, task.id)
        return redirect(
            f"/tasks/{task.id}", notice=f"Not cancelled: it had already {current.status.value}."
        )
    return redirect(f"/tasks/{task.id}", notice="Cancelled: its reservation is released.")


@router.post("/tasks/{task_id}/webhooks/{delivery_id}/redeliver")
async def redeliver(request: Request, task_id: str, delivery_id: str) -> Response:
    services, signed, _ = await change_form(request)
    task = await own_task(services, signed.account.id, task_id)
    if not is_delivery_id(delivery_id):
        raise NotFound(f"Webhook delivery not found: {delivery_id}")
    await services.webhooks.redeliver(signed.account.id, delivery_id, subject_id=task.id)
    return redirect(f"/tasks/{task.id}", notice="Redelivery queued: it is sent again now.")
