"""Task control against the real server, on SQLite and PostgreSQL: cancelling a task in each
state and racing its completion, Idempotency-Key under concurrent duplicates, ``Prefer: wait``,
and the Server-Sent Events stream (across processes, and after a reconnect)."""

from __future__ import annotations

import contextlib
import json
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from hatchery.webhooks.signing import verify
from tests.fake_upstreams import FAL_KEY, UPSTREAM_TIMEOUT, FakeFal
from tests.helpers import LocalHTTPServer, ServerProcess, wait_for_task

SMALL = {"model": "nanobanana", "prompt": "a fox"}
PRICE = 10_000  # nanobanana, one output, in micro-dollars
API_ONLY = {"HATCHERY_WORKERS": "0"}

MakeServer = Callable[..., ServerProcess]


def submit(client: httpx.Client, headers: dict[str, str] | None = None, **body: Any) -> Any:
    response = client.post("/v1/generate", json={**SMALL, **body}, headers=headers)
    assert response.status_code == 202, response.text
    return response.json()["data"]


def money(server: ServerProcess, email: str) -> tuple[int, int]:
    """The account's (balance, reserved), in micro-dollars."""
    [(balance, reserved)] = server.query(
        "SELECT balance_micros, reserved_micros FROM accounts WHERE email = :e", e=email
    )
    return int(balance), int(reserved)


def charges(server: ServerProcess, task_id: str) -> list[int]:
    rows = server.query(
        "SELECT amount_micros FROM ledger WHERE task_id = :t AND kind = 'charge'", t=task_id
    )
    return [int(r[0]) for r in rows]


def error_of(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    assert body["data"] is None
    return response.status_code, body["error"]["code"], body["error"]["message"]


@contextlib.contextmanager
def worker_for(api: ServerProcess, **settings: str) -> Iterator[ServerProcess]:
    """A ``hatchery worker`` process on the API's database: another process makes the changes."""
    worker = ServerProcess(
        api.data_dir,
        {"HATCHERY_PUBLIC_URL": api.url, **settings},
        database_url=api.database_url,
        command=("worker",),
    )
    worker.start(wait=False)
    try:
        yield worker
    finally:
        worker.stop()


def wait_until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# ---------------------------------------------------------------- cancel


def test_cancel_a_pending_task_releases_its_reservation_and_queues_its_webhook(
    make_server: MakeServer, receiver: LocalHTTPServer
) -> None:
    api = make_server(**API_ONLY)
    key = api.new_account("pending@example.com", "1.00")
    with api.client(key) as client:
        task = submit(client, webhook_url=receiver.url("/hook"))
        assert money(api, "pending@example.com") == (1_000_000, PRICE)
        response = client.post(f"/v1/tasks/{task['id']}/cancel")
        assert response.status_code == 200, response.text
        cancelled = response.json()["data"]
        assert cancelled["id"] == task["id"] and cancelled["status"] == "cancelled"
        assert cancelled["completed_at"] is not None and cancelled["cost"] == "$0.00"
        assert cancelled["started_at"] is None and cancelled["output"] is None
        assert client.get(f"/v1/tasks/{task['id']}").json()["data"] == cancelled
        listed = client.get("/v1/tasks", params={"status": "cancelled"}).json()["data"]
        assert [t["id"] for t in listed["items"]] == [task["id"]]
        assert listed["pagination"]["total"] == 1
        assert (
            client.get("/v1/tasks", params={"status": "pending"}).json()["data"]["pagination"][
                "total"
            ]
            == 0
        )
    assert money(api, "pending@example.com") == (1_000_000, 0)
    assert charges(api, task["id"]) == []
    [(event, body)] = api.query(
        "SELECT event, body FROM webhook_deliveries WHERE subject_id = :t", t=task["id"]
    )
    assert event == "task.cancelled"
    assert json.loads(body) | {"timestamp": 0} == {
        "event": "task.cancelled",
        "task_id": task["id"],
        "status": "cancelled",
        "model": "nanobanana",
        "type": "image_generate",
        "error": None,
        "cost": "0.000000",
        "timestamp": 0,
    }


@pytest.mark.usefixtures("fresh_fakes")
def test_cancel_a_processing_task_cancels_its_upstream_job_and_charges_nothing(
    make_server: MakeServer, fal: FakeFal, receiver: LocalHTTPServer
) -> None:
    api = make_server(
        HATCHERY_FAL_KEY=FAL_KEY,
        HATCHERY_FAL_BASE_URL=fal.base,
        HATCHERY_UPSTREAM_TIMEOUT=str(UPSTREAM_TIMEOUT),
        HATCHERY_UPSTREAM_POLL_MAX="0.1",
    )
    key = api.new_account("running@example.com", "1.00")
    secret = api.cli("webhook-secret", "rotate", "running@example.com").stdout.strip()
    fal.hold.set()  # the upstream job runs until released
    with api.client(key) as client:
        task_id = submit(client, webhook_url=receiver.url("/hook"))["id"]
        wait_until(
            lambda: bool(
                api.query("SELECT 1 FROM tasks WHERE CAST(upstream AS TEXT) LIKE '%request_id%'")
            )
        )
        [request_id] = list(fal.jobs)
        response = client.post(f"/v1/tasks/{task_id}/cancel")
        assert response.status_code == 200, response.text
        assert response.json()["data"]["status"] == "cancelled"
        assert fal.jobs[request_id].cancelled  # before the answer: the API cancelled it
        [hook] = receiver.wait_for(1, path="/hook")
        event = verify(hook.body, hook.headers, secret)
        assert (event["event"], event["task_id"], event["cost"]) == (
            "task.cancelled",
            task_id,
            "0.000000",
        )
        fal.hold.clear()  # the upstream would now finish: the worker must not complete the task
        time.sleep(2.5)  # more than a lease (2 s): the worker has renewed, lost it and stopped
        task = client.get(f"/v1/tasks/{task_id}").json()["data"]
        again = client.post(f"/v1/tasks/{task_id}/cancel")
    assert task["status"] == "cancelled" and task["output"] is None
    assert error_of(again)[:2] == (409, "CONFLICT") and "cancelled" in error_of(again)[2]
    assert money(api, "running@example.com") == (1_000_000, 0)
    assert charges(api, task_id) == []
    assert api.query("SELECT outcome FROM task_attempts WHERE task_id = :t", t=task_id) == [
        ("cancelled",)
    ]
    assert len(receiver.received) == 1


def test_cancel_an_ended_task_is_a_conflict_that_changes_nothing(
    make_server: MakeServer, tmp_path: Path
) -> None:
    denylist = tmp_path / "deny.txt"
    denylist.write_text("forbidden\n")
    api = make_server(HATCHERY_MODERATION_DENYLIST=str(denylist))
    key = api.new_account("ended@example.com", "1.00")
    other = api.new_account("other@example.com", "1.00")
    with api.client(key) as client:
        done = wait_for_task(client, submit(client)["id"])
        failed = wait_for_task(client, submit(client, prompt="a forbidden fox")["id"])
        assert (done["status"], failed["status"]) == ("completed", "failed")
        for task in (done, failed):
            status, code, message = error_of(client.post(f"/v1/tasks/{task['id']}/cancel"))
            assert (status, code) == (409, "CONFLICT")
            assert f"already {task['status']}" in message
            assert client.get(f"/v1/tasks/{task['id']}").json()["data"] == task
        missing = client.post("/v1/tasks/gen_doesnotexist0000/cancel")
        assert error_of(missing)[:2] == (404, "NOT_FOUND")
    with api.client(other) as client:  # someone else's task is not found, and stays as it is
        assert error_of(client.post(f"/v1/tasks/{done['id']}/cancel"))[:2] == (404, "NOT_FOUND")
    assert money(api, "ended@example.com") == (1_000_000 - PRICE, 0)
    assert charges(api, done["id"]) == [-PRICE] and charges(api, failed["id"]) == []


def test_cancels_racing_completions_end_each_task_once_and_charge_exactly(
    make_server: MakeServer,
) -> None:
    """Two workers and 2k images (a render long enough to be caught in the middle), cancels
    spread over the time the batch takes: some land on pending tasks, some on running ones,
    some after the end."""
    api = make_server(HATCHERY_WORKERS="2")
    key = api.new_account("race@example.com", "1.00")
    with api.client(key) as client:
        ids = [submit(client, resolution="2k")["id"] for _ in range(24)]

        def cancel(task_id: str) -> httpx.Response:
            time.sleep(random.uniform(0, 1.5))
            with api.client(key) as own:
                return own.post(f"/v1/tasks/{task_id}/cancel")

        with ThreadPoolExecutor(8) as pool:
            answers = dict(zip(ids, pool.map(cancel, ids), strict=True))
        final = {t: wait_for_task(client, t, until=("completed", "cancelled")) for t in ids}
    for task_id, answer in answers.items():
        if answer.status_code == 200:
            assert final[task_id]["status"] == "cancelled"
            assert charges(api, task_id) == []
        else:
            assert error_of(answer)[:2] == (409, "CONFLICT")
            assert "already completed" in error_of(answer)[2]
            assert final[task_id]["status"] == "completed"
            assert charges(api, task_id) == [-PRICE]
    completed = sum(t["status"] == "completed" for t in final.values())
    assert money(api, "race@example.com") == (1_000_000 - completed * PRICE, 0)
    [(total, done, cancelled)] = api.query(
        "SELECT total, completed, cancelled FROM task_counts c JOIN accounts a "
        "ON a.id = c.account_id WHERE a.email = 'race@example.com'"
    )
    assert (total, done, cancelled) == (24, completed, 24 - completed)


# ---------------------------------------------------------------- idempotency


def test_fifty_concurrent_submits_with_one_key_create_one_task(make_server: MakeServer) -> None:
    api = make_server(**API_ONLY)
    key = api.new_account("idem@example.com", "1.00")
    headers = {"Idempotency-Key": "order-7f3a"}

    def post(_: int) -> httpx.Response:
        with api.client(key) as client:
            return client.post("/v1/generate", json=SMALL, headers=headers)

    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(post, range(50)))
    created = [a for a in answers if a.status_code == 202]
    assert created, [a.text for a in answers]
    assert {a.json()["data"]["id"] for a in created} == {created[0].json()["data"]["id"]}
    task_id = created[0].json()["data"]["id"]
    for answer in answers:
        if answer.status_code != 202:
            assert error_of(answer)[:2] == (409, "CONFLICT")
            assert answer.headers["Retry-After"] == "1"
    assert sum(a.headers.get("Idempotent-Replayed") != "true" for a in created) == 1
    assert api.query(
        "SELECT COUNT(*) FROM tasks t JOIN accounts a ON a.id = t.account_id "
        "WHERE a.email = 'idem@example.com'"
    ) == [(1,)]
    assert money(api, "idem@example.com") == (1_000_000, PRICE)

    with api.client(key) as client:
        again = client.post("/v1/generate", json=SMALL, headers=headers)
        other_body = client.post(
            "/v1/generate", json={**SMALL, "prompt": "a wolf"}, headers=headers
        )
        reordered = client.post(
            "/v1/generate", json={"prompt": "a fox", "model": "nanobanana"}, headers=headers
        )
        too_long = client.post("/v1/generate", json=SMALL, headers={"Idempotency-Key": "k" * 256})
    assert again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["data"]["id"] == task_id
    assert reordered.json()["data"]["id"] == task_id  # the same JSON, keys in another order
    status, code, message = error_of(other_body)
    assert (status, code) == (422, "IDEMPOTENCY_MISMATCH") and "order-7f3a" in message
    assert error_of(too_long)[:2] == (400, "BAD_REQUEST") and "255" in error_of(too_long)[2]
    assert money(api, "idem@example.com") == (1_000_000, PRICE)

    other = api.new_account("idem2@example.com", "1.00")
    with api.client(other) as client:  # keys are per account
        theirs = client.post("/v1/generate", json=SMALL, headers=headers)
    assert theirs.status_code == 202 and theirs.json()["data"]["id"] != task_id
    assert "Idempotent-Replayed" not in theirs.headers


def test_a_key_replays_its_ended_task_with_200_and_a_failed_submit_does_not_use_it_up(
    make_server: MakeServer,
) -> None:
    api = make_server()
    key = api.new_account("replay@example.com", "0.00")
    headers = {"Idempotency-Key": "retry-me"}
    with api.client(key) as client:
        poor = client.post("/v1/generate", json=SMALL, headers=headers)
        assert error_of(poor)[:2] == (403, "INSUFFICIENT_BALANCE")
        api.cli("balance", "add", "replay@example.com", "1.00")
        first = client.post("/v1/generate", json=SMALL, headers=headers)
        assert first.status_code == 202 and "Idempotent-Replayed" not in first.headers
        task = wait_for_task(client, first.json()["data"]["id"])
        replay = client.post("/v1/generate", json=SMALL, headers=headers)
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["data"] == task and task["status"] == "completed"
    assert money(api, "replay@example.com") == (1_000_000 - PRICE, 0)


# ---------------------------------------------------------------- Prefer: wait


def test_prefer_wait_returns_the_ended_task_as_soon_as_it_ends(make_server: MakeServer) -> None:
    api = make_server()
    with api.client() as client:
        response = client.post("/v1/generate", json=SMALL, headers={"Prefer": "wait=30"})
        assert response.status_code == 200, response.text
        assert response.headers["Preference-Applied"] == "wait=30"
        task = response.json()["data"]
        assert task["status"] == "completed" and task["output"]["urls"]
        got = client.get(f"/v1/tasks/{task['id']}", headers={"Prefer": "wait=30"})
    assert got.status_code == 200 and got.json()["data"] == task


def test_prefer_wait_gives_the_usual_answer_when_time_runs_out(make_server: MakeServer) -> None:
    api = make_server(**API_ONLY)
    with api.client() as client:
        started = time.monotonic()
        response = client.post("/v1/generate", json=SMALL, headers={"Prefer": "wait=1"})
        assert time.monotonic() - started >= 1.0
        assert response.status_code == 202 and response.json()["data"]["status"] == "pending"
        task_id = response.json()["data"]["id"]
        started = time.monotonic()
        got = client.get(f"/v1/tasks/{task_id}", headers={"Prefer": "respond-async, wait=1"})
        assert time.monotonic() - started >= 1.0
        assert got.status_code == 200 and got.json()["data"]["status"] == "pending"
        assert got.headers["Preference-Applied"] == "wait=1"
        for bad in ("wait=61", "wait=soon", "wait=-1"):
            answer = client.get(f"/v1/tasks/{task_id}", headers={"Prefer": bad})
            status, code, message = error_of(answer)
            assert (status, code) == (400, "BAD_REQUEST") and "0 to 60" in message


def test_a_wait_ends_when_a_worker_in_another_process_finishes_the_task(
    make_server: MakeServer,
) -> None:
    api = make_server(**API_ONLY)
    with api.client() as client:
        task_id = submit(client)["id"]
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(client.get, f"/v1/tasks/{task_id}", headers={"Prefer": "wait=60"})
            time.sleep(0.5)
            assert not waiting.done()
            with worker_for(api):
                answer = waiting.result(timeout=50)
    assert answer.status_code == 200 and answer.json()["data"]["status"] == "completed"


def test_a_synchronous_model_waits_by_default(make_server: MakeServer, tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(
        '[models.nanobanana]\ntype = "image"\nprice_per_output = "0.0100"\n'
        'providers = ["local"]\nsynchronous = true\n\n'
        '[models.nanobanana-pro]\ntype = "image"\nprice_per_output = "0.0160"\n'
        'providers = ["local"]\n'
    )
    api = make_server(HATCHERY_CATALOG=str(catalog))
    with api.client() as client:
        sync = client.post("/v1/generate", json=SMALL)
        not_sync = client.post("/v1/generate", json={**SMALL, "model": "nanobanana-pro"})
        opted_out = client.post("/v1/generate", json=SMALL, headers={"Prefer": "respond-async"})
    assert sync.status_code == 200 and sync.json()["data"]["status"] == "completed"
    assert "Preference-Applied" not in sync.headers
    assert not_sync.status_code == 202 and opted_out.status_code == 202
    assert opted_out.json()["data"]["status"] == "pending"


# ---------------------------------------------------------------- Server-Sent Events


@dataclass(frozen=True)
class Event:
    id: int
    name: str
    data: dict[str, Any]


def events_of(lines: Iterator[str]) -> Iterator[Event]:
    fields: dict[str, str] = {}
    for line in lines:
        if line == "":
            if "data" in fields:
                yield Event(int(fields["id"]), fields["event"], json.loads(fields["data"]))
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


def read_stream(
    client: httpx.Client, task_id: str, last: int | None = None, take: int | None = None
) -> list[Event]:
    """Events until the server ends the stream, or the first ``take`` of them."""
    headers = {} if last is None else {"Last-Event-ID": str(last)}
    seen: list[Event] = []
    with client.stream("GET", f"/v1/tasks/{task_id}/events", headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for event in events_of(response.iter_lines()):
            seen.append(event)
            if take is not None and len(seen) == take:
                break
    return seen


def test_a_stream_follows_a_task_to_its_end_when_another_process_runs_it(
    make_server: MakeServer,
) -> None:
    api = make_server(**API_ONLY)
    with api.client() as client:
        task_id = submit(client)["id"]
        seen: queue.Queue[Event | None] = queue.Queue()

        def follow() -> None:
            with api.client() as own:
                with own.stream("GET", f"/v1/tasks/{task_id}/events") as response:
                    for event in events_of(response.iter_lines()):
                        seen.put(event)
            seen.put(None)  # the server ended the stream

        reader = threading.Thread(target=follow, daemon=True)
        reader.start()
        first = seen.get(timeout=10)
        assert first is not None and (first.id, first.name) == (0, "pending")
        with worker_for(api):
            rest = [seen.get(timeout=30) for _ in range(3)]
        reader.join(10)
        task = client.get(f"/v1/tasks/{task_id}").json()["data"]
    assert first is not None and first.data["status"] == "pending" and first.data["id"] == task_id
    assert [e.name for e in rest if e] == ["processing", "completed"] and rest[2] is None
    processing, completed = rest[0], rest[1]
    assert processing is not None and completed is not None
    assert 0 < processing.id < completed.id
    assert processing.data == {"id": task_id, "status": "processing", "at": task["started_at"]}
    assert completed.data == task  # the terminal event carries the whole task


def test_reconnecting_with_last_event_id_misses_nothing(make_server: MakeServer) -> None:
    api = make_server(**API_ONLY)
    with api.client() as client:
        task_id = submit(client)["id"]
        [first] = read_stream(client, task_id, take=1)  # then the connection drops
        with worker_for(api):
            task = wait_for_task(client, task_id)
        replayed = read_stream(client, task_id, last=first.id)
        current = read_stream(client, task_id)
        after_end = read_stream(client, task_id, last=replayed[-1].id)
        bad = client.get(f"/v1/tasks/{task_id}/events", headers={"Last-Event-ID": "abc"})
        missing = client.get("/v1/tasks/gen_doesnotexist0000/events")
    assert (first.id, first.name) == (0, "pending")
    assert [e.name for e in replayed] == ["processing", "completed"]
    assert replayed[0].id < replayed[1].id and replayed[1].data == task
    assert current == [replayed[1]]  # without Last-Event-ID: the current status, then the end
    assert after_end == []  # the client had everything: the stream ends at once
    assert error_of(bad)[:2] == (400, "BAD_REQUEST")
    assert error_of(missing)[:2] == (404, "NOT_FOUND")


def test_a_stream_ends_with_the_cancelled_event(make_server: MakeServer) -> None:
    api = make_server(**API_ONLY)
    with api.client() as client:
        task_id = submit(client)["id"]
        with ThreadPoolExecutor(1) as pool:
            following = pool.submit(read_stream, client, task_id)
            time.sleep(0.5)
            cancelled = client.post(f"/v1/tasks/{task_id}/cancel").json()["data"]
            seen = following.result(timeout=20)
    assert [(e.name, e.data["status"]) for e in seen] == [
        ("pending", "pending"),
        ("cancelled", "cancelled"),
    ]
    assert seen[1].data == cancelled
