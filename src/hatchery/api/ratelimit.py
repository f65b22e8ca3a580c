"""Rate limits on ``/v1/*``: per client IP (checked first, for every request) and per API key
(checked right after the key is authenticated), counted in one of ``limits``' async storages.

- **Storage.** In this process's memory, or in Redis when ``HATCHERY_REDIS_URL`` is set, so that
  every API process sharing that Redis counts against the same limits.
- **Counting.** Fixed windows aligned to the clock (a ``1/minute`` window runs from one whole
  minute to the next), so one storage call per limit (an atomic increment) gives both the count
  and the reset time. A refused request counts too.
- **Headers.** Every response to a limited request reports the limit with the fewest requests
  remaining, IP or key (on the VideoGen API, the endpoint group's hourly limit instead):
  ``RateLimit-Limit``, ``-Remaining``, ``-Reset`` (seconds until the window resets) and the same
  as ``X-RateLimit-*``, whose ``Reset`` is the Unix time of the reset.
- **Fail open.** If the storage cannot be reached (Redis down), requests are let through
  unlimited and without those headers; this is logged, and the storage is tried again after
  ``RETRY_SECONDS``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from limits import RateLimitItem
from limits.aio.storage import RedisStorage, Storage
from starlette.types import Scope

from hatchery.domain.rates import describe, parse_rates
from hatchery.errors import RateLimited
from hatchery.settings import Settings

log = logging.getLogger("hatchery.ratelimit")

SCOPE_KEY = "hatchery.rate_limits"
KEY_PREFIX = "hatchery"
REDIS_TIMEOUT = 0.5  # seconds to connect to Redis, or for it to answer, before failing open
RETRY_SECONDS = 2.0  # after a storage failure, requests pass unlimited this long before a retry
# kind of limit: how a message names it
WHO = {
    "ip": "per client IP",
    "key": "per API key",
    "group": "per API key on these endpoints",
    "signin-ip": "sign-in attempts per client IP",
    "signin-email": "sign-in attempts per email",
}


class MemoryWindows:
    """Counters of clock-aligned windows in this process's memory, counted without a wait: a
    count per key (the key names its window), dropped once its window has ended. Ended windows
    are swept at most once every ``SWEEP_SECONDS``, so a request costs the same with ten clients
    or ten thousand (``limits``' own memory storage sweeps every counter after each increment)."""

    SWEEP_SECONDS = 1.0

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.ends: dict[str, float] = {}  # key -> Unix time at which its window ends
        self._swept = 0.0

    def incr(self, key: str, end: float, now: float) -> int:
        if now - self._swept >= self.SWEEP_SECONDS:
            self.sweep(now)
        count = self.counts.get(key, 0) + 1
        self.counts[key] = count
        if count == 1:
            self.ends[key] = end
        return count

    def sweep(self, now: float) -> None:
        self._swept = now
        for key in [key for key, end in self.ends.items() if end <= now]:
            del self.ends[key], self.counts[key]


class Quota(NamedTuple):
    """Where one limit stands after this request's hit (a tuple: one is made per limit and
    request)."""

    who: str
    item: RateLimitItem
    remaining: int
    reset: float  # Unix time at which the window resets
    exceeded: bool

    def rank(self) -> tuple[int, float]:
        """Fewest remaining first; of those, the one that resets last."""
        return self.remaining, -self.reset

    def retry_after(self, now: float) -> int:
        return max(1, math.ceil(self.reset - now))

    def refusal(self, now: float) -> RateLimited:
        wait = self.retry_after(now)
        return RateLimited(
            f"Rate limit exceeded: {self.who} {describe((self.item,))}; retry in {wait} s", wait
        )


class Limiter:
    """The limits of one API process, built once from its settings."""

    def __init__(
        self,
        storage: Storage | MemoryWindows,
        key_default: str,
        per_ip: str,
        close: Callable[[], Awaitable[None]] | None = None,
        signin: str = "off",
    ) -> None:
        self.storage = storage
        self.key_default = parse_rates(key_default)
        self.per_ip = parse_rates(per_ip)
        self.signin = parse_rates(signin)  # the dashboard's, per client IP and per email
        self._close = close
        base = () if isinstance(storage, MemoryWindows) else storage.base_exceptions
        self._errors: tuple[type[Exception], ...] = (
            (OSError, *base) if isinstance(base, tuple) else (OSError, base)
        )
        self._down_until = 0.0
        self._parsed: dict[str, tuple[RateLimitItem, ...]] = {}  # accounts' own limits

    @classmethod
    def from_settings(cls, settings: Settings) -> Limiter:
        signin = settings.dashboard_signin_limit
        if not settings.redis_url:
            return cls(MemoryWindows(), settings.rate_limit, settings.rate_limit_ip, signin=signin)
        import redis.asyncio

        pool = redis.asyncio.ConnectionPool.from_url(
            settings.redis_url,
            socket_timeout=REDIS_TIMEOUT,
            socket_connect_timeout=REDIS_TIMEOUT,
        )
        storage = RedisStorage(
            "async+redis://",
            implementation="redispy",
            key_prefix=KEY_PREFIX,
            connection_pool=pool,  # type: ignore[arg-type]  # passed on to redis.asyncio.Redis
        )
        return cls(storage, settings.rate_limit, settings.rate_limit_ip, pool.aclose, signin)

    def key_limits(self, account_limit: str | None) -> tuple[RateLimitItem, ...]:
        """The account's own limit if it has a valid one, else the server's default."""
        if account_limit is None:
            return self.key_default
        items = self._parsed.get(account_limit)
        if items is None:
            try:
                items = parse_rates(account_limit)
            except ValueError:
                log.warning("account rate limit %r is not valid; using the default", account_limit)
                items = self.key_default
            if len(self._parsed) < 1000:  # a handful in practice: one per distinct limit
                self._parsed[account_limit] = items
        return items

    async def hit(self, kind: str, identity: str, items: tuple[RateLimitItem, ...]) -> Quota | None:
        """Count one request against each of ``items``; the tightest of them afterwards (None
        with no limits, or when the storage cannot be reached: fail open)."""
        if not items:
            return None
        quotas: list[Quota] | None
        if isinstance(self.storage, MemoryWindows):  # nothing to wait for, nothing to fail
            quotas = [self._count(self.storage, kind, identity, item) for item in items]
        else:
            quotas = await self._hit_storage(self.storage, kind, identity, items)
        if quotas is None:
            return None
        return quotas[0] if len(quotas) == 1 else min(quotas, key=Quota.rank)

    async def _hit_storage(
        self, storage: Storage, kind: str, identity: str, items: tuple[RateLimitItem, ...]
    ) -> list[Quota] | None:
        if time.monotonic() < self._down_until:
            return None
        quotas = []
        try:
            for item in items:
                key, expiry, end = _window(kind, identity, item)
                count = await storage.incr(key, expiry)
                quotas.append(_quota(kind, item, count, end))
        except self._errors as exc:
            self._failed(exc)
            return None
        if self._down_until:
            self._down_until = 0.0
            log.warning("rate limit storage reachable again: limits are enforced")
        return quotas

    @staticmethod
    def _count(windows: MemoryWindows, kind: str, identity: str, item: RateLimitItem) -> Quota:
        key, _, end = _window(kind, identity, item)
        count = windows.incr(key, end, time.time())
        return _quota(kind, item, count, end)

    def _failed(self, exc: BaseException) -> None:
        self._down_until = time.monotonic() + RETRY_SECONDS
        log.warning(
            "rate limit storage unreachable (%s: %s): requests pass unlimited; retrying in %.0f s",
            type(exc).__name__,
            exc,
            RETRY_SECONDS,
        )

    async def close(self) -> None:
        if self._close is not None:
            await self._close()


def _window(kind: str, identity: str, item: RateLimitItem) -> tuple[str, int, float]:
    """The key of the limit's current window, its length in seconds, and when it ends (Unix
    time)."""
    expiry = item.get_expiry()
    window = int(time.time() // expiry)
    return f"{kind}/{identity}/{item.amount}/{expiry}/{window}", expiry, (window + 1) * expiry


def _quota(kind: str, item: RateLimitItem, count: int, end: float) -> Quota:
    remaining = item.amount - count
    return Quota(WHO[kind], item, max(0, remaining), end, remaining < 0)


@dataclass
class RequestLimits:
    """One request's limits, kept on its ASGI scope: the tightest quota so far goes out in the
    headers of whatever response the request gets."""

    limiter: Limiter
    tightest: Quota | None = field(default=None)
    shown: Quota | None = field(default=None)  # reported instead of the tightest, when set

    async def check(
        self, kind: str, identity: str, items: tuple[RateLimitItem, ...], *, show: bool = False
    ) -> None:
        """Count the request; RateLimited if it is over the limit. With ``show``, this limit is
        the one the headers report (a dialect's own limit, as its clients expect to see)."""
        quota = await self.limiter.hit(kind, identity, items)
        if quota is None:
            return
        if show:
            self.shown = quota
        if self.tightest is None or quota.rank() < self.tightest.rank():
            self.tightest = quota
        if quota.exceeded:
            raise quota.refusal(time.time())

    def headers(self) -> list[tuple[bytes, bytes]]:
        quota = self.shown or self.tightest
        if quota is None:
            return []
        reset_in = str(quota.retry_after(time.time())).encode()
        limit, remaining = str(quota.item.amount).encode(), str(quota.remaining).encode()
        return [
            (b"ratelimit-limit", limit),
            (b"ratelimit-remaining", remaining),
            (b"ratelimit-reset", reset_in),
            (b"x-ratelimit-limit", limit),
            (b"x-ratelimit-remaining", remaining),
            (b"x-ratelimit-reset", str(math.ceil(quota.reset)).encode()),
        ]


def client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


async def check_ip(scope: Scope) -> None:
    """Count a request against its client IP's limit (at the edge, before anything else)."""
    limits: RequestLimits = scope[SCOPE_KEY]
    await limits.check("ip", client_ip(scope), limits.limiter.per_ip)


async def check_group(
    scope: Scope, key_id: str, group: str, items: tuple[RateLimitItem, ...]
) -> None:
    """Count a request against its key's limit for one group of endpoints (the VideoGen API's
    hourly limits per endpoint group), the limit its headers then report; nothing on a request
    the edge does not limit."""
    limits: RequestLimits | None = scope.get(SCOPE_KEY)
    if limits is not None:
        await limits.check("group", f"{key_id}/{group}", items, show=True)


async def check_key(scope: Scope, key_id: str, account_limit: str | None) -> None:
    """Count a request against its API key's limit (right after authentication); nothing on a
    request the edge does not limit."""
    limits: RequestLimits | None = scope.get(SCOPE_KEY)
    if limits is not None:
        await limits.check("key", key_id, limits.limiter.key_limits(account_limit))


async def check_signin(limiter: Limiter, scope: Scope, email: str) -> None:
    """Count a dashboard sign-in attempt against its client IP's and its email's limits
    (``HATCHERY_DASHBOARD_SIGNIN_LIMIT`` each); RateLimited when either is over."""
    limits = RequestLimits(limiter)  # the page's own: no rate limit headers on a page
    await limits.check("signin-ip", client_ip(scope), limiter.signin)
    await limits.check("signin-email", email.strip().lower(), limiter.signin)
