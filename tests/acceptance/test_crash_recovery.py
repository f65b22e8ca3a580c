"""SIGKILL the server mid-work, start it again on the same data: no task or tool execution is
lost, every one completes, each is charged exactly once, and an execution's outputs are files
exactly once."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.helpers import LocalHTTPServer, ServerProcess, wait_for_task
from tests.tools_helpers import run_tool, wait_for_execution

JOBS = [
    {"model": "veo3.1", "duration": 2, "prompt": "crash video"},
    {"model": "nanobanana-pro", "resolution": "4k", "prompt": "crash image", "num_outputs": 2},
    {"model": "nanobanana", "prompt": "crash small"},
]
# 2 s of video at $0.08; two 4K pro images at $0.032 (the 4K price); one image at $0.01
PRICES = {"veo3.1": 160_000, "nanobanana-pro": 64_000, "nanobanana": 10_000}


def wait_until_processing(client: httpx.Client, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listing = client.get("/v1/tasks?status=processing").json()["data"]
        if listing["pagination"]["total"]:
            return
        time.sleep(0.05)
    raise AssertionError("no task started processing")


def test_sigkill_mid_task_loses_nothing_and_charges_once(
    make_server: Callable[..., ServerProcess], receiver: LocalHTTPServer, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    server = make_server(data, HATCHERY_WORKERS="2")
    key = server.new_account("crash@example.com", balance="100.00")
    submitted: list[str] = []
    with server.client(key=key) as client:
        for i in range(12):
            body = {**JOBS[i % 3], "webhook_url": receiver.url("/crash")}
            submitted.append(client.post("/v1/generate", json=body).json()["data"]["id"])
        wait_until_processing(client)
    server.kill()

    # Again: restart, let it work a little, kill it mid-task once more.
    server = make_server(data, HATCHERY_WORKERS="2")
    with server.client(key=key) as client:
        wait_until_processing(client)
        server.kill()

    server = make_server(data, HATCHERY_WORKERS="2")
    with server.client(key=key) as client:
        tasks = [wait_for_task(client, task_id, timeout=120) for task_id in submitted]
        account = client.get("/v1/account").json()["data"]

    assert [t["status"] for t in tasks] == ["completed"] * len(submitted)
    expected = sum(PRICES[t["model"]] for t in tasks)
    assert account["balance"] == f"${(100_000_000 - expected) / 1_000_000:.4f}"
    assert account["reserved"] == "$0.0000"
    for task in tasks:
        for url in task["output"]["urls"]:
            assert httpx.get(url).status_code == 200

    charges = Counter(
        r[0] for r in server.query("SELECT task_id FROM ledger WHERE kind = 'charge'")
    )
    attempts = dict(server.query("SELECT id, attempt FROM tasks"))
    assert charges == Counter(submitted)  # exactly one charge per task
    records = Counter(r[0] for r in server.query("SELECT task_id FROM usage_records"))
    assert records == charges  # and one usage record per charge
    assert max(attempts.values()) >= 2  # the kills really interrupted work that was then reclaimed

    hooks = receiver.wait_for_tasks(set(submitted), path="/crash", timeout=60)
    bodies: dict[str, set[bytes]] = {}
    for hook in hooks:
        bodies.setdefault(json.loads(hook.body)["task_id"], set()).add(hook.body)
    assert set(bodies) == set(submitted)
    assert all(len(b) == 1 for b in bodies.values())  # a redelivery carries the identical body


TEXT = "A crash in the middle of speaking loses nothing."
EXECUTIONS = [  # (tool, body, price in micro-dollars, results)
    ("generate-video-clip", {"prompt": "crash clip", "durationSeconds": 3, "numResults": 3},
     3 * 3 * 100_000, 3),
    ("text-to-speech", {"ttsText": TEXT, "numResults": 4}, 4 * len(TEXT) * 200, 4),
    ("generate-image", {"prompt": "crash picture", "numResults": 4}, 4 * 40_000, 4),
]  # fmt: skip


def wait_until_running(client: httpx.Client, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = client.get("/v1/tools/executions?limit=200").json()["toolExecutions"]
        if any(e["status"] == "running" for e in listed):
            return
        time.sleep(0.05)
    raise AssertionError("no execution started running")


def test_sigkill_mid_execution_makes_each_output_once_and_charges_once(
    make_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    server = make_server(data, HATCHERY_WORKERS="2")
    key = server.new_account("crash-tools@example.com", balance="100.00")
    submitted: dict[str, tuple[int, int]] = {}
    with server.client(key=key) as client:
        for i in range(6):
            tool, body, price, results = EXECUTIONS[i % 3]
            execution_id = run_tool(client, tool, **body)
            submitted[execution_id] = (price, results)
        wait_until_running(client)
    server.kill()
    server = make_server(data, HATCHERY_WORKERS="2")
    with server.client(key=key) as client:
        wait_until_running(client)
    server.kill()

    server = make_server(data, HATCHERY_WORKERS="2")
    with server.client(key=key) as client:
        ended = {e: wait_for_execution(client, e, timeout=180) for e in submitted}
        account = client.get("/v1/account").json()["data"]
    assert {e["status"] for e in ended.values()} == {"succeeded"}
    for execution_id, execution in ended.items():
        assert len(execution["results"]) == submitted[execution_id][1]
        assert all(r["file"]["downloadSource"]["status"] == "ready" for r in execution["results"])
    expected = sum(price for price, _ in submitted.values())
    assert account["balance"] == f"${(100_000_000 - expected) / 1_000_000:.4f}"
    assert account["reserved"] == "$0.0000"
    charges = Counter(
        r[0] for r in server.query("SELECT task_id FROM ledger WHERE kind = 'charge'")
    )
    assert charges == Counter(list(submitted))  # one charge each
    records = Counter(r[0] for r in server.query("SELECT task_id FROM usage_records"))
    assert records == charges
    files = Counter(r[0] for r in server.query("SELECT task_id FROM files"))
    assert files == Counter({e: results for e, (_, results) in submitted.items()})
    attempts = dict(server.query("SELECT id, attempt FROM tasks"))
    assert max(attempts.values()) >= 2  # work was really interrupted, then taken up again
