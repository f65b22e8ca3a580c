"""How vendors receive a tool's input files (presigned URL or inline bytes) and how a vendor's
output bytes are checked before they are stored."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest

from hatchery.domain.tools import InputFile, ToolParams
from hatchery.offline import sound, vector
from hatchery.providers.base import Job, RetryableError, TerminalError
from hatchery.providers.inputs import InputFiles
from hatchery.providers.media import tool_artifact
from hatchery.providers.registry import input_files
from hatchery.providers.render import render_png
from hatchery.settings import Settings, SettingsError
from hatchery.storage import LocalStore, UrlSigner
from hatchery.storage.base import ObjectMissing, StorageUnavailable

PNG = render_png("a red kite", 0, 64, 48, [])
FILE = InputFile("vg_file_1", "uploads/abc/1", "IMAGE", "image/png", width=64, height=48)


async def read(key: str) -> bytes:
    if key == FILE.key:
        return PNG
    if key == "gone":
        raise ObjectMissing(key)
    raise StorageUnavailable("the store is down")


def test_without_an_object_store_url_a_vendor_gets_the_bytes_inline() -> None:
    files = InputFiles(read)
    url = asyncio.run(files.url(FILE))
    assert not files.presigned
    prefix = "data:image/png;base64,"
    assert url.startswith(prefix) and base64.b64decode(url[len(prefix) :]) == PNG


def test_with_an_s3_store_a_vendor_gets_a_presigned_url_for_the_configured_time() -> None:
    signed: list[tuple[str, int]] = []

    async def sign(key: str, seconds: int) -> str:
        signed.append((key, seconds))
        return f"https://bucket.example/{key}?X-Amz-Signature=abc"

    files = InputFiles(read, sign, url_seconds=900)
    assert files.presigned
    assert (
        asyncio.run(files.url(FILE)) == "https://bucket.example/uploads/abc/1?X-Amz-Signature=abc"
    )
    assert signed == [("uploads/abc/1", 900)]


def test_a_file_gone_from_the_store_is_terminal_and_a_store_outage_is_retryable() -> None:
    files = InputFiles(read)
    with pytest.raises(TerminalError, match="input file vg_file_2 no longer exists"):
        asyncio.run(files.read(InputFile("vg_file_2", "gone", "IMAGE", "image/png")))
    with pytest.raises(RetryableError, match="the file store could not be read"):
        asyncio.run(files.url(InputFile("vg_file_3", "other", "IMAGE", "image/png")))


def job(tool: str) -> Job:
    return Job.for_tool("t", ToolParams(tool=tool))


def test_a_vendor_output_is_read_from_its_bytes() -> None:
    image = asyncio.run(tool_artifact("fal", job("upscale-image"), PNG, "fal fal-ai/esrgan"))
    assert (image.extension, image.width, image.height) == ("png", 64, 48)
    assert image.description == "fal fal-ai/esrgan"
    mp3 = sound.sound_effect("rain on a roof", seconds=2.0, index=0).data
    audio = asyncio.run(tool_artifact("elevenlabs", job("text-to-speech"), mp3, "x"))
    assert audio.extension == "mp3" and audio.seconds is not None and 1.5 < audio.seconds < 2.5
    svg = vector.vectorize(PNG).data
    drawn = asyncio.run(tool_artifact("fal", job("vectorize-image"), svg, "x"))
    assert drawn.extension == "svg"


@pytest.mark.parametrize(
    ("tool", "data", "problem"),
    [
        ("upscale-video", PNG, "an output of upscale-video is image, not video"),
        ("vectorize-image", PNG, "an output of vectorize-image is not an SVG"),
        ("upscale-image", vector.vectorize(PNG).data, "an output of upscale-image is an SVG"),
        ("remove-image-background", b"<html>busy</html>", "not an image, video or audio file"),
    ],
)
def test_a_vendor_output_of_the_wrong_kind_is_retryable(
    tool: str, data: bytes, problem: str
) -> None:
    with pytest.raises(RetryableError, match=problem):
        asyncio.run(tool_artifact("fal", job(tool), data, "x"))


def test_a_file_too_large_to_send_inline_is_left_to_another_provider() -> None:
    read_keys: list[str] = []

    async def counted(key: str) -> bytes:
        read_keys.append(key)
        return await read(key)

    async def size(key: str) -> int | None:
        return len(PNG)

    small = InputFiles(counted, size=size, inline_max=len(PNG))
    assert asyncio.run(small.url(FILE)).startswith("data:image/png;base64,")
    tight = InputFiles(counted, size=size, inline_max=len(PNG) - 1)
    with pytest.raises(RetryableError, match=r"input file vg_file_1 is 0\.0 MiB; vendors get"):
        asyncio.run(tight.url(FILE))
    assert read_keys == [FILE.key]  # refused from its size, before reading it
    unsized = InputFiles(read, inline_max=10)  # no size seam: refused once read
    with pytest.raises(RetryableError, match="HATCHERY_STORAGE_URL"):
        asyncio.run(unsized.url(FILE))


def test_vendors_get_presigned_urls_only_from_an_s3_store_and_not_when_told_inline(
    tmp_path: Path,
) -> None:
    store = LocalStore(tmp_path, UrlSigner(b"k" * 32, "http://127.0.0.1:8000"))
    s3 = {"data_dir": tmp_path, "storage_url": "s3://bucket/prefix"}
    assert input_files(Settings(**s3), store).presigned  # type: ignore[arg-type]
    inline = Settings(**s3, vendor_inputs="inline")  # type: ignore[arg-type]
    assert not input_files(inline, store).presigned
    assert not input_files(Settings(data_dir=tmp_path), store).presigned  # local disk
    with pytest.raises(SettingsError, match='VENDOR_INPUTS must be "auto" or "inline"'):
        Settings(data_dir=tmp_path, vendor_inputs="url")
