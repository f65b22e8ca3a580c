"""API keys in memory: the key lookup of every request, read from the database at most once per
``ttl`` seconds per key and process.

An entry holds what authentication decides on (the key's hash, expiry and revocation, its
account's id, status and rate limit), never money: the balance it carries is as old as the entry,
and nothing that moves money or shows a balance reads it (the reservation is a conditional update
in the database; ``GET /v1/account`` reads the account again).

A change to a key or to an account's status or rate limit reaches every process:

- on PostgreSQL at once: migration 0007's triggers announce it (``pg_notify``) in the writer's own
  transaction, each process's listener relays it here (``forget``), and a listener that was
  disconnected forgets everything when it reconnects, as it may have missed announcements;
- on SQLite within ``ttl`` (``HATCHERY_KEY_CACHE_SECONDS``, 1 s by default), as the ``hatchery``
  commands that change keys run in a process of their own.

At most ``size`` keys are held; past that the oldest entry goes. Unknown keys are not kept.

It also records when each key was last used (``api_keys.last_used_at``, what the dashboard
shows): at most once every ``USE_INTERVAL`` seconds per key and process, written in the
background so that no request waits for it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from hatchery.domain import keys
from hatchery.store import accounts
from hatchery.store.db import utcnow
from hatchery.store.driver import Driver

log = logging.getLogger("hatchery.keys")

DEFAULT_SIZE = 10_000
USE_INTERVAL = 60.0  # seconds between two records of one key's use by one process
ACCOUNT = "account:"  # an announcement's payload: ``account:<id>``, or ``key:<prefix>``
KEY = "key:"


class KeyCache:
    def __init__(
        self,
        driver: Driver,
        ttl: float,
        size: int = DEFAULT_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.driver = driver
        self.ttl = ttl
        self.size = size
        self.clock = clock
        self._entries: dict[str, tuple[float, accounts.KeyRecord]] = {}
        self._generation = 0  # moves on every forget: a lookup begun before one is not kept
        self._used: dict[str, float] = {}  # prefix -> when its use was last recorded
        self._writes: set[asyncio.Task[None]] = set()

    async def lookup(self, key: str) -> accounts.KeyRecord | None:
        """The record of the key ``key`` claims to be (its prefix's), from memory while fresh."""
        prefix = keys.key_prefix(key)
        now = self.clock()
        entry = self._entries.get(prefix)
        if entry is not None and entry[0] > now:
            return entry[1]
        generation = self._generation
        record = await accounts.key_record(self.driver, key)
        if record is not None and self.ttl > 0 and generation == self._generation:
            self._keep(prefix, record, now + self.ttl)
        return record

    def used(self, prefix: str) -> None:
        """A request authenticated with the key: record it, unless it was within the interval."""
        now = self.clock()
        if now - self._used.get(prefix, -USE_INTERVAL) < USE_INTERVAL:
            return
        if len(self._used) >= self.size:
            self._used.clear()
        self._used[prefix] = now
        write = asyncio.get_running_loop().create_task(self._record_use(prefix))
        self._writes.add(write)
        write.add_done_callback(self._writes.discard)

    async def _record_use(self, prefix: str) -> None:
        try:
            await accounts.key_used(self.driver, prefix, utcnow())
        except Exception as exc:  # a lost record of use is no reason to fail anything
            log.warning("could not record the use of key %s: %s", prefix, exc)

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait (up to ``timeout`` seconds) for the records of use being written: before the
        database is closed."""
        if self._writes:
            await asyncio.wait(list(self._writes), timeout=timeout)

    def _keep(self, prefix: str, record: accounts.KeyRecord, until: float) -> None:
        self._entries.pop(prefix, None)
        while len(self._entries) >= self.size:
            del self._entries[next(iter(self._entries))]
        self._entries[prefix] = (until, record)

    def forget(self, what: str = "") -> None:
        """Drop one key (``key:<prefix>``), one account's keys (``account:<id>``), or all."""
        self._generation += 1
        if what.startswith(KEY):
            self._entries.pop(what.removeprefix(KEY), None)
        elif what.startswith(ACCOUNT):
            account_id = what.removeprefix(ACCOUNT)
            for prefix in [p for p, (_, r) in self._entries.items() if r.account.id == account_id]:
                del self._entries[prefix]
        else:
            self._entries.clear()
