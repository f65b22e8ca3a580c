"""What stands between a worker process and one upstream provider: a concurrency limit (how many
of its jobs this process keeps in flight) and a circuit breaker.

The breaker is closed while the provider works. After ``failures`` retryable failures in a row
it opens, and the runner skips the provider for ``cooldown`` seconds. Then it is half-open: one
task is let through as a probe. If the upstream accepts that task the breaker closes; if it
fails again the breaker opens for another cooldown. A terminal failure (a refusal of the input) is
the request's fault, not the provider's, and counts as neither.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from enum import StrEnum

UNLIMITED = 2**31


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitBreaker:
    def __init__(
        self, failures: int, cooldown: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold = failures
        self.cooldown = cooldown
        self.clock = clock
        self.state = BreakerState.CLOSED
        self.failures = 0
        self.opened_at = 0.0
        self._probing = False

    def allow(self) -> bool:
        """May a task use the provider now? In half-open state, only one probe at a time."""
        if self.state is BreakerState.OPEN:
            if self.clock() - self.opened_at < self.cooldown:
                return False
            self.state = BreakerState.HALF_OPEN
            self._probing = False
        if self.state is BreakerState.HALF_OPEN:
            if self._probing:
                return False
            self._probing = True
        return True

    def success(self) -> None:
        self.state = BreakerState.CLOSED
        self.failures = 0
        self._probing = False

    def failure(self) -> None:
        self.failures += 1
        if self.state is BreakerState.HALF_OPEN or self.failures >= self.threshold:
            self.state = BreakerState.OPEN
            self.opened_at = self.clock()
            self._probing = False

    def release(self) -> None:
        """A probe that ended in neither (a terminal refusal, a cancelled task): let another."""
        self._probing = False

    def describe(self) -> str:
        left = self.cooldown - (self.clock() - self.opened_at)
        return f"circuit open after {self.failures} failures in a row; next probe in {left:.0f}s"


class ProviderGate:
    """One provider's concurrency limit and circuit breaker, shared by a process's tasks."""

    def __init__(self, name: str, concurrency: int, breaker: CircuitBreaker) -> None:
        self.name = name
        self.breaker = breaker
        self.limit = concurrency
        self._slots = asyncio.Semaphore(concurrency)

    @classmethod
    def open(cls, name: str) -> ProviderGate:
        """No limit and a breaker that never opens (``local``, and runners built without gates)."""
        return cls(name, UNLIMITED, CircuitBreaker(failures=UNLIMITED, cooldown=0))

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._slots:
            yield
