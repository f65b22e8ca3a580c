"""Webhook delivery outcomes that need no receiver: retry schedules, what is retried, and the
plain-http rule for registered endpoints (decisions only: nothing connects)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from hatchery.domain.webhooks import Schedule, parse_schedule
from hatchery.store.notify import Notifier
from hatchery.store.outbox import Delivery
from hatchery.store.webhooks import Signing
from hatchery.webhooks.delivery import Schedules, WebhookDispatcher

EGG = Schedule.exponential(5, 60, 4 * 3600, 30)
VIDEOGEN = Schedule(parse_schedule("5s,5m,30m,2h,5h,10h"), 15)
UNSIGNED = Signing(None, egg_headers=True)


def dispatcher(resolver: object, allow_private: bool = False) -> WebhookDispatcher:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"no connection may be made, got {request.url}")

    return WebhookDispatcher(
        None,  # type: ignore[arg-type]
        httpx.AsyncClient(transport=httpx.MockTransport(refuse)),
        Notifier(),
        owner="t",
        schedules=Schedules(url=EGG, endpoint=VIDEOGEN),
        allow_private=allow_private,
        poll_interval=1,
        resolver=resolver,  # type: ignore[arg-type]
    )


def delivery(url: str = "http://hooks.test/h", endpoint_id: str | None = None) -> Delivery:
    return Delivery(
        id="whd_1",
        message_id="msg_1",
        subject_id="gen_x",
        account_id="acct_x",
        endpoint_id=endpoint_id,
        event="task.completed",
        url=url,
        body="{}",
        attempts=0,
        schedule_from=0,
        lease_owner="t",
        created_at=datetime.now(UTC),
    )


DELIVERY = delivery()


async def test_a_failed_dns_lookup_is_retried() -> None:
    async def broken(host: str, port: int) -> list[str]:
        raise OSError("Temporary failure in name resolution")

    outcome = await dispatcher(broken)._attempt(DELIVERY, UNSIGNED, "{}")
    assert not outcome.ok and not outcome.final
    assert "cannot resolve host" in (outcome.error or "")


async def test_a_refused_address_is_final() -> None:
    async def private(host: str, port: int) -> list[str]:
        return ["10.1.2.3"]  # a decision only: nothing connects

    outcome = await dispatcher(private)._attempt(DELIVERY, UNSIGNED, "{}")
    assert outcome.final and not outcome.ok
    assert "refused" in (outcome.error or "")


@pytest.mark.parametrize(("retry", "expected"), [(1, 60), (2, 240), (3, 960), (5, 4 * 3600)])
def test_egg_backoff_grows_fourfold_and_is_capped(retry: int, expected: float) -> None:
    assert EGG.delay(retry) == expected


@pytest.mark.parametrize(("retry", "expected"), [(1, 5), (2, 300), (3, 1800), (6, 36000)])
def test_endpoint_schedule_is_the_written_one(retry: int, expected: float) -> None:
    assert VIDEOGEN.delay(retry) == expected


def test_no_delay_after_the_last_retry() -> None:
    assert EGG.delay(6) is None and VIDEOGEN.delay(7) is None and EGG.delay(0) is None


def test_a_schedule_that_cannot_be_read_says_how_to_write_it() -> None:
    with pytest.raises(ValueError, match=r"e\.g\. 5s,5m"):
        parse_schedule("5s,soon")
    assert parse_schedule("250ms, 1.5m,1d") == (0.25, 90.0, 86400.0)


async def test_plain_http_endpoint_is_refused_without_the_private_switch() -> None:
    async def public(host: str, port: int) -> list[str]:
        return ["93.184.216.34"]

    endpoint = delivery("http://hooks.test/h", endpoint_id="ep_12345678")
    outcome = await dispatcher(public)._attempt(endpoint, UNSIGNED, "{}")
    assert outcome.final and "must be https" in (outcome.error or "")


async def test_plain_http_endpoint_to_a_public_address_is_refused_even_when_allowed() -> None:
    async def public(host: str, port: int) -> list[str]:
        return ["93.184.216.34"]

    endpoint = delivery("http://hooks.test/h", endpoint_id="ep_12345678")
    outcome = await dispatcher(public, allow_private=True)._attempt(endpoint, UNSIGNED, "{}")
    assert outcome.final and "only to private addresses" in (outcome.error or "")


class RecordingOutbox:
    """What the dispatcher asks of the outbox, kept: postponements and recorded attempts."""

    def __init__(self) -> None:
        self.postponed: list[float] = []
        self.recorded: list[dict[str, object]] = []

    async def signing(self, delivery: Delivery) -> Signing:
        return UNSIGNED

    async def postpone(self, delivery: Delivery, seconds: float) -> bool:
        self.postponed.append(seconds)
        return True

    async def record(self, delivery: Delivery, **attempt: object) -> bool:
        self.recorded.append(attempt)
        return True


def recording(outbox: RecordingOutbox, schedules: Schedules, **renderers: Any) -> WebhookDispatcher:
    async def unresolvable(host: str, port: int) -> list[str]:
        raise OSError("Temporary failure in name resolution")

    sender = dispatcher(unresolvable)
    sender.outbox = outbox  # type: ignore[assignment]
    sender.schedules = schedules
    sender.renderers = renderers
    return sender


async def test_a_payload_that_cannot_be_made_is_put_off_not_counted_as_an_attempt() -> None:
    async def broken(delivery: Delivery) -> str:
        raise ConnectionError("the database is down")

    outbox = RecordingOutbox()
    endpoint = replace(delivery(), event="tool_execution.succeeded", endpoint_id="ep_12345678")
    await recording(outbox, Schedules(url=EGG, endpoint=VIDEOGEN), tool_execution=broken)._deliver(
        endpoint
    )
    assert outbox.postponed == [30.0] and outbox.recorded == []


async def test_a_zero_delay_is_a_retry_now_not_the_end() -> None:
    outbox = RecordingOutbox()
    now = Schedule((0.0, 0.0), 1)
    await recording(outbox, Schedules(url=now, endpoint=now))._deliver(DELIVERY)
    [attempt] = outbox.recorded
    assert attempt["outcome"] == "pending" and attempt["next_attempt_at"] is not None
    last = replace(DELIVERY, attempts=2)  # its third attempt: past the schedule's two retries
    await recording(outbox, Schedules(url=now, endpoint=now))._deliver(last)
    assert outbox.recorded[1]["outcome"] == "failed"
