"""Webhook delivery outcomes that need no receiver: retry schedule, and what is retried."""

from __future__ import annotations

import httpx
import pytest

from hatchery.store.notify import Notifier
from hatchery.store.outbox import Delivery
from hatchery.webhooks.delivery import RetryPolicy, WebhookDispatcher


class FakeOutbox:
    async def secret(self, account_id: str) -> str | None:
        return None


def dispatcher(resolver: object, allow_private: bool = False) -> WebhookDispatcher:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"no connection may be made, got {request.url}")

    return WebhookDispatcher(
        FakeOutbox(),  # type: ignore[arg-type]
        httpx.AsyncClient(transport=httpx.MockTransport(refuse)),
        Notifier(),
        owner="t",
        policy=RetryPolicy(),
        timeout=1,
        allow_private=allow_private,
        poll_interval=1,
        resolver=resolver,  # type: ignore[arg-type]
    )


DELIVERY = Delivery(
    "whd_1", "gen_x", "acct_x", "task.completed", "http://hooks.test/h", "{}", 0, "t"
)


async def test_a_failed_dns_lookup_is_retried() -> None:
    async def broken(host: str, port: int) -> list[str]:
        raise OSError("Temporary failure in name resolution")

    outcome = await dispatcher(broken)._attempt(DELIVERY)
    assert not outcome.ok and not outcome.final
    assert "cannot resolve host" in (outcome.error or "")


async def test_a_refused_address_is_final() -> None:
    async def private(host: str, port: int) -> list[str]:
        return ["10.1.2.3"]  # a decision only: nothing connects

    outcome = await dispatcher(private)._attempt(DELIVERY)
    assert outcome.final and not outcome.ok
    assert "refused" in (outcome.error or "")


@pytest.mark.parametrize(("retry", "low", "high"), [(1, 54, 60), (2, 216, 240), (5, 12960, 14400)])
def test_backoff_grows_fourfold_and_is_capped(retry: int, low: float, high: float) -> None:
    delay = RetryPolicy(max_retries=5, base=60, cap=4 * 3600).delay(retry)
    assert delay is not None and low <= delay <= high


def test_no_delay_after_the_last_retry() -> None:
    assert RetryPolicy(max_retries=5).delay(6) is None
