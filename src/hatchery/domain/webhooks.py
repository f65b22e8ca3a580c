"""Webhook events, endpoints and retry schedules, whatever the dialect.

An event is named once, here: what a task's end, a tool execution's end, a file's processing or an
endpoint's disabling is called, and which of those an endpoint may subscribe to. A *message* is
one event for one receiver; its id (``msg_...``) is the ``webhook-id`` header, the same on every
attempt of it, so receivers deduplicate by it. Endpoints (``ep_...``) have their own signing
secret, ``whsec_`` and the base64 of 36 random bytes, as Standard Webhooks secrets are.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from hatchery.domain.tasks import Task, TaskStatus, TaskType

# What a task's end is called: the Egg API's names, and the VideoGen API's for an execution.
TASK_ENDS = {
    TaskStatus.COMPLETED: "task.completed",
    TaskStatus.FAILED: "task.failed",
    TaskStatus.CANCELLED: "task.cancelled",
}
EXECUTION_ENDS = {
    TaskStatus.COMPLETED: "tool_execution.succeeded",
    TaskStatus.FAILED: "tool_execution.failed",
    TaskStatus.CANCELLED: "tool_execution.cancelled",
}
TASK_EVENTS = tuple(TASK_ENDS.values())
EXECUTION_EVENTS = tuple(EXECUTION_ENDS.values())
FILE_UPLOAD_COMPLETED = "file.upload.completed"
FILE_UPLOAD_FAILED = "file.upload.failed"
FILE_PLAYBACK_READY = "file.playback_ready"
FILE_DOWNLOAD_READY = "file.download_ready"
FILE_ANALYSIS_COMPLETED = "file.analysis_completed"
FILE_ANALYSIS_FAILED = "file.analysis_failed"
FILE_EVENTS = (
    FILE_UPLOAD_COMPLETED,
    FILE_UPLOAD_FAILED,
    FILE_PLAYBACK_READY,
    FILE_DOWNLOAD_READY,
    FILE_ANALYSIS_COMPLETED,
    FILE_ANALYSIS_FAILED,
)
ENDPOINT_DISABLED = "webhook_endpoint.disabled"
TEST_EVENT = "webhook.test"  # sent on request to one endpoint, whatever it subscribes to
SUBSCRIBABLE = (*EXECUTION_EVENTS, *FILE_EVENTS, *TASK_EVENTS, ENDPOINT_DISABLED)

MAX_ENDPOINTS = 50  # an account's registered endpoints, at most
ENDPOINT_PREFIX = "ep_"
MESSAGE_PREFIX = "msg_"
_ENDPOINT_ID = re.compile(r"ep_[A-Za-z0-9_-]{8,40}")
_DELIVERY_ID = re.compile(r"whd_[a-z0-9]{20}")  # hatchery.domain.keys.new_id("whd_")


def task_event(task: Task) -> str:
    """The event a task's terminal state emits: ``tool_execution.*`` for a tool execution,
    ``task.*`` for the Egg API's tasks."""
    return (EXECUTION_ENDS if task.type is TaskType.TOOL else TASK_ENDS)[task.status]


def new_endpoint_id() -> str:
    return ENDPOINT_PREFIX + secrets.token_urlsafe(16)


def is_endpoint_id(value: str) -> bool:
    return bool(_ENDPOINT_ID.fullmatch(value))


def is_delivery_id(value: str) -> bool:
    return bool(_DELIVERY_ID.fullmatch(value))


def new_message_id() -> str:
    return MESSAGE_PREFIX + secrets.token_urlsafe(18)


def new_endpoint_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(36)).decode("ascii")


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_STEP = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*")


def parse_schedule(text: str) -> tuple[float, ...]:
    """``"5s,5m,30m,2h,5h,10h"``: the seconds before each retry. ValueError says what is
    wrong."""
    steps = []
    for part in text.split(","):
        match = _STEP.fullmatch(part)
        if match is None:
            raise ValueError(
                f"{part.strip()!r} is not a delay; write each as a number and a unit "
                "(ms, s, m, h, d), e.g. 5s,5m,30m,2h,5h,10h"
            )
        steps.append(float(match[1]) * _UNITS[match[2]])
    return tuple(steps)


@dataclass(frozen=True)
class Schedule:
    """When a message is tried again: ``delays[n]`` seconds after its attempt ``n + 1`` failed,
    up to ``len(delays)`` retries; each attempt waits ``timeout`` seconds for an answer."""

    delays: tuple[float, ...]
    timeout: float

    @classmethod
    def exponential(cls, retries: int, base: float, cap: float, timeout: float) -> Schedule:
        """``base``, then four times longer each retry, at most ``cap`` (the Egg API's)."""
        return cls(tuple(min(base * 4.0**n, cap) for n in range(retries)), timeout)

    def delay(self, retry: int) -> float | None:
        """Seconds before retry number ``retry`` (1-based), or None when retries run out."""
        if not 1 <= retry <= len(self.delays):
            return None
        return self.delays[retry - 1]


def outline(
    event: str, subject_id: str, at: datetime, details: dict[str, str | None] | None = None
) -> str:
    """The stored body of a message whose wire body is made when it is sent: the event, what it
    is about, when it happened, and the ``details`` that must read the same on every attempt
    (why an endpoint was disabled, say), whatever becomes of the subject."""
    data: dict[str, object] = {"event": event, "id": subject_id, "occurredAt": int(at.timestamp())}
    if details:
        data["details"] = details
    return json.dumps(data, separators=(",", ":"))


@dataclass(frozen=True)
class Outline:
    event: str
    subject_id: str
    occurred_at: int
    details: dict[str, str | None]


def read_outline(body: str) -> Outline:
    data = json.loads(body)
    return Outline(
        str(data["event"]), str(data["id"]), int(data["occurredAt"]), dict(data.get("details", {}))
    )


_SPANS = (("day", 86400), ("hour", 3600), ("minute", 60))


def span(seconds: float) -> str:
    """``5 days``, ``36 hours``, ``90 seconds``: a duration as people say it."""
    unit, size = next(((unit, size) for unit, size in _SPANS if seconds >= size), ("second", 1))
    value = f"{seconds / size:.3g}"
    return f"{value} {unit}" if value == "1" else f"{value} {unit}s"
