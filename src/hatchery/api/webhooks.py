"""The Egg API's webhook delivery log, ours beside the contract: every message a task's end
queued (to its ``webhook_url`` and to the account's registered endpoints), each attempt, and
redelivery of one message.

    GET  /v1/tasks/{task_id}/webhooks                              {"items": [delivery...]}
    POST /v1/tasks/{task_id}/webhooks/{delivery_id}/redeliver      202, the delivery
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from hatchery.api.auth import authenticate
from hatchery.api.context import services_of
from hatchery.api.envelope import ok
from hatchery.domain.present import iso
from hatchery.domain.tasks import is_task_id
from hatchery.domain.webhooks import is_delivery_id
from hatchery.errors import NotFound
from hatchery.services import Services
from hatchery.store import tasks as task_store
from hatchery.store.outbox import Logged

router = APIRouter()


def delivery_json(found: Logged) -> dict[str, Any]:
    return {
        "id": found.id,
        "webhook_id": found.message_id,
        "event": found.event,
        "url": found.url,
        "endpoint_id": found.endpoint_id,
        "status": found.status,
        "created_at": iso(found.created_at),
        "next_attempt_at": iso(found.next_attempt_at),
        "delivered_at": iso(found.delivered_at),
        "attempts": [
            {
                "attempt": a.attempt,
                "attempted_at": iso(a.started_at),
                "duration_ms": a.duration_ms,
                "status_code": a.status_code,
                "response": a.response,
                "error": a.error,
            }
            for a in found.attempts
        ],
    }


async def _task_of(request: Request, task_id: str) -> tuple[Services, str]:
    """The services and the account whose task this is; NotFound otherwise."""
    services = services_of(request)
    account = await authenticate(services, request)
    task = None
    if is_task_id(task_id):
        task = await task_store.read(services.db.driver, task_id, account.id)
    if task is None:
        raise NotFound(f"Task not found: {task_id}")
    return services, account.id


@router.get("/v1/tasks/{task_id}/webhooks")
async def task_webhooks(request: Request, task_id: str) -> Response:
    """The task's webhook messages, newest first, each with every attempt made."""
    services, account_id = await _task_of(request, task_id)
    found, _ = await services.webhooks.log(account_id, subject_id=task_id, limit=200)
    return ok({"items": [delivery_json(d) for d in found]})


@router.post("/v1/tasks/{task_id}/webhooks/{delivery_id}/redeliver", status_code=202)
async def redeliver(request: Request, task_id: str, delivery_id: str) -> Response:
    """Send the message again now: the same ``webhook-id``, a new timestamp and signature."""
    services, account_id = await _task_of(request, task_id)
    if not is_delivery_id(delivery_id):
        raise NotFound(f"Webhook delivery not found: {delivery_id}")
    again = await services.webhooks.redeliver(account_id, delivery_id, subject_id=task_id)
    return ok(delivery_json(again), 202)
