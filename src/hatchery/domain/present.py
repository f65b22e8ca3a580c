"""How the Egg API's objects look on the wire: the task object, the webhook payload (seeds
001-003), usage records and their sums."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from hatchery.domain.money import format_cost, format_webhook_cost
from hatchery.domain.tasks import Task, TaskStatus, TaskType
from hatchery.domain.usage import Totals, UsageRecord
from hatchery.domain.webhooks import TASK_ENDS

EVENTS = TASK_ENDS  # the webhook events of a task's end (``domain.webhooks``)


def iso(value: datetime | None) -> str | None:
    """``YYYY-MM-DDTHH:MM:SSZ`` of a UTC time (formatted by hand: twice as fast as strftime)."""
    if value is None:
        return None
    v = value
    return f"{v.year:04d}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}:{v.second:02d}Z"


def file_url(public_url: str, path: str) -> str:
    return f"{public_url}/files/{path}"


def output_json(task: Task, public_url: str) -> dict[str, Any] | None:
    if not task.output:
        return None
    urls = [file_url(public_url, path) for path in task.output["files"]]
    out: dict[str, Any] = {"url": urls[0] if urls else None, "urls": urls}
    if "resolution" in task.output:  # the size made (outputs older than 0.2 did not say)
        out["resolution"] = task.output["resolution"]
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
        "type": task.type.value,
    }
    if task.status is TaskStatus.COMPLETED:  # the seeds' failed payloads carry no output
        payload["output"] = output_json(task, public_url)
    payload.update(
        error=task.error, cost=format_webhook_cost(task.cost_micros), timestamp=timestamp
    )
    return event, json.dumps(payload, separators=(",", ":"))


def usage_json(record: UsageRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "task_id": record.task_id,
        "model": record.model,
        "type": record.type.value,
        "units": record.units,
        "unit": record.unit,
        "unit_price": format_cost(record.unit_price_micros),
        "cost": format_cost(record.cost_micros),
        "resolution": record.resolution,
        "api_key": record.api_key,
        "created_at": iso(record.created_at),
    }


def totals_json(totals: Totals) -> dict[str, Any]:
    """A usage summary's entry (the quickstart's ``GET /v1/usage/summary``)."""
    return {
        "model": totals.model,
        "total_units": totals.units,
        "total_cost": format_cost(totals.cost_micros),
        "request_count": totals.requests,
    }
