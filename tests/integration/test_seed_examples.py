"""The seeds' own client code, unmodified but for the base URL and key, against our server."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
import requests

from tests.helpers import ServerProcess


def seed_wait_for_task(task_id: str, api_key: str, base: str, max_wait: int = 300) -> dict:  # type: ignore[type-arg]
    """Seed 001's wait_for_task, as written (only the base URL changed)."""
    import time

    url = f"{base}/v1/tasks/{task_id}"
    headers = {"Authorization": f"Bearer {api_key}"}

    start_time = time.time()
    poll_interval = 5

    while time.time() - start_time < max_wait:
        response = requests.get(url, headers=headers)
        task = response.json()["data"]

        if task["status"] == "completed":
            return task  # type: ignore[no-any-return]

        if task["status"] == "failed":
            raise Exception(f"Task failed: {task['error']}")

        print(f"Status: {task['status']}...")
        time.sleep(poll_interval)

    raise Exception("Task timed out")


def test_seed_python_wait_for_task(server: ServerProcess) -> None:
    assert server.key
    response = requests.post(
        f"{server.url}/v1/generate",
        headers={"Authorization": f"Bearer {server.key}", "Content-Type": "application/json"},
        json={
            "model": "nanobanana-pro",
            "prompt": "A cat playing with a ball of yarn",
            "aspect_ratio": "16:9",
        },
    )
    assert response.status_code == 202
    task = seed_wait_for_task(response.json()["data"]["id"], server.key, server.url)
    assert requests.get(task["output"]["url"]).content.startswith(b"\x89PNG")


JS = """
async function waitForTask(taskId, apiKey, timeoutMs = 300000) {
  const start = Date.now();

  while (Date.now() - start < timeoutMs) {
    const response = await fetch(`BASE/v1/tasks/${taskId}`, {
      headers: { "Authorization": `Bearer ${apiKey}` }
    });
    const { data, error } = await response.json();

    if (error) throw new Error(error.message);
    if (data.status === "completed") return data;
    if (data.status === "failed") throw new Error(data.error || "Task failed");

    await new Promise((resolve) => setTimeout(resolve, 3000));
  }

  throw new Error("Task timed out");
}

const submit = await fetch("BASE/v1/generate", {
  method: "POST",
  headers: { "Authorization": "Bearer KEY", "Content-Type": "application/json" },
  body: JSON.stringify({ model: "nanobanana", prompt: "A dashboard hero image", num_outputs: 1 }),
});
const created = await submit.json();
const task = await waitForTask(created.data.id, "KEY");
const file = await fetch(task.output.urls[0]);
const bytes = new Uint8Array(await file.arrayBuffer());
console.log(JSON.stringify({ status: task.status, cost: task.cost, png: bytes[1] === 0x50 }));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_seed_javascript_wait_for_task(server: ServerProcess, tmp_path: Path) -> None:
    assert server.key
    script = tmp_path / "seed.mjs"
    script.write_text(textwrap.dedent(JS).replace("BASE", server.url).replace("KEY", server.key))
    result = subprocess.run(["node", str(script)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '{"status":"completed","cost":"$0.0100","png":true}'


def test_seed_curl_flow(server: ServerProcess) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    out = subprocess.run(
        [
            "curl",
            "-s",
            "-X",
            "POST",
            f"{server.url}/v1/generate",
            "-H",
            f"Authorization: Bearer {server.key}",
            "-H",
            "Content-Type: application/json",
            "-d",
            '{"model": "veo3.1", "prompt": "A cat", "duration": 1, "aspect_ratio": "16:9"}',
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert '"status":"pending"' in out and '"type":"video_generate"' in out
