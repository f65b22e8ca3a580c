"""The S3 store (``hatchery.storage.s3``) against a real S3-compatible server: SeaweedFS on
127.0.0.1 (``tests/s3_server.py``), requests signed with SigV4. Each test keeps to a prefix of
its own in the session's bucket."""

from __future__ import annotations

import asyncio
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import obstore
import pytest
from obstore.store import S3Store as ObstoreS3

from hatchery.storage.base import ObjectInfo, ObjectMissing, StorageUnavailable
from hatchery.storage.s3 import S3Store
from tests.helpers import free_port
from tests.s3_server import S3Server


@pytest.fixture
def prefix() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def store(s3_server: S3Server, prefix: str) -> AsyncIterator[S3Store]:
    s3 = s3_server.store(prefix)
    yield s3
    await s3.close()


@pytest.fixture
async def root(s3_server: S3Server) -> AsyncIterator[S3Store]:
    """The same bucket without a prefix."""
    s3 = s3_server.store()
    yield s3
    await s3.close()


async def test_put_get_head_round_trip(store: S3Store) -> None:
    assert store.kind == "s3"
    await store.put("outputs/tok/0.png", b"\x89PNG not really", "image/png")
    assert await store.get("outputs/tok/0.png") == b"\x89PNG not really"
    assert await store.head("outputs/tok/0.png") == ObjectInfo("outputs/tok/0.png", 15)

    await store.put("outputs/tok/0.png", b"replaced")
    assert await store.get("outputs/tok/0.png") == b"replaced"


async def test_a_missing_object(store: S3Store, tmp_path: Path) -> None:
    assert await store.head("files/none") is None
    with pytest.raises(ObjectMissing):
        await store.get("files/none")
    with pytest.raises(ObjectMissing):
        await store.download("files/none", tmp_path / "out")
    assert not (tmp_path / "out").exists()


async def test_delete_is_idempotent(store: S3Store) -> None:
    await store.put("files/a", b"a")
    await store.delete("files/a")
    assert await store.head("files/a") is None
    await store.delete("files/a")
    await store.delete("files/never-was")


async def test_delete_prefix_removes_exactly_the_prefix(store: S3Store) -> None:
    for key in ("outputs/a/0.png", "outputs/a/1.png", "outputs/a/x/2.png", "outputs/ab/0.png"):
        await store.put(key, b"x")
    await store.put("outputs/a.png", b"x")

    assert await store.delete_prefix("outputs/a/") == 3

    for key in ("outputs/a/0.png", "outputs/a/1.png", "outputs/a/x/2.png"):
        assert await store.head(key) is None
    assert await store.head("outputs/ab/0.png") is not None
    assert await store.head("outputs/a.png") is not None
    assert await store.delete_prefix("outputs/a/") == 0


async def test_a_large_file_is_uploaded_in_parts_and_downloaded(
    store: S3Store, s3_server: S3Server, prefix: str, tmp_path: Path
) -> None:
    data = os.urandom(6 * 1024 * 1024 + 123)  # more than one 5 MB part
    source, target = tmp_path / "in.mp4", tmp_path / "out.mp4"
    source.write_bytes(data)
    target.write_bytes(b"old content, longer than nothing")

    await store.put_file("files/video", source, "video/mp4")

    assert await store.download("files/video", target) == len(data)
    assert target.read_bytes() == data
    assert await store.head("files/video") == ObjectInfo("files/video", len(data))
    raw = ObstoreS3(
        s3_server.bucket,
        endpoint=s3_server.endpoint,
        access_key_id=s3_server.access_key,
        secret_access_key=s3_server.secret_key,
        client_options={"allow_http": True},
    )
    meta = await obstore.head_async(raw, f"{prefix}/files/video")
    assert (meta["e_tag"] or "").rstrip('"').endswith("-2")  # a multipart upload's ETag


async def test_a_missing_local_file_is_not_a_storage_error(store: S3Store, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        await store.put_file("files/x", tmp_path / "nothing")


async def test_the_prefix_is_applied(store: S3Store, root: S3Store, prefix: str) -> None:
    await store.put("files/k", b"under the prefix")
    assert await root.get(f"{prefix}/files/k") == b"under the prefix"
    assert await root.head("files/k") is None

    url = await store.signed_get_url("files/k", 60)
    assert f"/{prefix}/files/k?" in url


async def test_from_url_takes_credentials_from_the_aws_chain(
    s3_server: S3Server, root: S3Store, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    s3 = S3Store.from_url(
        f"s3://{s3_server.bucket}/{prefix}/deep", endpoint=s3_server.endpoint, region="us-east-1"
    )
    await s3.put("files/k", b"via the URL")
    assert await root.get(f"{prefix}/deep/files/k") == b"via the URL"
    assert s3_server.env(prefix)["HATCHERY_STORAGE_URL"] == f"s3://{s3_server.bucket}/{prefix}"


async def test_a_signed_get_url_works_without_credentials_and_with_ranges(store: S3Store) -> None:
    await store.put("outputs/t/0.mp4", b"0123456789abcdefghij", "video/mp4")
    url = await store.signed_get_url("outputs/t/0.mp4", 300, content_type="video/mp4")
    async with httpx.AsyncClient() as client:
        whole = await client.get(url)
        part = await client.get(url, headers={"Range": "bytes=0-9"})
    assert whole.status_code == 200
    assert whole.content == b"0123456789abcdefghij"
    assert whole.headers["content-type"] == "video/mp4"
    assert part.status_code == 206
    assert part.content == b"0123456789"


async def test_a_signed_put_url_takes_a_plain_put(store: S3Store) -> None:
    url = await store.signed_put_url("uploads/u1", 300)
    async with httpx.AsyncClient() as client:
        # what the SDK sends: the bytes, no Content-Type, no credentials
        response = await client.put(url, content=b"uploaded bytes")
    assert "content-type" not in response.request.headers
    assert response.status_code == 200, response.text
    assert await store.get("uploads/u1") == b"uploaded bytes"


@pytest.mark.slow
async def test_an_expired_signed_url_is_refused(store: S3Store) -> None:
    await store.put("files/e", b"soon gone")
    url = await store.signed_get_url("files/e", 1)
    put_url = await store.signed_put_url("files/e", 1)
    await asyncio.sleep(2.2)
    async with httpx.AsyncClient() as client:
        get, put = await client.get(url), await client.put(put_url, content=b"late")
    assert 400 <= get.status_code < 500
    assert 400 <= put.status_code < 500
    assert await store.get("files/e") == b"soon gone"


async def test_a_store_that_is_down_is_unavailable_quickly(s3_server: S3Server) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    down = S3Store(
        "hatchery",
        endpoint=endpoint,
        access_key_id=s3_server.access_key,
        secret_access_key=s3_server.secret_key,
    )
    started = time.monotonic()
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: down.head("files/x"),
        lambda: down.get("files/x"),
        lambda: down.put("files/x", b"x"),
        lambda: down.delete_prefix("files/"),
    ]
    for call in calls:
        with pytest.raises(StorageUnavailable, match=re.escape(endpoint)):
            await call()
    assert time.monotonic() - started < 10


async def test_wrong_credentials_are_not_a_missing_object(s3_server: S3Server) -> None:
    wrong = S3Store(
        s3_server.bucket,
        endpoint=s3_server.endpoint,
        access_key_id=s3_server.access_key,
        secret_access_key="not-the-secret",
    )
    with pytest.raises(StorageUnavailable, match=s3_server.bucket):
        await wrong.get("files/x")
    with pytest.raises(StorageUnavailable):
        await wrong.put("files/x", b"x")


async def test_a_bucket_that_does_not_exist(s3_server: S3Server) -> None:
    s3 = S3Store(
        "no-such-bucket",
        endpoint=s3_server.endpoint,
        access_key_id=s3_server.access_key,
        secret_access_key=s3_server.secret_key,
    )
    with pytest.raises(StorageUnavailable, match="no-such-bucket"):
        await s3.put("files/x", b"x")
    with pytest.raises(ObjectMissing):  # S3 answers 404 (NoSuchBucket) to a read
        await s3.get("files/x")


@pytest.mark.parametrize("key", ["", "/files/x", "../x", "files/../x", "files/.."])
async def test_bad_keys_are_refused(store: S3Store, key: str, tmp_path: Path) -> None:
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: store.put(key, b"x"),
        lambda: store.put_file(key, tmp_path),
        lambda: store.get(key),
        lambda: store.download(key, tmp_path / "out"),
        lambda: store.head(key),
        lambda: store.delete(key),
        lambda: store.delete_prefix(key),
        lambda: store.signed_get_url(key, 60),
        lambda: store.signed_put_url(key, 60),
    ]
    for call in calls:
        with pytest.raises(ValueError):
            await call()
    assert not (tmp_path / "out").exists()


def test_bad_urls_and_prefixes_are_refused() -> None:
    for url in ("http://bucket/x", "s3:///x", "s3://bucket/x?y=1", "bucket/x"):
        with pytest.raises(ValueError):
            S3Store.from_url(url, endpoint="http://127.0.0.1:9")
    with pytest.raises(ValueError):
        S3Store("bucket", "a/../b", endpoint="http://127.0.0.1:9")
