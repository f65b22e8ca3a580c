"""How a task looks on the wire: the API's task object and the webhook payload (seeds 001-003)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from hatchery.domain.money import format_cost, format_webhook_cost
from hatchery.domain.tasks import Task, TaskStatus, TaskType

EVENTS = {
    TaskStatus.COMPLETED: "task.completed",
    TaskStatus.FAILED: "task.failed",
    TaskStatus.CANCELLED: "task.cancelled",
}


def iso(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def file_url(public_url: str, path: str) -> str:
    return f"{public_url}/files/{path}"


def output_json(task: Task, public_url: str) -> dict[str, Any] | None:
    if not task.output:
        return None
    urls = [file_url(public_url, path) for path in task.output["files"]]
    out: dict[str, Any] = {"url": urls[0] if urls else None, "urls": urls}
    if task.type is TaskType.VIDEO:
        out["duration_seconds"] = task.output.get("duration_seconds")
    return out


def task_json(task: Task, public_url: str) -> dict[str, Any]:
    return {
        "id": task.id,
        "status": task.status.value,
        "model": task.model,
        "type": task.type.value,
        "output": output_json(task, public_url),
        "error": task.error,
        "cost": format_cost(task.cost_micros),
        "created_at": iso(task.created_at),
        "started_at": iso(task.started_at),
        "completed_at": iso(task.completed_at),
    }


def webhook_event(task: Task, public_url: str, timestamp: int) -> tuple[str, str]:
    """The event name and the exact body to POST; the body is stored and re-sent byte for byte."""
    event = EVENTS[task.status]
    payload: dict[str, Any] = {
        "event": event,
        "task_id": task.id,
        "status": task.status.value,
        "model": task.model,
    }
    if task.status is TaskStatus.COMPLETED:  # the seeds' failed payloads carry no output
        payload["output"] = output_json(task, public_url)
    payload.update(
        error=task.error, cost=format_webhook_cost(task.cost_micros), timestamp=timestamp
    )
    return event, json.dumps(payload, separators=(",", ":"))
