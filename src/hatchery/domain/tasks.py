"""Task states, the transitions between them, and task identifiers. Pure: no I/O.

pending ──claim──▶ processing ──▶ completed
   ▲  │               │  └──────▶ failed
   │  │               └─────────▶ cancelled
   │  └──────────────────────────▶ cancelled (or failed)
   └──lease lapsed────┘
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

ID_ALPHABET = string.ascii_lowercase + string.digits
ID_PREFIX = "gen_"
ID_LENGTH = 16


class TaskStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})
CANCELLABLE = frozenset({TaskStatus.PENDING, TaskStatus.PROCESSING})

TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.PENDING: frozenset({TaskStatus.PROCESSING, TaskStatus.FAILED, TaskStatus.CANCELLED}),
    TaskStatus.PROCESSING: frozenset(
        {TaskStatus.PENDING, TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED}
    ),
    TaskStatus.COMPLETED: frozenset(),
    TaskStatus.FAILED: frozenset(),
    TaskStatus.CANCELLED: frozenset(),
}


def can_transition(current: TaskStatus, target: TaskStatus) -> bool:
    return target in TRANSITIONS[current]


class TaskType(StrEnum):
    IMAGE = "image_generate"
    IMAGE_EDIT = "image_edit"  # an image request with reference images (``image_urls``)
    VIDEO = "video_generate"
    TOOL = "tool"  # a tool execution (``domain.tools``): its model is the tool's name

    @property
    def unit(self) -> str:
        """What one price unit of a task of this type is: an output image, or a second of
        video (per output); a tool's own unit is in its params (``Task.unit``), ``output`` the
        default."""
        return {TaskType.VIDEO: "second", TaskType.TOOL: "output"}.get(self, "image")


EGG_TYPES = (TaskType.IMAGE, TaskType.IMAGE_EDIT, TaskType.VIDEO)  # what /v1/generate makes


def task_type(kind: TaskType, params: dict[str, Any]) -> TaskType:
    """The type of a task of a model of ``kind``: an image request with ``image_urls`` is an
    edit."""
    return TaskType.IMAGE_EDIT if kind is TaskType.IMAGE and params.get("image_urls") else kind


_ID_SPACE = len(ID_ALPHABET) ** ID_LENGTH


def new_task_id() -> str:
    """``gen_`` and 16 characters drawn uniformly from ``ID_ALPHABET`` (about 83 random bits),
    from one draw of the operating system's random source."""
    n = secrets.randbelow(_ID_SPACE)
    chars = []
    for _ in range(ID_LENGTH):
        n, digit = divmod(n, len(ID_ALPHABET))
        chars.append(ID_ALPHABET[digit])
    return ID_PREFIX + "".join(chars)


_TASK_ID = re.compile(re.escape(ID_PREFIX) + "[" + re.escape(ID_ALPHABET) + "]{12,64}")


def is_task_id(value: str) -> bool:
    """``gen_`` and 12 to 64 characters of ``ID_ALPHABET`` (ids made elsewhere may be shorter
    or longer than ours)."""
    return _TASK_ID.fullmatch(value) is not None


@dataclass(frozen=True)
class Task:
    """A task as stored. ``output`` holds file paths relative to the public files root."""

    id: str
    account_id: str
    model: str
    type: TaskType
    status: TaskStatus
    params: dict[str, Any]
    webhook_url: str | None
    price_micros: int
    cost_micros: int
    file_token: str
    output: dict[str, Any] | None
    error: str | None
    usage: dict[str, Any] | None
    upstream: dict[str, Any] | None
    attempt: int
    lease_owner: str | None
    lease_expires_at: datetime | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    api_key: str | None = None  # the prefix of the API key that submitted it
    units: int = 1  # the price units of its quote: price_micros / units is the unit price
    trace_context: str | None = None  # the submit's W3C traceparent, when tracing is on

    @property
    def unit(self) -> str:
        """What one of its price units is (``image``, ``second``, ``character``…)."""
        if self.type is TaskType.TOOL:
            return str(self.params.get("unit", "output"))
        return self.type.unit
