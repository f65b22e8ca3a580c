"""Files on an S3-compatible store (a real SeaweedFS on 127.0.0.1): the bytes go straight between
the client and the store through presigned URLs, Hatchery learns of an upload by looking, Egg
output URLs redirect to the store, and a store that is down costs a retry, never a file."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hatchery.domain.files import FileStatus, upload_key
from hatchery.files.ingest import FileProcessor, Limits
from hatchery.files.library import FileLibrary
from hatchery.settings import Settings
from hatchery.storage import UrlSigner
from hatchery.store import files as store
from hatchery.store.db import Database
from hatchery.store.notify import Notifier
from tests.files_helpers import create_upload, png, upload
from tests.helpers import ServerProcess, free_port, wait_for_task
from tests.s3_server import S3Server
from tests.store_helpers import new_account
from tests.tools_helpers import download, image, succeeded


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server
) -> Iterator[ServerProcess]:
    prefix = f"files-s3-{secrets.token_hex(4)}"
    proc = ServerProcess(tmp_path_factory.mktemp("s3"), settings=s3_server.env(prefix)).start()
    yield proc
    proc.stop()


def test_an_upload_goes_to_the_store_and_its_urls_are_the_stores(
    server: ServerProcess, s3_server: S3Server
) -> None:
    data = png(200, 100)
    with server.client() as client:
        file = upload(client, data, "straight to the store")
    assert file["status"] == "ready", file
    url = file["downloadSource"]["url"]
    assert url.startswith(s3_server.endpoint) and "X-Amz-Signature" in url
    assert httpx.get(url).content == data
    assert httpx.get(file["thumbnailSource"]["url"]).status_code == 200
    assert not (server.data_dir / "uploads").exists()  # nothing on the API's disk


def test_an_egg_output_url_redirects_to_the_store(
    server: ServerProcess, s3_server: S3Server
) -> None:
    with server.client() as client:
        submitted = client.post("/v1/generate", json={"model": "nanobanana", "prompt": "s3"})
        task = wait_for_task(client, submitted.json()["data"]["id"])
    stable = task["output"]["url"]
    assert stable.startswith(server.url + "/files/")
    first = httpx.get(stable)
    assert first.status_code == 302 and first.headers["location"].startswith(s3_server.endpoint)
    assert httpx.get(stable, follow_redirects=True).content.startswith(b"\x89PNG")
    assert not (server.data_dir / "outputs").exists()


def test_a_tool_reads_its_input_from_the_store_and_writes_its_outputs_there(
    server: ServerProcess, s3_server: S3Server
) -> None:
    with server.client() as client:
        source = upload(client, png(120, 80), "an S3 input")["fileId"]
        execution = succeeded(client, "upscale-image", imageStorageFileId=source)
    result = execution["results"][0]
    url = result["file"]["downloadSource"]["url"]
    assert url.startswith(s3_server.endpoint) and "X-Amz-Signature" in url
    assert image(download(result)).size == (240, 160)
    assert not (server.data_dir / "outputs").exists()


def test_a_store_that_is_down_answers_503_and_loses_nothing(
    tmp_path: Path, s3_server: S3Server
) -> None:
    env = {**s3_server.env("down"), "HATCHERY_STORAGE_ENDPOINT": f"http://127.0.0.1:{free_port()}"}
    proc = ServerProcess(tmp_path / "down", settings=env).start()
    try:
        with proc.client() as client:
            created = create_upload(client)  # presigning needs no round trip
            answer = client.get(f"/v1/files/{created['fileId']}")
            assert answer.status_code == 503, answer.text
            assert answer.json()["code"] == "service_unavailable"
            assert client.get(f"/v1/files/{created['fileId']}").status_code == 503
    finally:
        proc.stop()


async def test_processing_waits_out_a_store_that_is_down(
    db: Database, tmp_path: Path, s3_server: S3Server
) -> None:
    prefix = f"job-{secrets.token_hex(4)}"
    up = s3_server.store(prefix)
    down_store = type(up).from_url(
        f"s3://{s3_server.bucket}/{prefix}",
        endpoint=f"http://127.0.0.1:{free_port()}",
        region=s3_server.region,
    )
    settings = Settings(data_dir=tmp_path, database_url="sqlite+aiosqlite:///unused.db")
    signer = UrlSigner(b"s", "http://h")
    library = FileLibrary(db, up, signer, Notifier(), settings)
    account = await new_account(db)
    file, _ = await library.create_upload(account, "waits", None, False)
    await up.put(upload_key(file.id), png())
    assert (await library.arrived(file)) is not None
    limits = Limits(max_bytes=10_000_000)
    broken = FileProcessor(db, down_store, Notifier(), owner="w1", limits=limits)
    assert await broken.process_one()
    async with db.read() as conn:
        waiting = await store.get(conn, file.id)
    assert waiting is not None and waiting.status == FileStatus.PROCESSING
    assert waiting.error is None and waiting.lease_owner is None
    assert await up.head(upload_key(file.id)) is not None  # the bytes are still there
    async with db.write() as conn:  # due again now rather than after the backoff
        await store.update(conn, waiting, waiting.updated_at, next_attempt_at=waiting.created_at)
    working = FileProcessor(db, up, Notifier(), owner="w2", limits=limits)
    assert await working.process_one()
    ready = await library.get(account, file.id)
    assert ready.status == FileStatus.READY and ready.attempts == 2
    assert await up.head(upload_key(file.id)) is None  # moved to files/<id>/original
    assert await up.get(f"files/{file.id}/original") == png()
    for s in (up, down_store):
        await s.close()
