"""A ``Task`` as stored, for unit tests: every field at a plain value, the ones a test names
changed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hatchery.domain.tasks import Task, TaskStatus, TaskType

CREATED = datetime(2026, 5, 8, 10, 30, 0)


def make_task(**changes: Any) -> Task:
    values: dict[str, Any] = {
        "id": "gen_abcdefghijkl0123",
        "account_id": "acct_1",
        "model": "nanobanana",
        "type": TaskType.IMAGE,
        "status": TaskStatus.PENDING,
        "params": {"prompt": "a lighthouse"},
        "webhook_url": None,
        "price_micros": 10_000,
        "cost_micros": 0,
        "file_token": "tok",
        "output": None,
        "error": None,
        "usage": None,
        "upstream": None,
        "attempt": 0,
        "lease_owner": None,
        "lease_expires_at": None,
        "created_at": CREATED,
        "started_at": None,
        "completed_at": None,
    }
    values.update(changes)
    return Task(**values)
