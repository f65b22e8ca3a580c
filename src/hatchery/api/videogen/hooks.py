"""The VideoGen API's webhook payloads (contract §5), made when each attempt is sent.

The outbox stores an outline (event, subject, time: ``domain.webhooks.outline``); the payload is
made from the subject's current state at each attempt, so the signed URLs in its files are fresh
however late a retry or a redelivery comes. ``occurredAt`` stays the time of the event.

    tool_execution.*         event, toolExecutionId, toolType, occurredAt; results (each file
                             hydrated) on succeeded, error on failed
    file.*                   event, fileId, occurredAt, file (hydrated); error on
                             file.upload.failed and file.analysis_failed
    webhook_endpoint.disabled  event, endpointId, url, occurredAt, reason
    webhook.test             event, endpointId, occurredAt
"""

from __future__ import annotations

import json
from typing import Any

from hatchery.api.videogen.files import hydrated
from hatchery.api.videogen.present import execution_error
from hatchery.api.videogen.tools import shown
from hatchery.domain.tasks import TaskStatus
from hatchery.domain.tools import TOOLS
from hatchery.domain.webhooks import FILE_ANALYSIS_FAILED, FILE_UPLOAD_FAILED, read_outline
from hatchery.services import Services
from hatchery.store import files as file_store
from hatchery.store import tasks as task_store
from hatchery.store.outbox import Delivery
from hatchery.webhooks.delivery import Renderer


def _dump(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"))


def renderers(services: Services) -> dict[str, Renderer]:
    """Each event family's renderer, for the webhook dispatcher."""
    payloads = Payloads(services)
    return {
        "tool_execution": payloads.tool_execution,
        "file": payloads.file,
        "webhook_endpoint": payloads.endpoint,
        "webhook": payloads.endpoint,
    }


class Payloads:
    def __init__(self, services: Services) -> None:
        self.services = services

    async def tool_execution(self, delivery: Delivery) -> str:
        told = read_outline(delivery.body)
        execution_id, at = told.subject_id, told.occurred_at
        payload: dict[str, Any] = {"event": told.event, "toolExecutionId": execution_id}
        task = await task_store.read(self.services.db.driver, execution_id, delivery.account_id)
        tool = TOOLS.get(task.model) if task else None
        payload.update(toolType=tool.tool_type if tool else None, occurredAt=at)
        if task is not None and task.status is TaskStatus.COMPLETED:
            payload["results"] = (await shown(self.services, task))["results"]
        elif task is not None and task.status is TaskStatus.FAILED:
            payload["error"] = execution_error(task)
        return _dump(payload)

    async def file(self, delivery: Delivery) -> str:
        told = read_outline(delivery.body)
        event, file_id, at = told.event, told.subject_id, told.occurred_at
        async with self.services.db.read() as conn:
            found = await file_store.get(conn, file_id, delivery.account_id)
        payload: dict[str, Any] = {"event": event, "fileId": file_id, "occurredAt": at}
        payload["file"] = await hydrated(self.services, found) if found else None
        if event in (FILE_UPLOAD_FAILED, FILE_ANALYSIS_FAILED):
            message = (found.error if found else None) or "the file could not be processed"
            payload["error"] = {"message": message, "code": "file_processing_failed"}
        return _dump(payload)

    async def endpoint(self, delivery: Delivery) -> str:
        """What it says is what was stored when it was queued: the endpoint may have changed
        (been enabled again) since."""
        told = read_outline(delivery.body)
        payload: dict[str, Any] = {"event": told.event, "endpointId": told.subject_id}
        return _dump({**payload, **told.details, "occurredAt": told.occurred_at})
