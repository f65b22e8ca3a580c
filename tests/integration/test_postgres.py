"""Hatchery on PostgreSQL as separate processes: the schema gate, API-only and worker-only
processes sharing one database, and wake-ups through LISTEN/NOTIFY that survive a dropped
listening connection, with the poll as the fallback for a missed notification."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from hatchery.store.notify import LISTENER_NAME
from tests.helpers import LocalHTTPServer, ServerProcess, local_account, query, wait_for_task
from tests.pg import PostgresServer

SMALL = {"model": "nanobanana", "prompt": "a lighthouse"}


def hatchery(url: str, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return ServerProcess(data_dir, database_url=url).cli(*args, check=False)


def wait_for_line(proc: ServerProcess, pattern: str, timeout: float = 30) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in list(proc.output):
            if found := re.search(pattern, line):
                return found
        assert proc.proc is not None and proc.proc.poll() is None, "".join(proc.output)
        time.sleep(0.05)
    raise AssertionError(f"no line matching {pattern!r}:\n{''.join(proc.output)}")


@pytest.fixture
def processes() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for proc in started:
        proc.stop()


def start(processes: list[ServerProcess], proc: ServerProcess, wait: bool = True) -> ServerProcess:
    processes.append(proc)
    return proc.start(wait=wait)


def test_serve_and_worker_refuse_a_schema_that_is_not_theirs(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    url = postgres.create_database()
    for command in ("serve", "worker"):
        result = hatchery(url, tmp_path, command)
        assert result.returncode == 1
        assert "schema is behind: it is empty" in result.stderr
        assert "run `hatchery db upgrade`" in result.stderr
    assert query(url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]

    upgraded = hatchery(url, tmp_path, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    head = re.search(r"revision (\w+)", upgraded.stdout)
    assert head is not None

    query(url, "UPDATE alembic_version SET version_num = '0001'")
    behind = hatchery(url, tmp_path, "worker")
    assert behind.returncode == 1
    assert f"at revision 0001 and this version needs revision {head.group(1)}" in behind.stderr

    query(url, "UPDATE alembic_version SET version_num = '9999'")
    for args in (("serve",), ("db", "upgrade")):
        newer = hatchery(url, tmp_path, *args)
        assert newer.returncode == 1
        assert "(revision 9999) is newer than this version of Hatchery knows" in newer.stderr


def test_api_only_processes_leave_the_work_to_worker_processes(
    postgres: PostgresServer,
    tmp_path: Path,
    receiver: LocalHTTPServer,
    processes: list[ServerProcess],
) -> None:
    url = postgres.create_database()
    key = local_account(url)
    data = tmp_path / "shared"
    api = start(
        processes, ServerProcess(data, {"HATCHERY_WORKERS": "0"}, database_url=url, key=key)
    )
    with api.client() as client:
        task_id = client.post("/v1/generate", json={**SMALL, "webhook_url": receiver.url("/w")})
        task_id = task_id.json()["data"]["id"]
        time.sleep(1.5)  # three poll intervals: an API-only process runs nothing
        assert client.get(f"/v1/tasks/{task_id}").json()["data"]["status"] == "pending"
        assert receiver.received == []

        worker = ServerProcess(
            data,
            {"HATCHERY_PUBLIC_URL": api.url, "HATCHERY_LOG_LEVEL": "info"},
            database_url=url,
            command=("worker", "--concurrency", "2"),
        )
        start(processes, worker, wait=False)
        owner = wait_for_line(worker, r"worker (\S+) running 2 task slot").group(1)
        task = wait_for_task(client, task_id)
        assert task["status"] == "completed"
        assert httpx.get(task["output"]["urls"][0]).status_code == 200  # served by the API
    [hook] = receiver.wait_for(1, path="/w")
    assert hook.json()["task_id"] == task_id  # delivered by the worker
    assert query(url, "SELECT worker, outcome FROM task_attempts") == [(owner, "completed")]

    assert worker.proc is not None
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(20) == 0
    wait_for_line(worker, rf"worker {owner} stopped")


def started_after(url: str, task_id: str) -> float:
    [(created, started)] = query(
        url, "SELECT created_at, started_at FROM tasks WHERE id = :id", id=task_id
    )
    assert isinstance(created, datetime) and isinstance(started, datetime)
    return (started - created).total_seconds()


def listener_pids(url: str) -> list[int]:
    rows = query(
        url,
        "SELECT pid FROM pg_stat_activity WHERE application_name = :name "
        "AND datname = current_database()",
        name=LISTENER_NAME,
    )
    return [int(r[0]) for r in rows]


def run_one(client: httpx.Client) -> str:
    task_id = str(client.post("/v1/generate", json=SMALL).json()["data"]["id"])
    assert wait_for_task(client, task_id)["status"] == "completed"
    return task_id


def test_killing_the_listening_connection_does_not_stall_the_queue(
    postgres: PostgresServer, tmp_path: Path, processes: list[ServerProcess]
) -> None:
    """The worker polls only every 30 s here, so a task that starts within a few seconds was
    woken by a notification (or by the listener reconnecting), not by the poll."""
    url = postgres.create_database()
    key = local_account(url)
    data = tmp_path / "shared"
    api = start(
        processes, ServerProcess(data, {"HATCHERY_WORKERS": "0"}, database_url=url, key=key)
    )
    slow_poll = {"HATCHERY_POLL_INTERVAL": "30", "HATCHERY_LOG_LEVEL": "info"}
    worker = ServerProcess(data, slow_poll, database_url=url, command=("worker",))
    start(processes, worker, wait=False)
    wait_for_line(worker, r"running \d+ task slot")
    deadline = time.monotonic() + 10
    while len(pids := listener_pids(url)) < 2:  # the API process's and the worker's
        assert time.monotonic() < deadline, "the worker never started listening"
        time.sleep(0.05)

    with api.client() as client:
        first = run_one(client)
        assert started_after(url, first) < 5

        for pid in pids:
            assert query(url, "SELECT pg_terminate_backend(:pid)", pid=pid) == [(True,)]
        second = run_one(client)
        assert started_after(url, second) < 5

        wait_for_line(worker, r"notification listener reconnected")
        deadline = time.monotonic() + 10
        while len(new_pids := listener_pids(url)) < 2:
            assert time.monotonic() < deadline, "a listener did not reconnect"
            time.sleep(0.05)
        assert len(new_pids) == 2 and not set(new_pids) & set(pids)
        third = run_one(client)
        assert started_after(url, third) < 5


def test_a_missed_notification_costs_at_most_one_poll_interval(
    postgres: PostgresServer, tmp_path: Path, processes: list[ServerProcess]
) -> None:
    """With the trigger disabled no notification is ever sent: the 1 s poll still starts it."""
    url = postgres.create_database()
    key = local_account(url)
    query(url, "ALTER TABLE tasks DISABLE TRIGGER tasks_notify_pending")
    data = tmp_path / "shared"
    api = start(
        processes, ServerProcess(data, {"HATCHERY_WORKERS": "0"}, database_url=url, key=key)
    )
    worker = ServerProcess(
        data, {"HATCHERY_POLL_INTERVAL": "1"}, database_url=url, command=("worker",)
    )
    start(processes, worker, wait=False)
    with api.client() as client:
        for _ in range(3):
            assert started_after(url, run_one(client)) < 1 + 2  # the poll, plus slack


@pytest.mark.parametrize("command", [("serve",), ("worker",), ("db", "upgrade")])
def test_an_unreachable_database_is_one_clear_line_without_the_password(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    from tests.helpers import free_port

    port = free_port()  # nothing listens there
    result = hatchery(f"postgresql://hatchery:s3cret@127.0.0.1:{port}/hatchery", tmp_path, *command)
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"error: cannot use the database postgresql+asyncpg://hatchery:***@127.0.0.1:{port}/hatchery"
    )
    assert "s3cret" not in result.stderr and "Traceback" not in result.stderr
