"""Tests for hatchery.observe.scrape (who may scrape, the worker's metrics server on a real socket)
and the counting helpers of hatchery.observe.metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from tests import task_factory

from hatchery.domain.tasks import Task, TaskStatus, TaskType, new_task_id
from hatchery.observe import metrics
from hatchery.observe.metrics import REGISTRY, Live
from hatchery.observe.scrape import CONTENT_TYPE
from hatchery.observe.server import MetricsServer, authorized

BODY = b"# HELP test_metric A test.\n# TYPE test_metric gauge\ntest_metric 1.0\n"
TOKEN = "s3cret-token"


# ---------------------------------------------------------------- authorized


def test_without_a_token_every_scrape_is_allowed() -> None:
    assert authorized("", None)
    assert authorized("", "")
    assert authorized("", "Bearer anything")


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", "Bearer wrong", f"Bearer {TOKEN}x", f"Basic {TOKEN}"],
)
def test_with_a_token_other_headers_are_refused(header: str | None) -> None:
    assert not authorized(TOKEN, header)


@pytest.mark.parametrize("header", [f"Bearer {TOKEN}", f"bearer {TOKEN}", f"BEARER {TOKEN}"])
def test_with_a_token_the_bearer_token_is_allowed(header: str) -> None:
    assert authorized(TOKEN, header)


def test_with_a_token_the_bare_token_without_the_bearer_scheme_is_refused() -> None:
    assert not authorized(TOKEN, TOKEN)


# ---------------------------------------------------------------- MetricsServer


async def render() -> bytes:
    return BODY


@pytest.fixture
async def server() -> AsyncIterator[MetricsServer]:
    started = MetricsServer(render, "127.0.0.1", 0)
    await started.start()
    yield started
    await started.stop()


@pytest.fixture
async def guarded() -> AsyncIterator[MetricsServer]:
    started = MetricsServer(render, "127.0.0.1", 0, token=TOKEN)
    await started.start()
    yield started
    await started.stop()


def client(server: MetricsServer) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", trust_env=False)


async def test_the_server_takes_a_port_of_its_own(server: MetricsServer) -> None:
    assert server.port != 0


async def test_get_metrics_answers_the_rendered_body(server: MetricsServer) -> None:
    async with client(server) as http:
        response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.content == BODY
    assert response.headers["content-type"] == CONTENT_TYPE
    assert response.headers["content-length"] == str(len(BODY))


async def test_a_query_string_is_ignored(server: MetricsServer) -> None:
    async with client(server) as http:
        response = await http.get("/metrics?name[]=x")
    assert response.status_code == 200
    assert response.content == BODY


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/other"), ("GET", "/"), ("POST", "/metrics")]
)
async def test_anything_else_is_not_found(server: MetricsServer, method: str, path: str) -> None:
    async with client(server) as http:
        response = await http.request(method, path)
    assert response.status_code == 404
    assert response.content != BODY
    assert response.headers["content-type"].startswith("text/plain")


async def test_with_a_token_a_scrape_without_it_is_refused(guarded: MetricsServer) -> None:
    async with client(guarded) as http:
        missing = await http.get("/metrics")
        wrong = await http.get("/metrics", headers={"Authorization": "Bearer nope"})
    for response in (missing, wrong):
        assert response.status_code == 401
        assert response.content != BODY


async def test_with_a_token_a_scrape_with_it_is_answered(guarded: MetricsServer) -> None:
    async with client(guarded) as http:
        response = await http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response.content == BODY


async def test_a_client_that_stops_mid_request_does_not_break_the_server(
    server: MetricsServer,
) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # no blank line: unfinished
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    async with client(server) as http:
        response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.content == BODY


async def test_an_endless_request_head_is_cut_off(server: MetricsServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(b"GET /metrics HTTP/1.1\r\nX-Long: " + b"a" * 200_000)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 5)  # closed, before its 10 s read timeout
    except ConnectionResetError:
        answer = b""
    finally:
        writer.close()
    assert answer == b""
    async with client(server) as http:
        assert (await http.get("/metrics")).status_code == 200


async def test_stop_closes_the_port() -> None:
    started = MetricsServer(render, "127.0.0.1", 0)
    await started.start()
    await started.stop()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", started.port)


async def test_a_render_that_fails_is_answered_500_and_the_server_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = 0

    async def flaky() -> bytes:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a reading broke")
        return BODY

    started = MetricsServer(flaky, "127.0.0.1", 0)
    await started.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{started.port}") as http:
            failed = await http.get("/metrics")
            assert failed.status_code == 500
            assert "rendering the metrics failed" in caplog.text
            assert (await http.get("/metrics")).content == BODY
    finally:
        await started.stop()


# ---------------------------------------------------------------- metrics helpers

NOW = datetime(2026, 5, 8, 10, 30, 0, tzinfo=UTC)


def make_task(**changes: Any) -> Task:
    defaults = {"id": new_task_id(), "model": "test-model", "created_at": NOW}
    return task_factory.make_task(**(defaults | changes))


def sample(name: str, **labels: str) -> float:
    """A sample's value in the process's registry (0 when it does not exist yet)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def ended(model: str, provider: str, outcome: str) -> float:
    return sample("hatchery_tasks_ended_total", model=model, provider=provider, outcome=outcome)


def test_a_completed_task_is_counted_under_the_provider_of_its_usage() -> None:
    task = make_task(
        model="m-completed",
        status=TaskStatus.COMPLETED,
        usage={"provider": "fal", "attempts": [{"provider": "replicate"}, {"provider": "fal"}]},
        started_at=NOW,
        completed_at=NOW + timedelta(seconds=7),
    )
    before = ended("m-completed", "fal", "completed")
    runs = sample("hatchery_task_run_seconds_count", model="m-completed", outcome="completed")
    ran = sample("hatchery_task_run_seconds_sum", model="m-completed", outcome="completed")
    metrics.task_ended(task)
    assert ended("m-completed", "fal", "completed") == before + 1
    assert ended("m-completed", "replicate", "completed") == 0
    assert sample("hatchery_task_run_seconds_count", model="m-completed", outcome="completed") == (
        runs + 1
    )
    assert sample(
        "hatchery_task_run_seconds_sum", model="m-completed", outcome="completed"
    ) == pytest.approx(ran + 7)


def test_a_failed_task_is_counted_under_the_last_provider_tried() -> None:
    task = make_task(
        model="m-failed",
        status=TaskStatus.FAILED,
        usage={"attempts": [{"provider": "gemini"}, {"provider": "fal"}]},
        started_at=NOW,
        completed_at=NOW + timedelta(seconds=2),
    )
    before = ended("m-failed", "fal", "failed")
    metrics.task_ended(task)
    assert ended("m-failed", "fal", "failed") == before + 1
    assert ended("m-failed", "gemini", "failed") == 0


def test_a_task_cancelled_before_any_provider_is_counted_under_no_provider() -> None:
    task = make_task(model="m-cancelled", status=TaskStatus.CANCELLED, completed_at=NOW)
    before = ended("m-cancelled", "", "cancelled")
    runs = sample("hatchery_task_run_seconds_count", model="m-cancelled", outcome="cancelled")
    metrics.task_ended(task)
    assert ended("m-cancelled", "", "cancelled") == before + 1
    # never started: no run time
    assert (
        sample("hatchery_task_run_seconds_count", model="m-cancelled", outcome="cancelled") == runs
    )


@pytest.mark.parametrize("status", [TaskStatus.PENDING, TaskStatus.PROCESSING])
def test_a_task_that_has_not_ended_is_not_counted(status: TaskStatus) -> None:
    task = make_task(model="m-open", status=status, usage={"provider": "fal"})
    metrics.task_ended(task)
    for outcome in ("completed", "failed", "cancelled"):
        for provider in ("", "fal"):
            assert ended("m-open", provider, outcome) == 0


@pytest.mark.parametrize(
    ("usage", "upstream", "provider"),
    [
        ({"provider": "fal", "attempts": [{"provider": "gemini"}]}, None, "fal"),
        ({"attempts": [{"provider": "gemini"}, {"provider": "fal"}]}, None, "fal"),
        ({"provider": "", "attempts": [{"provider": "gemini"}]}, None, "gemini"),
        (None, {"attempts": [{"provider": "replicate"}]}, "replicate"),
        ({"attempts": [{"provider": "a"}]}, {"attempts": [{"provider": "b"}]}, "a"),
        ({}, {}, ""),
        (None, None, ""),
        ({"attempts": []}, None, ""),
        ({"attempts": [{"outcome": "failed"}]}, None, ""),
    ],
)
def test_last_provider(
    usage: dict[str, Any] | None, upstream: dict[str, Any] | None, provider: str
) -> None:
    assert metrics.last_provider(make_task(usage=usage, upstream=upstream)) == provider


def test_task_submitted_counts_by_model_and_type() -> None:
    labels = {"model": "m-submitted", "type": TaskType.VIDEO.value}
    before = sample("hatchery_tasks_submitted_total", **labels)
    metrics.task_submitted(make_task(model="m-submitted", type=TaskType.VIDEO))
    assert sample("hatchery_tasks_submitted_total", **labels) == before + 1


def test_the_queue_wait_is_observed_on_the_first_claim_only() -> None:
    count = "hatchery_task_queue_wait_seconds_count"
    total = "hatchery_task_queue_wait_seconds_sum"
    before = sample(count, model="m-claimed"), sample(total, model="m-claimed")
    first = make_task(model="m-claimed", attempt=1, started_at=NOW + timedelta(seconds=3))
    metrics.task_claimed(first)
    assert sample(count, model="m-claimed") == before[0] + 1
    assert sample(total, model="m-claimed") == pytest.approx(before[1] + 3)
    metrics.task_claimed(
        make_task(model="m-claimed", attempt=2, started_at=NOW + timedelta(seconds=50))
    )
    assert sample(count, model="m-claimed") == before[0] + 1


def test_http_requests_are_counted_and_timed_by_their_labels() -> None:
    route, method = "/v1/test/{thing_id}", "GET"
    ok = {"route": route, "method": method, "status": "200"}
    before = sample("hatchery_http_requests_total", **ok)
    missing = {"route": route, "method": method, "status": "404"}
    before_missing = sample("hatchery_http_requests_total", **missing)
    timed = sample("hatchery_http_request_duration_seconds_count", route=route, method=method)
    metrics.http_request(route, method, 200, 0.01)
    metrics.http_request(route, method, 200, 0.02)
    metrics.http_request(route, method, 404, 0.03)
    assert sample("hatchery_http_requests_total", **ok) == before + 2
    assert sample("hatchery_http_requests_total", **missing) == before_missing + 1
    assert sample("hatchery_http_requests_total", route=route, method="POST", status="200") == 0
    assert (
        sample("hatchery_http_request_duration_seconds_count", route=route, method=method)
        == timed + 3
    )


def test_upstream_calls_and_webhook_attempts_are_counted() -> None:
    ok = {"provider": "p-test", "operation": "poll", "outcome": "ok"}
    error = {**ok, "outcome": "error"}
    before = (
        sample("hatchery_upstream_calls_total", **ok),
        sample("hatchery_upstream_calls_total", **error),
    )
    metrics.upstream_call("p-test", "poll", True, 0.1)
    metrics.upstream_call("p-test", "poll", False, 0.1)
    metrics.upstream_call("p-test", "poll", False, 0.1)
    assert sample("hatchery_upstream_calls_total", **ok) == before[0] + 1
    assert sample("hatchery_upstream_calls_total", **error) == before[1] + 2
    lag = sample("hatchery_webhook_delivery_lag_seconds_count", receiver="endpoint")
    delivered = sample("hatchery_webhook_attempts_total", receiver="endpoint", outcome="delivered")
    metrics.webhook_attempt("endpoint", "delivered", 1.5)
    metrics.webhook_attempt("endpoint", "retrying", None)
    assert (
        sample("hatchery_webhook_attempts_total", receiver="endpoint", outcome="delivered")
        == delivered + 1
    )
    assert sample("hatchery_webhook_delivery_lag_seconds_count", receiver="endpoint") == lag + 1


# ---------------------------------------------------------------- Live


def test_live_reports_what_is_watched_until_it_is_unwatched() -> None:
    registry = CollectorRegistry()
    live = Live("test_live_things", "Things, by state.", "state")
    registry.register(live)

    def running() -> Iterable[tuple[str, float]]:
        return [("running", 3), ("waiting", 1)]

    def more() -> Iterable[tuple[str, float]]:
        return [("idle", 5)]

    assert registry.get_sample_value("test_live_things", {"state": "running"}) is None
    unwatch = live.watch(running)
    unwatch_more = live.watch(more)
    assert registry.get_sample_value("test_live_things", {"state": "running"}) == 3
    assert registry.get_sample_value("test_live_things", {"state": "waiting"}) == 1
    assert registry.get_sample_value("test_live_things", {"state": "idle"}) == 5
    unwatch()
    assert registry.get_sample_value("test_live_things", {"state": "running"}) is None
    assert registry.get_sample_value("test_live_things", {"state": "waiting"}) is None
    assert registry.get_sample_value("test_live_things", {"state": "idle"}) == 5
    unwatch_more()
    assert registry.get_sample_value("test_live_things", {"state": "idle"}) is None


def test_live_readings_are_read_at_each_collection() -> None:
    registry = CollectorRegistry()
    live = Live("test_live_changing", "Changing.", "state")
    registry.register(live)
    held = {"running": 1.0}
    unwatch = live.watch(lambda: list(held.items()))
    try:
        assert registry.get_sample_value("test_live_changing", {"state": "running"}) == 1
        held["running"] = 4.0
        assert registry.get_sample_value("test_live_changing", {"state": "running"}) == 4
    finally:
        unwatch()


def test_the_in_flight_gauge_is_in_the_process_registry() -> None:
    unwatch = metrics.IN_FLIGHT.watch(lambda: [("running", 2), ("waiting", 7)])
    try:
        assert REGISTRY.get_sample_value("hatchery_tasks_in_flight", {"state": "running"}) == 2
        assert REGISTRY.get_sample_value("hatchery_tasks_in_flight", {"state": "waiting"}) == 7
    finally:
        unwatch()
    assert REGISTRY.get_sample_value("hatchery_tasks_in_flight", {"state": "running"}) is None
