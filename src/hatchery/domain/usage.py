"""Usage: what each charge was for, and usage summed. Pure: no I/O.

A task that completes is charged once, and that charge has one usage record: the task's model and
type, how many price units it was quoted (output images, or seconds of video), at what unit price,
the cost charged (units times unit price), the image size made, and the API key that submitted it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from hatchery.domain.tasks import TaskType


@dataclass(frozen=True)
class UsageRecord:
    id: str
    task_id: str
    model: str
    type: TaskType
    api_key: str | None
    units: int
    unit: str  # "image" or "second"
    unit_price_micros: int
    cost_micros: int
    resolution: str | None
    created_at: datetime


@dataclass(frozen=True)
class Totals:
    """Usage summed: of one model in a summary, or of everything in an account's usage."""

    model: str | None
    units: int
    cost_micros: int
    requests: int


def usage_id(task_id: str) -> str:
    """A task has at most one usage record; its id is the task's with another prefix."""
    return "usage_" + task_id.removeprefix("gen_")
