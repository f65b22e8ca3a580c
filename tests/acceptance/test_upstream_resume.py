"""SIGKILL a server while its fake Veo operations (or a tool execution's fal requests) are still
running: started again on the same data, it finishes every task from the upstream job it had
already started, and the upstream saw exactly one submit per task (a second would be a second
bill)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.fake_upstreams import FAL_KEY, FakeFal, FakeFiles, FakeGoogle, mp4_bytes
from tests.helpers import ServerProcess, wait_for_task
from tests.tools_helpers import run_tool, wait_for_execution

KEY = "resume-key"


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    files = FakeFiles()
    fake = FakeGoogle(KEY, files)
    yield fake
    fake.release.set()
    fake.close()
    files.close()
    assert fake.violations == [] and files.violations == []


def test_a_killed_worker_resumes_the_same_veo_operations(
    make_server: Callable[..., ServerProcess], google: FakeGoogle, tmp_path: Path
) -> None:
    settings = {
        "HATCHERY_GEMINI_API_KEY": KEY,
        "HATCHERY_GEMINI_BASE_URL": google.base_url,
        "HATCHERY_UPSTREAM_POLL_MAX": "0.2",
        "HATCHERY_WORKERS": "2",
    }
    data = tmp_path / "data"
    google.hold_operations = True  # every operation says done:false until released
    server = make_server(data, **settings)
    key = server.new_account("resume@example.com", balance="20.00")
    with server.client(key=key) as client:
        ids = [
            client.post(
                "/v1/generate", json={"model": "veo3.1", "prompt": f"v{i}", "duration": 6}
            ).json()["data"]["id"]
            for i in range(4)
        ]
        google.wait_for("POST", ":predictLongRunning", count=4)
        google.wait_for("GET", "/operations/", count=8)  # each is being polled
    stored = {
        task_id: json.loads(raw) if isinstance(raw, str) else raw
        for task_id, raw in server.query("SELECT id, upstream FROM tasks")
    }
    server.kill()
    assert {u["provider"] for u in stored.values()} == {"veo"}

    polls_before = len(google.seen("GET", "/operations/"))
    google.release.set()  # the upstream finishes while no worker is alive
    restarted = make_server(data, **settings)
    with restarted.client(key=key) as client:
        tasks = [wait_for_task(client, task_id, timeout=60) for task_id in ids]
        account = client.get("/v1/account").json()["data"]

    assert [t["status"] for t in tasks] == ["completed"] * 4
    assert len(google.seen("POST", ":predictLongRunning")) == 4  # never submitted again
    assert len(google.seen("GET", "/operations/")) > polls_before  # resumed by polling
    for task in tasks:
        assert httpx.get(task["output"]["url"], timeout=10).content == mp4_bytes()
    usages = {
        task_id: json.loads(raw) if isinstance(raw, str) else raw
        for task_id, raw in restarted.query("SELECT id, usage FROM tasks")
    }
    for task_id in ids:
        operation = stored[task_id]["handle"]["operation"]
        assert usages[task_id]["upstream_ids"] == [operation]  # finished from the same one
        assert [a["outcome"] for a in usages[task_id]["attempts"]] == ["completed"]
    attempts = Counter(
        task_id for (task_id,) in restarted.query("SELECT task_id FROM task_attempts")
    )
    assert all(attempts[task_id] == 2 for task_id in ids)  # the killed one, then the resumed one
    assert account["balance"] == "$18.0800"  # 4 tasks of 6 s at $0.08/s, each charged once


@pytest.fixture
def fal() -> Iterator[FakeFal]:
    files = FakeFiles()
    fake = FakeFal(FAL_KEY, files)
    yield fake
    fake.hold.clear()
    fake.close()
    files.close()
    assert fake.violations == [] and files.violations == []


def test_a_killed_worker_resumes_a_tool_executions_fal_requests(
    make_server: Callable[..., ServerProcess], fal: FakeFal, tmp_path: Path
) -> None:
    """A VideoGen execution of three images is one nano-banana request at fal (up to four a
    request); its handle survives the kill, and the restarted server finishes from it."""
    settings = {
        "HATCHERY_FAL_KEY": FAL_KEY,
        "HATCHERY_FAL_BASE_URL": fal.base,
        "HATCHERY_UPSTREAM_POLL_MAX": "0.2",
    }
    data = tmp_path / "data"
    fal.hold.set()  # every request stays IN_PROGRESS until released
    server = make_server(data, **settings)
    key = server.new_account("tool-resume@example.com", balance="20.00")
    with server.client(key=key) as client:
        execution_id = run_tool(client, "generate-image", prompt="a kite", numResults=3)
        fal.wait_for("GET", "/status", count=2)  # queued at fal and being polled
    [(raw,)] = server.query("SELECT upstream FROM tasks WHERE id = :id", id=execution_id)
    stored = json.loads(raw) if isinstance(raw, str) else raw
    server.kill()
    assert stored["provider"] == "fal"

    fal.hold.clear()  # fal finishes while no worker is alive
    restarted = make_server(data, **settings)
    with restarted.client(key=key) as client:
        execution = wait_for_execution(client, execution_id, timeout=60)
        balance = client.get("/v1/account").json()["data"]["balance"]
    assert execution["status"] == "succeeded", execution
    assert len(execution["results"]) == 3
    assert len(fal.seen("POST", "fal-ai/nano-banana")) == 1  # never submitted again
    [(usage_raw,)] = restarted.query("SELECT usage FROM tasks WHERE id = :id", id=execution_id)
    usage = json.loads(usage_raw) if isinstance(usage_raw, str) else usage_raw
    handle = stored["handle"]["requests"][0]["request_id"]
    assert usage["upstream_ids"] == [handle]  # finished from the same request
    assert balance == "$19.8500"  # 3 images at fal's $0.05, charged once
