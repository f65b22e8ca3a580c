"""The process's Prometheus metrics, in a registry of its own (``REGISTRY``), and the calls the
engine makes to count and time what it does.

Counters and histograms count what this process did: a deployment of several processes sums them
(``sum by (...)``). The gauges of ``scrape.SystemGauges`` describe the whole system (the queue,
the outbox, the workers alive) and are the same in every process: aggregate them with ``max``.
``docs/observability.md`` lists every metric and its labels.

Label values are bounded: a route is its template (``/v1/tasks/{task_id}``), never a path; a model
or provider is a catalog name; an outcome is one of a few words.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
    Info,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from hatchery import __version__
from hatchery.domain.tasks import Task, TaskStatus

# No *_created samples: they double the lines of a scrape, and nothing here reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]
REGISTRY = CollectorRegistry(auto_describe=True)
for _default in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    REGISTRY.register(_default)

# Requests (a waiting one lasts up to a minute) and upstream calls (a synchronous provider's
# submit is the whole generation).
FAST = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
)
SLOW = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
LAG = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 86400.0)
TINY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

BUILD = Info("hatchery_build", "The running version of Hatchery.", registry=REGISTRY)
BUILD.info({"version": __version__})
HTTP_REQUESTS = Counter(
    "hatchery_http_requests",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "hatchery_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response, by route template and method.",
    ["route", "method"],
    buckets=FAST,
    registry=REGISTRY,
)
TASKS_SUBMITTED = Counter(
    "hatchery_tasks_submitted",
    "Tasks queued by this process, by model and type.",
    ["model", "type"],
    registry=REGISTRY,
)
TASKS_ENDED = Counter(
    "hatchery_tasks_ended",
    "Tasks this process ended, by model, the provider that ran it last and outcome "
    "(completed, failed, cancelled).",
    ["model", "provider", "outcome"],
    registry=REGISTRY,
)
QUEUE_WAIT = Histogram(
    "hatchery_task_queue_wait_seconds",
    "Time from a task's submit to its first claim, by model.",
    ["model"],
    buckets=SLOW,
    registry=REGISTRY,
)
RUN_TIME = Histogram(
    "hatchery_task_run_seconds",
    "Time from a task's first claim to its end (retries included), by model and outcome.",
    ["model", "outcome"],
    buckets=SLOW,
    registry=REGISTRY,
)
PROVIDER_ATTEMPTS = Counter(
    "hatchery_provider_attempts",
    "Tries of one task at one provider, by provider and outcome (completed, failed, refused, "
    "skipped by an open breaker).",
    ["provider", "outcome"],
    registry=REGISTRY,
)
UPSTREAM_CALLS = Counter(
    "hatchery_upstream_calls",
    "Calls to a provider (submit, poll, cancel), by provider, operation and outcome (ok, error).",
    ["provider", "operation", "outcome"],
    registry=REGISTRY,
)
UPSTREAM_DURATION = Histogram(
    "hatchery_upstream_call_duration_seconds",
    "Time one call to a provider took, by provider and operation.",
    ["provider", "operation"],
    buckets=FAST,
    registry=REGISTRY,
)
WEBHOOK_ATTEMPTS = Counter(
    "hatchery_webhook_attempts",
    "Webhook delivery attempts recorded, by receiver (task_url, endpoint) and outcome "
    "(delivered, retrying, failed: given up).",
    ["receiver", "outcome"],
    registry=REGISTRY,
)
WEBHOOK_LAG = Histogram(
    "hatchery_webhook_delivery_lag_seconds",
    "Time from a webhook message's writing to its delivery, by receiver.",
    ["receiver"],
    buckets=LAG,
    registry=REGISTRY,
)
DB_TRANSACTION = Histogram(
    "hatchery_db_transaction_duration_seconds",
    "Time a database transaction took, from asking for a connection to its end, by kind: "
    "write, or read (the read transactions; not the single-statement reads of the hot path).",
    ["kind"],
    buckets=TINY,
    registry=REGISTRY,
)
LOOP_LAG = Histogram(
    "hatchery_event_loop_lag_seconds",
    "How much later than asked the event loop woke up (sampled every 100 ms).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=REGISTRY,
)
OUTCOME = {
    TaskStatus.COMPLETED: "completed",
    TaskStatus.FAILED: "failed",
    TaskStatus.CANCELLED: "cancelled",
}
DB_READ = DB_TRANSACTION.labels("read")
DB_WRITE = DB_TRANSACTION.labels("write")


class _Children:
    """A labelled metric's children by their label values: a dict read on every call instead of
    ``labels()``'s lock and checks (the request path and every upstream poll count)."""

    def __init__(self, metric: Counter | Histogram) -> None:
        self.metric = metric
        self.made: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self.made.get(values)
        if child is None:
            child = self.made[values] = self.metric.labels(*values)
        return child


_http_count = _Children(HTTP_REQUESTS)
_http_time = _Children(HTTP_DURATION)
_submitted = _Children(TASKS_SUBMITTED)
_attempts = _Children(PROVIDER_ATTEMPTS)
_calls = _Children(UPSTREAM_CALLS)
_call_time = _Children(UPSTREAM_DURATION)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def http_request(route: str, method: str, status: int, seconds: float) -> None:
    _http_count(route, method, str(status)).inc()
    _http_time(route, method).observe(seconds)


def method_of(method: str) -> str:
    """The method as a label: one of the usual, else ``other`` (a client may send any token)."""
    return method if method in METHODS else "other"


def task_submitted(task: Task) -> None:
    _submitted(task.model, task.type.value).inc()


def task_claimed(task: Task) -> None:
    """A claimed task's wait in the queue, on its first claim (a retry's wait is not a submit's)."""
    if task.attempt == 1 and task.started_at is not None:
        wait = (task.started_at - task.created_at).total_seconds()
        QUEUE_WAIT.labels(task.model).observe(max(0.0, wait))


def last_provider(task: Task) -> str:
    """The provider that completed the task, else the last one tried ("" if none was)."""
    usage = task.usage or {}
    if usage.get("provider"):
        return str(usage["provider"])
    tried = usage.get("attempts") or (task.upstream or {}).get("attempts") or []
    return str(tried[-1].get("provider") or "") if tried else ""


def task_ended(task: Task) -> None:
    """A task this process has just ended (its transaction committed)."""
    outcome = OUTCOME.get(task.status)
    if outcome is None:
        return
    TASKS_ENDED.labels(task.model, last_provider(task), outcome).inc()
    if task.started_at is not None and task.completed_at is not None:
        ran = (task.completed_at - task.started_at).total_seconds()
        RUN_TIME.labels(task.model, outcome).observe(max(0.0, ran))


def provider_attempt(provider: str, outcome: str) -> None:
    _attempts(provider, outcome).inc()


def upstream_call(provider: str, operation: str, ok: bool, seconds: float) -> None:
    _calls(provider, operation, "ok" if ok else "error").inc()
    _call_time(provider, operation).observe(seconds)


def webhook_attempt(receiver: str, outcome: str, lag: float | None) -> None:
    """One recorded attempt; ``lag`` (seconds since the message was written) when delivered."""
    WEBHOOK_ATTEMPTS.labels(receiver, outcome).inc()
    if lag is not None:
        WEBHOOK_LAG.labels(receiver).observe(max(0.0, lag))


def loop_lag(seconds: float) -> None:
    LOOP_LAG.observe(seconds)


Reading = Callable[[], Iterable[tuple[str, float]]]


class Live(Collector):
    """Gauges read from the process's own objects when scraped: what a callable registered under
    a metric's name yields, as (label value, value) pairs."""

    def __init__(self, name: str, documentation: str, label: str) -> None:
        self.name, self.documentation, self.label = name, documentation, label
        self.readings: list[Reading] = []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(self.name, self.documentation, labels=[self.label])
        for reading in self.readings:
            for value, number in reading():
                family.add_metric([value], number)
        yield family

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(self.name, self.documentation, labels=[self.label])

    def watch(self, reading: Reading) -> Callable[[], None]:
        """Report what ``reading`` yields from now on; the returned call stops it."""
        self.readings.append(reading)
        return lambda: self.readings.remove(reading)


IN_FLIGHT = Live(
    "hatchery_tasks_in_flight",
    "Tasks this worker process holds, by state (running, waiting on an upstream job).",
    "state",
)
BREAKER = Live(
    "hatchery_breaker_state",
    "A provider's circuit breaker in this process: 0 closed, 1 half-open, 2 open.",
    "provider",
)
REGISTRY.register(IN_FLIGHT)
REGISTRY.register(BREAKER)

# The whole system's gauges (``scrape.SystemGauges``): name, documentation, label (if any).
SYSTEM: dict[str, tuple[str, str | None]] = {
    "hatchery_queue_tasks": ("Tasks in the queue, by status (pending, processing).", "status"),
    "hatchery_queue_oldest_pending_age_seconds": (
        "How long the oldest pending task has waited (0 when none is pending).",
        None,
    ),
    "hatchery_webhook_backlog_messages": ("Webhook messages not yet delivered.", None),
    "hatchery_webhook_oldest_due_age_seconds": (
        "How long the most overdue webhook message has been due (0 when none is).",
        None,
    ),
    "hatchery_workers_alive": ("Worker processes whose heartbeat is fresh.", None),
}


def _exposed(name: str, kind: str) -> str:
    return f"{name}_info" if kind == "info" else name


NAMES = frozenset(
    {
        _exposed(family.name, family.type)
        for family in REGISTRY.collect()
        if family.name.startswith("hatchery_")
    }
    | set(SYSTEM)
)
"""Every ``hatchery_*`` metric family a process exposes (counters without ``_total``)."""
