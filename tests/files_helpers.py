"""Media made in the tests, and the VideoGen files API's upload flow, for the files tests."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
from PIL import Image


def png(width: int = 64, height: int = 48, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="PNG")
    return out.getvalue()


def mp4(
    path: Path,
    seconds: float = 2.0,
    size: tuple[int, int] = (160, 120),
    rate: int = 12,
    picture: Callable[[int], Image.Image] | None = None,
) -> bytes:
    """An H.264 clip with an AAC tone; its frames are plain greys, or ``picture(i)``."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = *size, "yuv420p"
        audio = container.add_stream("aac", rate=44100)
        for i in range(int(seconds * rate)):
            if picture is None:
                pixels = np.full((size[1], size[0], 3), (i * 9) % 255, dtype=np.uint8)
                frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            else:
                frame = av.VideoFrame.from_image(picture(i))
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        samples = int(seconds * 44100)
        tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / 44100)).astype(np.float32)
        for start in range(0, samples, 1024):
            chunk = tone[start : start + 1024].reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = 44100, start, Fraction(1, 44100)
            container.mux(audio.encode(frame))
        container.mux(audio.encode(None))
    return path.read_bytes()


def create_upload(client: httpx.Client, name: str = "a photo", **body: Any) -> dict[str, Any]:
    response = client.post("/v1/files/upload", json={"displayName": name, **body})
    assert response.status_code == 200, response.text
    created: dict[str, Any] = response.json()
    return created


def wait_for_file(
    client: httpx.Client, file_id: str, until: tuple[str, ...] = ("ready", "failed"), timeout=60.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        file: dict[str, Any] = client.post(f"/v1/files/{file_id}/hydrate").json()
        if file.get("status") in until:
            return file
        time.sleep(0.1)
    raise AssertionError(f"file {file_id} not in {until} after {timeout}s: {file}")


def upload(client: httpx.Client, data: bytes, name: str = "a photo", **body: Any) -> dict[str, Any]:
    """The whole flow: create, PUT the bytes (no Content-Type, as the vendor's SDK), wait."""
    created = create_upload(client, name, **body)
    put = httpx.put(created["uploadUrl"], content=data, timeout=30)
    assert put.status_code == 200, put.text
    return wait_for_file(client, created["fileId"])
