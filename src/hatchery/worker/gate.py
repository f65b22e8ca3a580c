"""What stands between a worker process and one upstream provider: a concurrency limit (how many
of its jobs this process keeps in flight), a circuit breaker, and the record of how its recent
attempts went (:class:`ProviderStats`, which the worker's heartbeat publishes).

The breaker is closed while the provider works. After ``failures`` retryable failures in a row
it opens, and the runner skips the provider for ``cooldown`` seconds. Then it is half-open: one
task is let through as a probe. If the upstream accepts that task the breaker closes; if it
fails again the breaker opens for another cooldown. A terminal failure (a refusal of the input) is
the request's fault, not the provider's, and counts as neither.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
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

    def current(self) -> BreakerState:
        """The state as of now: an open breaker whose cooldown has passed is half-open (it lets
        the next task probe), though it becomes so only when a task asks."""
        if self.state is BreakerState.OPEN and self.clock() - self.opened_at >= self.cooldown:
            return BreakerState.HALF_OPEN
        return self.state

    def describe(self) -> str:
        left = self.cooldown - (self.clock() - self.opened_at)
        return f"circuit open after {self.failures} failures in a row; next probe in {left:.0f}s"


OUTCOMES = ("completed", "failed", "refused", "skipped")
STATS_WINDOW = 300.0  # seconds of attempts a provider's figures cover
STATS_KEPT = 4096  # the most recent attempts kept, at most


class ProviderStats:
    """A provider's attempts over the last :data:`STATS_WINDOW` seconds: how each ended
    (``OUTCOMES``: completed, failed and so retryable, refused by the upstream as the request's
    fault, skipped by an open breaker) and how long the completed ones took."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._recent: deque[tuple[float, str, float]] = deque(maxlen=STATS_KEPT)

    def record(self, outcome: str, seconds: float = 0.0) -> None:
        self._recent.append((self.clock(), outcome, seconds))

    def summary(self) -> dict[str, int | float | None]:
        """Counts by outcome, the error rate (failed of those that reached the upstream) and
        the median and 95th percentile latency of completed attempts, in milliseconds."""
        since = self.clock() - STATS_WINDOW
        while self._recent and self._recent[0][0] < since:
            self._recent.popleft()
        counts = dict.fromkeys(OUTCOMES, 0)
        took: list[float] = []
        for _, outcome, seconds in self._recent:
            counts[outcome] += 1
            if outcome == "completed":
                took.append(seconds)
        tried = counts["completed"] + counts["failed"]
        took.sort()
        return {
            **counts,
            "error_rate": round(counts["failed"] / tried, 4) if tried else None,
            "p50_ms": _percentile(took, 0.5),
            "p95_ms": _percentile(took, 0.95),
        }


def _percentile(ordered: list[float], share: float) -> int | None:
    if not ordered:
        return None
    return round(1000 * ordered[min(len(ordered) - 1, int(share * len(ordered)))])


class ProviderGate:
    """One provider's concurrency limit and circuit breaker, shared by a process's tasks, and
    the figures of its recent attempts."""

    def __init__(self, name: str, concurrency: int, breaker: CircuitBreaker) -> None:
        self.name = name
        self.breaker = breaker
        self.limit = concurrency
        self.stats = ProviderStats()
        self._slots = asyncio.Semaphore(concurrency)

    def state(self) -> dict[str, object]:
        """What the worker's heartbeat says of the provider."""
        breaker = self.breaker
        return {
            "breaker": breaker.state.value if breaker.threshold < UNLIMITED else "none",
            "failures_in_a_row": breaker.failures,
            **self.stats.summary(),
        }

    @classmethod
    def open(cls, name: str) -> ProviderGate:
        """No limit and a breaker that never opens (``local``, and runners built without gates)."""
        return cls(name, UNLIMITED, CircuitBreaker(failures=UNLIMITED, cooldown=0))

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._slots:
            yield
