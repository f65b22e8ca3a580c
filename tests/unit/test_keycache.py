"""The key cache (``store.keycache``): kept for its lifetime, forgotten when told, bounded."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from hatchery.domain import keys
from hatchery.store import accounts
from hatchery.store.driver import Statement
from hatchery.store.keycache import KeyCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Rows:
    """A driver answering the key lookup from a dict of prefix -> (account id, status)."""

    def __init__(self) -> None:
        self.accounts: dict[str, tuple[str, str]] = {}
        self.reads = 0
        self.gate: asyncio.Event | None = None  # when set, a read waits for it
        self.used: list[str] = []  # the prefixes whose use was recorded, in order

    async def write(self, fn: Any) -> Any:
        class Tx:
            async def execute(_, stmt: Statement, params: Mapping[str, Any] = {}) -> int:
                await asyncio.sleep(0.01)
                self.used.append(params["prefix"])
                return 1

        return await fn(Tx())

    async def one(self, stmt: Statement, params: Mapping[str, Any] = {}) -> dict[str, Any] | None:
        self.reads += 1
        if self.gate is not None:
            await self.gate.wait()
        found = self.accounts.get(params["prefix"])
        if found is None:
            return None
        account_id, status = found
        return {
            "id": account_id,
            "email": f"{account_id}@example.com",
            "status": status,
            "balance_micros": 0,
            "reserved_micros": 0,
            "webhook_secret": None,
            "rate_limit": None,
            "flags": "",
            "role": "user",
            "key_hash": "h",
            "expires_at": None,
            "revoked_at": None,
        }


def key(n: int) -> str:
    return f"hk_{n:04d}" + "x" * 40


def setup(ttl: float = 1.0, size: int = 100) -> tuple[KeyCache, Rows, Clock]:
    rows, clock = Rows(), Clock()
    cache = KeyCache(rows, ttl, size=size, clock=clock)  # type: ignore[arg-type]
    return cache, rows, clock


def status_of(record: accounts.KeyRecord | None) -> str | None:
    return None if record is None else record.account.status


async def test_a_key_is_read_once_per_lifetime_and_again_after_it() -> None:
    cache, rows, clock = setup(ttl=1.0)
    rows.accounts[keys.key_prefix(key(1))] = ("acct_a", "active")
    first = await cache.lookup(key(1))
    assert first is not None and first.account.api_key == keys.key_prefix(key(1))
    clock.now += 0.9
    assert await cache.lookup(key(1)) == first
    assert rows.reads == 1
    rows.accounts[keys.key_prefix(key(1))] = ("acct_a", "suspended")
    clock.now += 0.2  # past the lifetime: the change is seen
    assert status_of(await cache.lookup(key(1))) == "suspended"
    assert rows.reads == 2


async def test_unknown_keys_are_not_kept_and_a_zero_lifetime_keeps_nothing() -> None:
    cache, rows, _ = setup(ttl=1.0)
    assert await cache.lookup(key(1)) is None
    rows.accounts[keys.key_prefix(key(1))] = ("acct_a", "active")
    assert await cache.lookup(key(1)) is not None  # created since: found at once
    off, off_rows, _ = setup(ttl=0)
    off_rows.accounts[keys.key_prefix(key(1))] = ("acct_a", "active")
    await off.lookup(key(1))
    await off.lookup(key(1))
    assert off_rows.reads == 2


async def test_forget_drops_a_key_an_account_or_everything() -> None:
    cache, rows, _ = setup(ttl=60)
    for n, account_id in ((1, "acct_a"), (2, "acct_a"), (3, "acct_b")):
        rows.accounts[keys.key_prefix(key(n))] = (account_id, "active")
        await cache.lookup(key(n))
    for n in (1, 2, 3):
        rows.accounts[keys.key_prefix(key(n))] = (rows.accounts[keys.key_prefix(key(n))][0], "x")

    cache.forget("key:" + keys.key_prefix(key(1)))
    assert [status_of(await cache.lookup(key(n))) for n in (1, 2, 3)] == ["x", "active", "active"]
    cache.forget("account:acct_a")
    assert [status_of(await cache.lookup(key(n))) for n in (2, 3)] == ["x", "active"]
    cache.forget()
    assert status_of(await cache.lookup(key(3))) == "x"


async def test_a_lookup_that_began_before_a_forget_is_not_kept() -> None:
    cache, rows, _ = setup(ttl=60)
    rows.accounts[keys.key_prefix(key(1))] = ("acct_a", "active")
    rows.gate = asyncio.Event()
    racing = asyncio.ensure_future(cache.lookup(key(1)))
    await asyncio.sleep(0)
    cache.forget("account:acct_a")  # announced while the read was on its way
    rows.gate.set()
    assert status_of(await racing) == "active"
    rows.gate = None
    await cache.lookup(key(1))
    assert rows.reads == 2  # read again: the racing result was not kept


async def test_at_most_size_keys_are_kept_the_oldest_going_first() -> None:
    cache, rows, _ = setup(ttl=60, size=3)
    for n in range(5):
        rows.accounts[keys.key_prefix(key(n))] = ("acct_a", "active")
        await cache.lookup(key(n))
    assert rows.reads == 5
    for n in (2, 3, 4):
        await cache.lookup(key(n))
    assert rows.reads == 5
    await cache.lookup(key(0))
    assert rows.reads == 6


async def test_a_keys_use_is_recorded_once_a_minute_and_drained_before_closing() -> None:
    cache, rows, clock = setup()
    cache.used("hk_0001xxxxxx")
    cache.used("hk_0001xxxxxx")  # within the minute: not again
    cache.used("hk_0002xxxxxx")
    clock.now += 61
    cache.used("hk_0001xxxxxx")
    assert rows.used == []  # written in the background: no request waits for it
    await cache.drain()
    assert sorted(rows.used) == ["hk_0001xxxxxx", "hk_0001xxxxxx", "hk_0002xxxxxx"]
