"""The webhook managers: what outbox and registry queries mean, each operation one transaction.

:class:`WebhookOutbox` is the dispatcher's side: claim a due message, learn how to sign it,
record each attempt, and, in the attempt's transaction, keep its endpoint's run of failures (the
run that lasts ``disable_after`` disables the endpoint, cancels what still waits for it and tells
the account's other endpoints). :class:`WebhookRegistry` is the API's: endpoints, the delivery
log, redelivery and test events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from hatchery.domain.webhooks import (
    ENDPOINT_DISABLED,
    MAX_ENDPOINTS,
    TEST_EVENT,
    new_endpoint_id,
    new_endpoint_secret,
    new_message_id,
    outline,
    span,
)
from hatchery.errors import Conflict, NotFound, ValidationFailed
from hatchery.store import accounts, endpoints, outbox
from hatchery.store.db import Database, utcnow
from hatchery.store.driver import EngineTx
from hatchery.store.endpoints import Endpoint
from hatchery.store.notify import WEBHOOKS, Notifier


@dataclass(frozen=True)
class Signing:
    """How a message is signed: the secret (None: unsigned), and whether the Egg API's own
    headers go beside the Standard Webhooks ones (a per-task ``webhook_url``)."""

    secret: str | None
    egg_headers: bool


class WebhookOutbox:
    """Claiming due messages and recording each attempt."""

    def __init__(
        self,
        db: Database,
        notifier: Notifier,
        *,
        lease_seconds: float,
        per_target: int,
        disable_after: float,
    ) -> None:
        self.db = db
        self.notifier = notifier
        self.lease = timedelta(seconds=lease_seconds)
        self.per_target = per_target
        self.disable_after = timedelta(seconds=disable_after)

    async def claim(self, owner: str) -> outbox.Delivery | None:
        now = utcnow()
        async with self.db.write() as conn:
            return await outbox.claim(conn, owner, now, now + self.lease, self.per_target)

    async def signing(self, delivery: outbox.Delivery) -> Signing | None:
        """How to sign it; None if its endpoint is deleted or disabled (it is not sent)."""
        async with self.db.read() as conn:
            if delivery.endpoint_id is None:
                account = await accounts.by_id(conn, delivery.account_id)
                return Signing(account.webhook_secret if account else None, egg_headers=True)
            endpoint = await endpoints.by_id(conn, delivery.endpoint_id)
        if endpoint is None or not endpoint.enabled:
            return None
        return Signing(endpoint.secret, egg_headers=False)

    async def postpone(self, delivery: outbox.Delivery, seconds: float) -> bool:
        async with self.db.write() as conn:
            return await outbox.postpone(conn, delivery, utcnow() + timedelta(seconds=seconds))

    async def drop(self, delivery: outbox.Delivery, why: str) -> bool:
        async with self.db.write() as conn:
            return await outbox.drop(conn, delivery, why)

    async def next_due_at(self) -> datetime | None:
        async with self.db.read() as conn:
            return await outbox.next_due_at(conn, utcnow())

    async def record(self, delivery: outbox.Delivery, **attempt: Any) -> bool:
        """The attempt, its outcome and its endpoint's standing, in one transaction."""
        async with self.db.write() as conn:
            if not await outbox.record_attempt(conn, delivery, **attempt):
                return False
            if delivery.endpoint_id is None:
                return True
            if attempt["outcome"] == outbox.DELIVERED:
                await endpoints.succeeded(conn, delivery.endpoint_id)
                return True
            disabled = await self._note_failure(conn, delivery.endpoint_id, attempt["started_at"])
        if disabled:
            self.notifier.notify(WEBHOOKS)
        return True

    async def _note_failure(self, conn: AsyncConnection, endpoint_id: str, at: datetime) -> bool:
        why = f"every attempt failed for {span(self.disable_after.total_seconds())}"
        endpoint = await endpoints.failed(conn, endpoint_id, at, at - self.disable_after, why)
        if endpoint is None:
            return False
        await outbox.cancel_pending(conn, endpoint.id, f"the endpoint was disabled: {why}", at)
        await outbox.emit_outline(
            EngineTx(conn),
            account_id=endpoint.account_id,
            event=ENDPOINT_DISABLED,
            subject_id=endpoint.id,
            now=at,
            details={"url": endpoint.url, "reason": why},
        )
        return True


class WebhookRegistry:
    """An account's endpoints, its delivery log, redelivery and test events."""

    def __init__(self, db: Database, notifier: Notifier) -> None:
        self.db = db
        self.notifier = notifier

    async def create(
        self, account_id: str, url: str, events: list[str], description: str | None
    ) -> Endpoint:
        async with self.db.write() as conn:
            if await endpoints.count(conn, account_id) >= MAX_ENDPOINTS:
                raise ValidationFailed(
                    f"An account can have at most {MAX_ENDPOINTS} webhook endpoints; delete one "
                    "you no longer use"
                )
            values = {
                "id": new_endpoint_id(),
                "account_id": account_id,
                "url": url,
                "events": list(dict.fromkeys(events)),
                "description": description,
                "secret": new_endpoint_secret(),
                "created_at": utcnow(),
            }
            return await endpoints.insert(conn, values)

    async def listing(self, account_id: str) -> list[Endpoint]:
        async with self.db.read() as conn:
            return await endpoints.listing(conn, account_id)

    async def get(self, account_id: str, endpoint_id: str) -> Endpoint:
        async with self.db.read() as conn:
            return _found(await endpoints.get(conn, endpoint_id, account_id), endpoint_id)

    async def delete(self, account_id: str, endpoint_id: str) -> None:
        """Deleted, and nothing still waiting for it is sent."""
        now = utcnow()
        async with self.db.write() as conn:
            if not await endpoints.delete(conn, endpoint_id, account_id, now):
                raise NotFound(f"Webhook endpoint not found: {endpoint_id}")
            await outbox.cancel_pending(conn, endpoint_id, "the endpoint was deleted", now)

    async def enable(self, account_id: str, endpoint_id: str) -> Endpoint:
        async with self.db.write() as conn:
            endpoint = await endpoints.enable(conn, endpoint_id, account_id)
        return _found(endpoint, endpoint_id)

    async def send_test(self, account_id: str, endpoint_id: str) -> outbox.Logged:
        """A ``webhook.test`` message to the endpoint, whatever it subscribes to."""
        now = utcnow()
        async with self.db.write() as conn:
            endpoint = _usable(await endpoints.get(conn, endpoint_id, account_id), endpoint_id)
            delivery_id = await outbox.add(
                EngineTx(conn),
                message_id=new_message_id(),
                account_id=account_id,
                event=TEST_EVENT,
                subject_id=endpoint.id,
                body=outline(TEST_EVENT, endpoint.id, now),
                now=now,
                url=endpoint.url,
                endpoint_id=endpoint.id,
                target=endpoint.id,
            )
        self.notifier.notify(WEBHOOKS)
        return await self.delivery(account_id, delivery_id)

    async def redeliver(
        self, account_id: str, delivery_id: str, subject_id: str | None = None
    ) -> outbox.Logged:
        """The message again, now, with the same ``webhook-id`` and a fresh retry schedule;
        with ``subject_id``, only if it is that task's (or execution's, or file's)."""
        found = await self.delivery(account_id, delivery_id)
        if subject_id is not None and found.subject_id != subject_id:
            raise NotFound(f"Webhook delivery not found: {delivery_id}")
        async with self.db.write() as conn:
            if found.endpoint_id is not None:
                endpoint = await endpoints.get(conn, found.endpoint_id, account_id)
                _usable(endpoint, found.endpoint_id)
            await outbox.redeliver(conn, delivery_id, account_id, utcnow())
        self.notifier.notify(WEBHOOKS)
        return await self.delivery(account_id, delivery_id)

    async def delivery(self, account_id: str, delivery_id: str) -> outbox.Logged:
        async with self.db.read() as conn:
            found, _ = await outbox.logged(conn, account_id, delivery_id=delivery_id, limit=1)
        if not found:
            raise NotFound(f"Webhook delivery not found: {delivery_id}")
        return found[0]

    async def log(
        self,
        account_id: str,
        *,
        subject_id: str | None = None,
        endpoint_id: str | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> tuple[list[outbox.Logged], int | None]:
        async with self.db.read() as conn:
            return await outbox.logged(
                conn,
                account_id,
                subject_id=subject_id,
                endpoint_id=endpoint_id,
                before=before,
                limit=limit,
            )


def _found(endpoint: Endpoint | None, endpoint_id: str) -> Endpoint:
    if endpoint is None:
        raise NotFound(f"Webhook endpoint not found: {endpoint_id}")
    return endpoint


def _usable(endpoint: Endpoint | None, endpoint_id: str) -> Endpoint:
    found = _found(endpoint, endpoint_id)
    if not found.enabled:
        raise Conflict(
            f"Webhook endpoint {endpoint_id} is disabled ({found.disabled_reason}); enable it "
            "again first"
        )
    return found
