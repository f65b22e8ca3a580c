"""Webhook delivery from the durable outbox: claim a due message, make its body (stored, or
rendered now by its event family's renderer), POST it with fresh signed headers, record the
attempt, and reschedule it on its receiver's schedule until it succeeds (any 2xx) or the retries
run out. 3xx counts as a failure: redirects are not followed.

Per-task ``webhook_url`` messages carry the Egg API's headers and, beside them, the Standard
Webhooks ones (signed with the account's secret); registered endpoints get Standard Webhooks
headers signed with their own secret. A message's ``webhook-id`` is the same on every attempt.
Messages to one receiver are not ordered: each is tried on its own schedule, and receivers use
the payload's time and ``webhook-id`` to order and deduplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from hatchery.domain.webhooks import Schedule
from hatchery.net.guard import (
    HostUnresolvable,
    Resolver,
    ResponseTooLarge,
    URLRefused,
    check_receiver_url,
    guarded_request,
    system_resolver,
)
from hatchery.observe import logs, metrics, tracing
from hatchery.store import outbox
from hatchery.store.db import utcnow
from hatchery.store.notify import WEBHOOKS, Notifier
from hatchery.store.webhooks import Signing, WebhookOutbox
from hatchery.webhooks.signing import signed_headers, standard_headers

log = logging.getLogger("hatchery.webhooks")

RESPONSE_LIMIT = 64 * 1024  # of a receiver's answer we read; a larger one is not an error
RESPONSE_KEPT = 1024  # of it the delivery log keeps
RENDER_RETRY = 30.0  # seconds before a message whose payload could not be made is tried again
BLOCKED_POLL = 0.25  # seconds between claims while every due message waits for a busy receiver

Renderer = Callable[[outbox.Delivery], Awaitable[str]]
"""Makes a message's body when it is sent, from its stored outline (an event family whose
payload carries signed URLs that must be fresh)."""


@dataclass(frozen=True)
class Schedules:
    """Per-task ``webhook_url`` messages (the Egg API's schedule) and registered endpoints'."""

    url: Schedule
    endpoint: Schedule

    def of(self, delivery: outbox.Delivery) -> Schedule:
        return self.url if delivery.endpoint_id is None else self.endpoint


def jittered(delay: float) -> float:
    return delay * random.uniform(0.9, 1.0)


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None
    final: bool = False  # no point retrying (a refused URL)
    response: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookDispatcher:
    def __init__(
        self,
        outbox_: WebhookOutbox,
        client: httpx.AsyncClient,
        notifier: Notifier,
        *,
        owner: str,
        schedules: Schedules,
        allow_private: bool,
        poll_interval: float,
        concurrency: int = 16,
        resolver: Resolver = system_resolver,
        renderers: Mapping[str, Renderer] | None = None,
    ) -> None:
        self.resolver = resolver
        self.outbox = outbox_
        self.client = client
        self.notifier = notifier
        self.owner = owner
        self.schedules = schedules
        self.renderers = dict(renderers or {})
        self.allow_private = allow_private
        self.poll_interval = poll_interval
        self.slots = asyncio.Semaphore(concurrency)
        self._inflight: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        while True:
            await self.slots.acquire()
            delivery = await self._claim()
            if delivery is None:
                self.slots.release()
                await self.notifier.wait(WEBHOOKS, await self._idle_for())
                continue
            job = asyncio.create_task(self._deliver(delivery))
            self._inflight.add(job)
            job.add_done_callback(self._done)

    def _done(self, job: asyncio.Task[None]) -> None:
        self._inflight.discard(job)
        self.slots.release()
        self.notifier.notify(WEBHOOKS)  # its receiver may take another message now

    async def drain(self, timeout: float) -> None:
        """Once ``run`` is cancelled: let the attempts in flight finish and be recorded, for up to
        ``timeout`` seconds, rather than cut a receiver off mid-request. What is still going then
        is cancelled; its claim lapses and another process makes the attempt again."""
        if not self._inflight:
            return
        _, late = await asyncio.wait(set(self._inflight), timeout=timeout)
        for job in late:
            job.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    async def _claim(self) -> outbox.Delivery | None:
        try:
            return await self.outbox.claim(self.owner)
        except Exception:
            log.exception("claiming a webhook delivery failed")
            return None

    async def _idle_for(self) -> float:
        try:
            due = await self.outbox.next_due_at()
        except Exception:
            return self.poll_interval
        if due is None:
            return self.poll_interval
        wait = (due - utcnow()).total_seconds()
        if wait <= 0:  # due, yet not ours to claim: another claimer holds it, or its receiver
            wait = BLOCKED_POLL  # has its fill of attempts (one of ours ending wakes us sooner)
        return max(0.05, min(self.poll_interval, wait))

    async def _deliver(self, delivery: outbox.Delivery) -> None:
        """One attempt at the message; its lines carry the task's (or file's) id and account, and
        its span (tracing on) joins the trace of what wrote it."""
        attributes = {"hatchery.webhook_id": delivery.id, "hatchery.event": delivery.event}
        with (
            logs.bound(task_id=delivery.subject_id, account_id=delivery.account_id),
            tracing.span(
                "webhook.deliver",
                kind=tracing.CLIENT,
                parent=delivery.trace_context,
                attributes=attributes,
            ),
        ):
            await self._deliver_once(delivery)

    async def _deliver_once(self, delivery: outbox.Delivery) -> None:
        try:
            signing = await self.outbox.signing(delivery)
        except Exception:  # the database: the claim lapses and the message is tried again
            log.exception("webhook %s: reading its endpoint failed", delivery.id)
            return
        if signing is None:
            with contextlib.suppress(Exception):  # else its claim lapses and this comes again
                await self.outbox.drop(delivery, "the endpoint was deleted or disabled")
            return
        body = await self._render(delivery)
        if body is not None:
            await self._send(delivery, signing, body)

    async def _send(self, delivery: outbox.Delivery, signing: Signing, body: str) -> None:
        """One attempt, recorded with what comes next: done, again after the schedule's delay
        (this attempt's place in it counted from the last redelivery), or failed for good."""
        started = utcnow()
        clock = time.monotonic()
        outcome = await self._attempt(delivery, signing, body)
        retry = max(1, delivery.attempts + 1 - delivery.schedule_from)
        delay = None if outcome.ok or outcome.final else self.schedules.of(delivery).delay(retry)
        status, due = (outbox.DELIVERED if outcome.ok else outbox.FAILED), None
        if delay is not None:
            status, due = outbox.PENDING, started + timedelta(seconds=jittered(delay))
        try:
            recorded = await self.outbox.record(
                delivery,
                started_at=started,
                duration_ms=int((time.monotonic() - clock) * 1000),
                status_code=outcome.status_code,
                error=outcome.error,
                response=outcome.response,
                outcome=status,
                next_attempt_at=due,
            )
        except Exception:  # the claim lapses and the message is sent again: at least once
            log.exception("webhook %s: recording attempt %d failed", delivery.id, retry)
            return
        if not recorded:
            log.warning("webhook %s was taken over by another worker", delivery.id)
            return
        _count(delivery, status, started)
        if not outcome.ok:
            log.info("webhook %s attempt %d failed: %s", delivery.id, retry, outcome.error)

    async def _render(self, delivery: outbox.Delivery) -> str | None:
        """The body to send; None if it could not be made (the database or the file store
        unreachable): the message is given back for later, its retries and its receiver's
        standing untouched, since the fault is ours."""
        render = self.renderers.get(delivery.event.split(".", 1)[0])
        if render is None:
            return delivery.body
        try:
            return await render(delivery)
        except Exception:
            log.exception("webhook %s: its payload could not be made; later", delivery.id)
            with contextlib.suppress(Exception):  # else its claim lapses: later all the same
                await self.outbox.postpone(delivery, RENDER_RETRY)
            return None

    def _headers(self, delivery: outbox.Delivery, signing: Signing, body: str) -> dict[str, str]:
        now = int(time.time())
        headers = {"Content-Type": "application/json"}
        if signing.egg_headers:
            headers.update(signed_headers(body, signing.secret, now))
        headers.update(standard_headers(delivery.message_id, now, body, signing.secret))
        return headers

    async def _attempt(self, delivery: outbox.Delivery, signing: Signing, body: str) -> Outcome:
        schedule = self.schedules.of(delivery)
        try:
            if not delivery.url.startswith("https:") and delivery.endpoint_id is not None:
                await check_receiver_url(
                    delivery.url, allow_private=self.allow_private, resolver=self.resolver
                )
            response = await guarded_request(
                self.client,
                "POST",
                delivery.url,
                allow_private=self.allow_private,
                headers=self._headers(delivery, signing, body),
                content=body.encode("utf-8"),
                timeout=schedule.timeout,
                max_bytes=RESPONSE_LIMIT,
                max_redirects=0,
                resolver=self.resolver,
            )
        except HostUnresolvable as exc:  # DNS may answer next time
            return Outcome(None, str(exc))
        except URLRefused as exc:
            return Outcome(None, f"refused: {exc}", final=True)
        except ResponseTooLarge as exc:  # the receiver answered; we only skipped its body
            return _by_status(exc.status_code, None)
        except Exception as exc:
            return Outcome(None, f"{type(exc).__name__}: {exc}"[:500])
        return _by_status(response.status_code, response.content)


OUTCOMES = {outbox.DELIVERED: "delivered", outbox.PENDING: "retrying", outbox.FAILED: "failed"}


def _count(delivery: outbox.Delivery, status: str, started: datetime) -> None:
    """A recorded attempt in the metrics: its receiver, its outcome, and its message's lag from
    its writing to its delivery (unless an operator asked for it again after it had ended)."""
    receiver = "task_url" if delivery.endpoint_id is None else "endpoint"
    first_schedule = delivery.schedule_from == 0  # a redelivery asked for later is not lag
    delivered = status == outbox.DELIVERED and first_schedule
    lag = (started - delivery.created_at).total_seconds() if delivered else None
    metrics.webhook_attempt(receiver, OUTCOMES[status], lag)


def _by_status(status_code: int, content: bytes | None) -> Outcome:
    error = None if 200 <= status_code < 300 else f"HTTP {status_code}"
    kept = None if content is None else content[:RESPONSE_KEPT].decode("utf-8", "replace")
    return Outcome(status_code, error, response=kept)
