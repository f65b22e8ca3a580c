"""The per-provider circuit breaker: closed, open after N failures in a row, one probe when the
cooldown is over, closed again by a success or re-opened by a failure."""

from __future__ import annotations

from hatchery.worker.gate import (
    STATS_WINDOW,
    BreakerState,
    CircuitBreaker,
    ProviderGate,
    ProviderStats,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_it_opens_after_the_threshold_of_failures_in_a_row() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=3, cooldown=30, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.failure()
    assert breaker.state is BreakerState.CLOSED
    breaker.success()  # a success in between starts the count again
    for _ in range(2):
        breaker.failure()
    assert breaker.allow()
    breaker.failure()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    assert breaker.describe() == "circuit open after 3 failures in a row; next probe in 30s"


def test_after_the_cooldown_one_probe_goes_through_and_its_success_closes_it() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=1, cooldown=30, clock=clock)
    breaker.failure()
    clock.now += 29.9
    assert not breaker.allow()
    clock.now += 0.2
    assert breaker.allow()  # the probe
    assert breaker.state is BreakerState.HALF_OPEN
    assert not breaker.allow()  # only one at a time
    breaker.success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow() and breaker.allow()


def test_a_failed_probe_opens_it_for_another_cooldown() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=5, cooldown=10, clock=clock)
    for _ in range(5):
        breaker.failure()
    clock.now += 10
    assert breaker.allow()
    breaker.failure()  # one failure is enough while half-open
    assert breaker.state is BreakerState.OPEN
    clock.now += 9
    assert not breaker.allow()
    clock.now += 1
    assert breaker.allow()


def test_a_probe_that_ends_in_neither_lets_another_probe() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=1, cooldown=1, clock=clock)
    breaker.failure()
    clock.now += 1
    assert breaker.allow()
    assert not breaker.allow()
    breaker.release()  # e.g. the probe's task was refused for its prompt
    assert breaker.allow()


def test_provider_stats_count_outcomes_and_latency_over_the_last_five_minutes() -> None:
    clock = Clock()
    stats = ProviderStats(clock)
    assert stats.summary() == {
        "completed": 0,
        "failed": 0,
        "refused": 0,
        "skipped": 0,
        "error_rate": None,
        "p50_ms": None,
        "p95_ms": None,
    }
    for seconds in (0.1, 0.2, 0.3, 0.4):
        stats.record("completed", seconds)
    stats.record("failed")
    stats.record("refused")  # the request's fault: not an error of the provider
    stats.record("skipped")
    summary = stats.summary()
    assert (summary["completed"], summary["failed"], summary["refused"]) == (4, 1, 1)
    assert summary["error_rate"] == 0.2  # 1 failed of 5 that reached it
    assert (summary["p50_ms"], summary["p95_ms"]) == (300, 400)
    clock.now += STATS_WINDOW - 1
    stats.record("failed")
    clock.now += 2  # the first seven are older than the window now
    after = stats.summary()
    assert (after["completed"], after["failed"], after["error_rate"]) == (0, 1, 1.0)


def test_a_gate_reports_its_breaker_and_figures() -> None:
    gate = ProviderGate("fal", 4, CircuitBreaker(failures=1, cooldown=30))
    gate.breaker.failure()
    gate.stats.record("failed")
    state = gate.state()
    assert (state["breaker"], state["failures_in_a_row"], state["failed"]) == ("open", 1, 1)
    assert ProviderGate.open("local").state()["breaker"] == "none"


def test_its_current_state_is_half_open_once_the_cooldown_has_passed_unasked() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=1, cooldown=30, clock=clock)
    assert breaker.current() is BreakerState.CLOSED
    breaker.failure()
    clock.now += 29
    assert breaker.current() is BreakerState.OPEN
    clock.now += 1
    assert breaker.current() is BreakerState.HALF_OPEN
    assert breaker.state is BreakerState.OPEN  # no task has asked yet
    assert breaker.allow()
    breaker.failure()
    assert breaker.current() is BreakerState.OPEN
