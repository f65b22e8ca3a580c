"""Webhook delivery from the durable outbox: claim a due delivery, POST the stored body with fresh
signed headers, record the attempt, and reschedule with exponential backoff until it succeeds
(any 2xx) or the retries run out. 3xx counts as a failure: redirects are not followed."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from datetime import timedelta

import httpx

from hatchery.net.guard import (
    HostUnresolvable,
    Resolver,
    ResponseTooLarge,
    URLRefused,
    guarded_request,
    system_resolver,
)
from hatchery.store import outbox
from hatchery.store.db import utcnow
from hatchery.store.notify import WEBHOOKS, Notifier
from hatchery.store.queue import WebhookOutbox
from hatchery.webhooks.signing import signed_headers

log = logging.getLogger("hatchery.webhooks")

RESPONSE_LIMIT = 64 * 1024  # of a receiver's answer we read; a larger one is not an error


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 5
    base: float = 60.0
    cap: float = 4 * 3600.0

    def delay(self, retry: int) -> float | None:
        """Seconds before retry number ``retry`` (1-based), or None when retries are exhausted."""
        if retry > self.max_retries:
            return None
        raw = min(self.base * 4.0 ** (retry - 1), self.cap)
        return raw * random.uniform(0.9, 1.0)


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None
    final: bool = False  # no point retrying (a refused URL)

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
        policy: RetryPolicy,
        timeout: float,
        allow_private: bool,
        poll_interval: float,
        concurrency: int = 16,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.resolver = resolver
        self.outbox = outbox_
        self.client = client
        self.notifier = notifier
        self.owner = owner
        self.policy = policy
        self.timeout = timeout
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
        return max(0.05, min(self.poll_interval, (due - utcnow()).total_seconds()))

    async def _deliver(self, delivery: outbox.Delivery) -> None:
        started = utcnow()
        clock = time.monotonic()
        outcome = await self._attempt(delivery)
        made = delivery.attempts + 1  # attempts made, this one included; the next is retry `made`
        delay = None if outcome.ok or outcome.final else self.policy.delay(made)
        status = outbox.DELIVERED if outcome.ok else (outbox.PENDING if delay else outbox.FAILED)
        recorded = await self.outbox.record(
            delivery,
            started_at=started,
            duration_ms=int((time.monotonic() - clock) * 1000),
            status_code=outcome.status_code,
            error=outcome.error,
            outcome=status,
            next_attempt_at=started + timedelta(seconds=delay) if delay else None,
        )
        if not recorded:
            log.warning("webhook %s was taken over by another worker", delivery.id)
        elif not outcome.ok:
            log.info("webhook %s attempt %d failed: %s", delivery.id, made, outcome.error)

    async def _attempt(self, delivery: outbox.Delivery) -> Outcome:
        try:
            secret = await self.outbox.secret(delivery.account_id)
            headers = signed_headers(delivery.body, secret, int(time.time()))
            response = await guarded_request(
                self.client,
                "POST",
                delivery.url,
                allow_private=self.allow_private,
                headers=headers,
                content=delivery.body.encode("utf-8"),
                timeout=self.timeout,
                max_bytes=RESPONSE_LIMIT,
                max_redirects=0,
                resolver=self.resolver,
            )
        except HostUnresolvable as exc:  # DNS may answer next time
            return Outcome(None, str(exc))
        except URLRefused as exc:
            return Outcome(None, f"refused: {exc}", final=True)
        except ResponseTooLarge as exc:  # the receiver answered; we only skipped its body
            return _by_status(exc.status_code)
        except Exception as exc:
            return Outcome(None, f"{type(exc).__name__}: {exc}"[:500])
        return _by_status(response.status_code)


def _by_status(status_code: int) -> Outcome:
    error = None if 200 <= status_code < 300 else f"HTTP {status_code}"
    return Outcome(status_code, error)
