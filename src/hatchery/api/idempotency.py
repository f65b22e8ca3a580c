"""``Idempotency-Key`` on ``POST /v1/generate``: the same key and body give back the first
request's task and create nothing; the key with another body is refused; while the first request
with a key is still running, the others are told to retry (409, ``Retry-After: 1``).

The key is claimed in the database before the submit (``store.idempotency``), so the promise holds
across API processes and under any number of concurrent duplicates.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request

from hatchery.domain.tasks import Task
from hatchery.errors import BadRequest, Conflict, IdempotencyMismatch
from hatchery.store.idempotency import Claimed
from hatchery.store.queue import TaskQueue

Create = Callable[[tuple[str, Claimed]], Awaitable[Task]]
Original = Callable[[str], Awaitable[Task]]

MAX_KEY = 255


def idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_KEY or not all(" " <= c <= "~" for c in key):
        raise BadRequest(
            f"Idempotency-Key must be 1 to {MAX_KEY} printable ASCII characters "
            f"(got {len(key)} characters)"
        )
    return key


def fingerprint(body: dict[str, Any]) -> str:
    """The body's identity: its JSON with keys sorted, so neither order nor spacing matters."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def replayed_task(key: str, claimed: Claimed, body_fingerprint: str) -> str:
    """The task a repeated request gets back, or why it gets none."""
    if claimed.fingerprint != body_fingerprint:
        raise IdempotencyMismatch(
            f"Idempotency-Key {key!r} was already used with a different request body; send the "
            "same body to get that task back, or use a new key for a new request"
        )
    if claimed.task_id is None:
        raise Conflict(
            f"A request with Idempotency-Key {key!r} is still in progress; retry shortly",
            retry_after=1,
        )
    return claimed.task_id


async def once(
    queue: TaskQueue,
    account_id: str,
    key: str,
    body: dict[str, Any],
    create: Create,
    original: Original,
) -> tuple[Task, bool]:
    """The task ``create`` makes under the claimed key, or the one a request with the same key
    and body made (``original``; then True: nothing new is created or charged). A create that
    fails gives the key back, so a retry may use it."""
    body_fingerprint = fingerprint(body)
    claim = await queue.claim_key(account_id, key, body_fingerprint)
    if not claim.mine:
        return await original(replayed_task(key, claim, body_fingerprint)), True
    try:
        return await create((key, claim)), False
    except BaseException:
        await asyncio.shield(queue.forget_key(account_id, key, claim))
        raise
