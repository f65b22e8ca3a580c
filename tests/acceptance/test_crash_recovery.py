"""SIGKILL the server mid-work, start it again on the same data: no task is lost, every task
completes, and each is charged exactly once."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.helpers import LocalHTTPServer, ServerProcess, wait_for_task

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
