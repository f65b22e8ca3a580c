"""Helpers for tests that drive the store in-process: accounts, submissions, balances."""

from __future__ import annotations

from typing import Any

from hatchery import admin
from hatchery.domain.tasks import new_task_id
from hatchery.store import accounts
from hatchery.store.db import Database
from hatchery.store.queue import TaskQueue

PRICE = 10_000


async def new_account(db: Database, balance: int = 1_000_000) -> str:
    return (await admin.create_user(db, f"{new_task_id()}@example.com", balance)).id


def task_values(task_id: str, account_id: str, webhook: str | None = None) -> dict[str, Any]:
    """A submit's values: a 1-image nanobanana task at PRICE."""
    params = {
        "prompt": "p",
        "num_outputs": 1,
        "duration": 5,
        "aspect_ratio": "16:9",
        "resolution": "1k",
    }
    return {
        "id": task_id,
        "account_id": account_id,
        "model": "nanobanana",
        "type": "image_generate",
        "params": params,
        "webhook_url": webhook,
        "price_micros": PRICE,
    }


async def submit(queue: TaskQueue, account_id: str, webhook: str | None = None) -> str:
    task_id = new_task_id()
    await queue.submit(task_values(task_id, account_id, webhook))
    return task_id


async def account(db: Database, account_id: str) -> accounts.Account:
    async with db.read() as conn:
        found = await accounts.by_id(conn, account_id)
    assert found is not None
    return found
