"""How late the process's event loop runs: every 100 ms it asks to wake up, and how much later than
asked it did is the lag every request and task in the process suffers. Each sample goes to the
metrics (``hatchery_event_loop_lag_seconds``); in a worker, while tasks are in flight, a line every
10 s reports the lag (p50, p99, max) beside the tasks running and waiting on upstreams."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from hatchery.observe import metrics

log = logging.getLogger("hatchery.worker")

TICK = 0.1


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


class LoopWatch:
    def __init__(
        self, load: Callable[[], tuple[int, int]] = lambda: (0, 0), every: float = 10.0
    ) -> None:
        self.load = load  # () -> (tasks in flight, of which waiting on an upstream)
        self.every = every

    async def run(self) -> None:
        samples: list[float] = []
        started = time.monotonic()
        while True:
            asked = time.monotonic()
            await asyncio.sleep(TICK)
            lag = max(0.0, time.monotonic() - asked - TICK)
            samples.append(lag)
            metrics.loop_lag(lag)
            if time.monotonic() - started >= self.every:
                self.report(samples)
                samples, started = [], time.monotonic()

    def report(self, samples: list[float]) -> None:
        in_flight, waiting = self.load()
        if not in_flight:
            return
        log.info(
            "%d task(s) in flight (%d waiting on upstreams); event loop lag "
            "p50 %.1f ms, p99 %.1f ms, max %.1f ms",
            in_flight,
            waiting,
            percentile(samples, 0.5) * 1000,
            percentile(samples, 0.99) * 1000,
            max(samples, default=0.0) * 1000,
        )
