"""The VideoGen API's tool executions in the tests: submit, wait, fetch and decode outputs."""

from __future__ import annotations

import io
import time
from typing import Any

import av
import httpx
import numpy as np
from PIL import Image

TERMINAL = ("succeeded", "failed", "cancelled")


def run_tool(client: httpx.Client, tool: str, **body: Any) -> str:
    response = client.post(f"/v1/tools/{tool}", json=body)
    assert response.status_code == 202, response.text
    assert list(response.json()) == ["toolExecutionId"]
    execution_id: str = response.json()["toolExecutionId"]
    return execution_id


def wait_for_execution(
    client: httpx.Client, execution_id: str, timeout: float = 120.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        execution: dict[str, Any] = client.get(f"/v1/tools/executions/{execution_id}").json()
        if execution["status"] in TERMINAL:
            return execution
        time.sleep(0.1)
    raise AssertionError(f"execution {execution_id} did not end: {execution}")


def succeeded(client: httpx.Client, tool: str, **body: Any) -> dict[str, Any]:
    """Run the tool to success; the execution."""
    execution = wait_for_execution(client, run_tool(client, tool, **body))
    assert execution["status"] == "succeeded", execution
    return execution


def download(result: dict[str, Any]) -> bytes:
    url = result["file"]["downloadSource"]["url"]
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200, response.text
    return response.content


def image(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def audio_samples(data: bytes) -> tuple[np.ndarray, float]:
    """The audio's samples (mono, float) and its duration in seconds, decoded by PyAV."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        chunks = [f.to_ndarray().astype(np.float64).reshape(-1) for f in container.decode(stream)]
        rate = stream.rate
    samples = np.concatenate(chunks)
    return samples, len(samples) / rate


def video_streams(data: bytes) -> tuple[int, bool, tuple[int, int]]:
    """How many video frames, whether there is an audio stream, and the frame size."""
    with av.open(io.BytesIO(data)) as container:
        video = container.streams.video[0]
        has_audio = bool(container.streams.audio)
        frames = sum(1 for _ in container.decode(video))
        size = (video.codec_context.width, video.codec_context.height)
    return frames, has_audio, size
