"""Observability end to end, on PostgreSQL with two processes: an API (``serve --workers 0``) and
a ``hatchery worker`` with its own metrics port, both logging JSON and sending traces to an
OTLP collector in this process.

A scripted workload (tasks that complete, tasks the deny-list fails, tasks cancelled while
pending, webhooks to a receiver that takes some and refuses others) runs to its end; then what
the two processes' metrics count, summed, equals what the database says happened; their log
lines parse and carry the ids; and one task's trace joins the API's request span, the worker's
spans and the webhook's delivery.
"""

from __future__ import annotations

import json
import socket
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import LocalHTTPServer, ServerProcess, free_port, local_account, query
from tests.otlp_collector import OtlpCollector, Span
from tests.pg import PostgresServer

pytestmark = pytest.mark.slow

COMPLETING, DENIED, CANCELLED = 8, 3, 2
REFUSED = len([i for i in range(1, COMPLETING) if i % 2 == 0])  # their webhooks go to /refuse
CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_PARENT = "00f067aa0ba902b7"


@pytest.fixture
def collector() -> Iterator[OtlpCollector]:
    server = OtlpCollector()
    yield server
    server.close()


Samples = Counter[tuple[str, frozenset[tuple[str, str]]]]


def scrape(url: str) -> Samples:
    """Every sample of a /metrics page, by name and labels."""
    text = httpx.get(url, timeout=10).raise_for_status().text
    samples: Samples = Counter()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[s.name, frozenset(s.labels.items())] += s.value
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``; there must be one (a zero
    is then a value the process reported, not a series it lacks)."""
    wanted = set(labels.items())
    found = [v for (n, ls), v in samples.items() if n == name and wanted <= ls]
    assert found, f"no sample of {name} with {labels}"
    return sum(found)


def wait_until(check: Any, timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def settled(url: str) -> bool:
    """Every task ended and every webhook message delivered or given up."""
    busy = query(
        url,
        "SELECT (SELECT count(*) FROM tasks WHERE status IN ('pending', 'processing')) + "
        "(SELECT count(*) FROM webhook_deliveries WHERE status = 'pending')",
    )
    return int(busy[0][0]) == 0


def submit(client: httpx.Client, prompt: str, hook: str, **headers: str) -> str:
    body = {"model": "nanobanana", "prompt": prompt, "webhook_url": hook}
    response = client.post("/v1/generate", json=body, headers=headers)
    assert response.status_code == 202, response.text
    return str(response.json()["data"]["id"])


def workload(api: ServerProcess, key: str, receiver: LocalHTTPServer) -> dict[str, list[str]]:
    """Tasks queued while no worker runs: some to complete (one with the client's own trace
    context), some the deny-list fails, some cancelled while still pending."""
    ids: dict[str, list[str]] = {"completing": [], "denied": [], "cancelled": []}
    with api.client(key=key) as client:
        traced = f"00-{CLIENT_TRACE}-{CLIENT_PARENT}-01"
        ids["completing"].append(submit(client, "fox 0", receiver.url("/ok"), traceparent=traced))
        ids["completing"] += [
            submit(client, f"fox {i}", receiver.url("/ok" if i % 2 else "/refuse"))
            for i in range(1, COMPLETING)
        ]
        ids["denied"] = [
            submit(client, f"forbidden {i}", receiver.url("/ok")) for i in range(DENIED)
        ]
        ids["cancelled"] = [
            submit(client, f"cancel {i}", receiver.url("/ok")) for i in range(CANCELLED)
        ]
        for task_id in ids["cancelled"]:
            assert client.post(f"/v1/tasks/{task_id}/cancel").status_code == 200
        assert client.get("/v1/tasks/gen_doesnotexist").status_code == 404
    return ids


@pytest.mark.timeout(240)
def test_two_processes_metrics_logs_and_traces_agree_with_the_database(
    postgres: PostgresServer,
    receiver: LocalHTTPServer,
    collector: OtlpCollector,
    tmp_path: Path,
) -> None:
    url = postgres.create_database("observability")
    key = local_account(url)
    query(url, "UPDATE accounts SET balance_micros = 100000000")
    receiver.respond = lambda path, method: (500 if path == "/refuse" else 200, {}, b"")
    denylist = tmp_path / "deny.txt"
    denylist.write_text("forbidden\n")
    common = {
        "HATCHERY_LOG_FORMAT": "json",
        "HATCHERY_OTLP_ENDPOINT": collector.endpoint,
        "HATCHERY_MODERATION_DENYLIST": str(denylist),
        "HATCHERY_WEBHOOK_MAX_RETRIES": "1",  # /refuse: two attempts, then given up
        "HATCHERY_METRICS_REFRESH": "0.2",
    }
    api = ServerProcess(
        tmp_path / "api",
        {**common, "HATCHERY_WORKERS": "0", "HATCHERY_LOG_LEVEL": "debug"},
        database_url=url,
    )
    port = free_port()
    worker = ServerProcess(
        tmp_path / "worker",
        {**common, "HATCHERY_METRICS_PORT": str(port), "HATCHERY_LOG_LEVEL": "info"},
        database_url=url,
        command=("worker", "--concurrency", "4"),
    )
    worker_metrics = f"http://127.0.0.1:{port}/metrics"
    try:
        api.start()
        ids = workload(api, key, receiver)
        worker.start(wait=False)
        wait_until(lambda: settled(url), what="the tasks and their webhooks")
        wait_until(
            lambda: (
                ("hatchery_workers_alive", frozenset()) in (page := scrape(api.url + "/metrics"))
                and total(page, "hatchery_workers_alive") == 1
            ),
            what="the worker's heartbeat in the API's gauges",
        )
        api_alone, worker_alone = scrape(api.url + "/metrics"), scrape(worker_metrics)
    finally:
        worker.stop()
        api.stop()  # both flush their spans as they stop

    check_counters(url, api_alone, worker_alone)
    check_logs(api, worker, ids)
    check_trace(url, collector.spans(), ids["completing"][0])


def check_counters(url: str, api_alone: Samples, worker_alone: Samples) -> None:
    scraped = api_alone + worker_alone  # the two processes' counts, summed
    statuses = dict(query(url, "SELECT status, count(*) FROM tasks GROUP BY status"))
    assert statuses == {"completed": COMPLETING, "failed": DENIED, "cancelled": CANCELLED}
    submitted = sum(statuses.values())
    assert total(scraped, "hatchery_tasks_submitted_total") == submitted
    for outcome, count in statuses.items():
        assert total(scraped, "hatchery_tasks_ended_total", outcome=outcome) == count, outcome
    assert total(scraped, "hatchery_tasks_ended_total", provider="local") == COMPLETING
    assert total(scraped, "hatchery_tasks_ended_total", provider="") == DENIED + CANCELLED
    assert total(scraped, "hatchery_task_queue_wait_seconds_count") == COMPLETING + DENIED
    assert total(scraped, "hatchery_provider_attempts_total", outcome="completed") == COMPLETING
    # The webhooks: every attempt the database recorded, by how it ended.
    attempts = int(query(url, "SELECT count(*) FROM webhook_attempts")[0][0])
    by_status = dict(query(url, "SELECT status, count(*) FROM webhook_deliveries GROUP BY status"))
    assert by_status == {"delivered": submitted - REFUSED, "failed": REFUSED}
    assert total(scraped, "hatchery_webhook_attempts_total") == attempts
    assert attempts == by_status["delivered"] + 2 * by_status["failed"]
    for status, count in by_status.items():
        assert total(scraped, "hatchery_webhook_attempts_total", outcome=status) == count
    assert total(scraped, "hatchery_webhook_delivery_lag_seconds_count") == by_status["delivered"]
    # The API answered what it was asked, by route template; the queue is empty.
    generate = {"route": "/v1/generate", "method": "POST", "status": "202"}
    assert total(api_alone, "hatchery_http_requests_total", **generate) == submitted
    missing = {"route": "/v1/tasks/{task_id}", "method": "GET", "status": "404"}
    assert total(api_alone, "hatchery_http_requests_total", **missing) == 1
    cancel = {"route": "/v1/tasks/{task_id}/cancel", "status": "200"}
    assert total(api_alone, "hatchery_http_requests_total", **cancel) == CANCELLED
    assert total(api_alone, "hatchery_queue_tasks", status="pending") == 0
    assert total(api_alone, "hatchery_webhook_backlog_messages") == 0
    # The worker's provider calls, breakers and load; both processes' loops and transactions.
    local_submits = {"provider": "local", "operation": "submit", "outcome": "ok"}
    assert total(scraped, "hatchery_upstream_calls_total", **local_submits) == COMPLETING
    for gauge, labels in (
        ("hatchery_breaker_state", {"provider": "local"}),
        ("hatchery_tasks_in_flight", {"state": "running"}),
    ):
        key = (gauge, frozenset(labels.items()))
        assert key in worker_alone and worker_alone[key] == 0, gauge  # closed; nothing running
    for alone in (api_alone, worker_alone):
        assert total(alone, "hatchery_event_loop_lag_seconds_count") > 0
        assert total(alone, "hatchery_db_transaction_duration_seconds_count", kind="write") > 0


def json_lines(proc: ServerProcess) -> list[dict[str, Any]]:
    """Every line of the process's output, each a JSON object (one that is not fails)."""
    lines = [line for line in proc.output if line.strip()]
    assert lines, "no log lines"
    return [json.loads(line) for line in lines if not line.startswith(("Created", "  ", "Try"))]


def check_logs(api: ServerProcess, worker: ServerProcess, ids: dict[str, list[str]]) -> None:
    first = ids["completing"][0]
    queued = [
        line
        for line in json_lines(api)
        if line.get("task_id") == first and line["message"].startswith("task ")
    ]
    assert queued, "the API logged nothing about the task"
    assert {"request_id", "account_id", "trace_id", "time", "level"} <= set(queued[0])
    worker_lines = json_lines(worker)
    done = [line for line in worker_lines if "completed by" in line["message"]]
    assert sorted(line["task_id"] for line in done) == sorted(ids["completing"])
    assert all(line["provider"] == "local" and line["account_id"] for line in done)
    assert {line["trace_id"] for line in done if line["task_id"] == first} == {CLIENT_TRACE}
    refused = [line for line in worker_lines if line["logger"] == "hatchery.webhooks"]
    assert refused and all(line["task_id"] in ids["completing"] for line in refused)


def check_trace(url: str, spans: list[Span], task_id: str, role: str | None = None) -> None:
    """The task's trace: the client's context, the API's request span (the task stores it),
    the claim and run in the worker, the provider call, the output stored, the webhook sent."""
    stored = query(url, "SELECT trace_context FROM tasks WHERE id = :id", id=task_id)[0][0]
    _, trace_id, submit_span, _ = stored.split("-")
    assert trace_id == CLIENT_TRACE
    trace = {s.span_id: s for s in spans if s.trace_id == trace_id}
    request = trace[submit_span]
    assert request.name == "POST /v1/generate" and request.kind == "server"
    assert request.parent_span_id == CLIENT_PARENT
    assert request.resource["hatchery.role"] == (role or "api")
    assert request.attributes["http.response.status_code"] == 202
    by_name = {s.name: s for s in trace.values()}
    run = by_name["task.run"]
    assert run.parent_span_id == submit_span and run.resource["hatchery.role"] == (role or "worker")
    assert run.attributes["hatchery.task_id"] == task_id
    assert by_name["queue.claim"].parent_span_id == submit_span
    assert by_name["provider.submit"].parent_span_id == run.span_id
    assert by_name["provider.submit"].attributes["hatchery.provider"] == "local"
    stored_output = by_name["storage.put"]
    assert trace[stored_output.parent_span_id].name == "task.run"
    assert stored_output.attributes["hatchery.storage.key"].startswith("outputs/…/")
    delivery = by_name["webhook.deliver"]
    assert delivery.parent_span_id == run.span_id and delivery.kind == "client"
    assert not any(s.error for s in trace.values())


def test_embedded_sqlite_server_traces_a_task_from_submit_to_webhook(
    receiver: LocalHTTPServer, collector: OtlpCollector, tmp_path: Path
) -> None:
    """``hatchery serve`` on SQLite, one process: the same trace (there, the transaction that
    ends a task runs in the SQLite writer's own asyncio task, not the worker's)."""
    server = ServerProcess(tmp_path / "embedded", {"HATCHERY_OTLP_ENDPOINT": collector.endpoint})
    try:
        server.start()
        assert server.key is not None
        with server.client(key=server.key) as client:
            traced = f"00-{CLIENT_TRACE}-{CLIENT_PARENT}-01"
            task_id = submit(client, "a fox", receiver.url("/ok"), traceparent=traced)
            receiver.wait_for(1, path="/ok")
            wait_until(lambda: settled(server.db_url), what="the task and its webhook")
            assert client.get(f"/v1/tasks/{task_id}").status_code == 200  # same connection
    finally:
        server.stop()
    spans = collector.spans()
    check_trace(server.db_url, spans, task_id, role="server")
    # A request without a traceparent starts a trace of its own, whatever came before it.
    (poll,) = [s for s in spans if s.name == "GET /v1/tasks/{task_id}"]
    assert poll.parent_span_id == "" and poll.trace_id != CLIENT_TRACE
    # No span says a file's token (all that guards its URL).
    token = query(server.db_url, "SELECT file_token FROM tasks")[0][0]
    assert not any(token in str(v) for s in spans for v in s.attributes.values())


def test_a_worker_whose_metrics_port_is_taken_logs_it_and_works(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        worker = ServerProcess(
            tmp_path / "worker",
            {"HATCHERY_METRICS_PORT": str(port), "HATCHERY_LOG_LEVEL": "info"},
            command=("worker", "--concurrency", "1"),
        )
        try:
            worker.start(wait=False)
            wait_until(
                lambda: any("worker " in line and "running" in line for line in worker.output),
                what="the worker to start",
            )
            wait_until(
                lambda: bool(worker.query("SELECT count(*) FROM workers")[0][0]),
                what="its heartbeat",
            )
            assert worker.proc is not None and worker.proc.poll() is None
        finally:
            worker.stop()
    refused = [line for line in worker.output if "no metrics: cannot listen on" in line]
    assert refused and f":{port} " in refused[0] and "ERROR" in refused[0]
