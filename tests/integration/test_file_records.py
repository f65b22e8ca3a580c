"""The file library over the files table, on both databases: search, the processing job's lease,
upload arrival, and the janitor."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from hatchery.domain.files import FileStatus, FileType, upload_key
from hatchery.errors import BadRequest, Conflict, InvalidId, NotFound
from hatchery.files.ingest import FileProcessor, Limits
from hatchery.files.janitor import FileJanitor
from hatchery.files.library import FileLibrary
from hatchery.settings import Settings
from hatchery.storage import LocalStore, UrlSigner
from hatchery.store import files as store
from hatchery.store.db import Database, utcnow
from hatchery.store.notify import Notifier
from tests.store_helpers import new_account


@pytest.fixture
def library(db: Database, tmp_path: Path) -> FileLibrary:
    signer = UrlSigner(b"secret", "http://h")
    settings = Settings(data_dir=tmp_path, database_url="sqlite+aiosqlite:///unused.db")
    return FileLibrary(db, LocalStore(tmp_path, signer), signer, Notifier(), settings)


async def ready_file(
    library: FileLibrary, account: str, name: str, description: str | None = None, **extra: object
) -> str:
    """A file as processing leaves it (straight into the table)."""
    file, _ = await library.create_upload(account, name, None, False)
    async with library.db.write() as conn:
        done = await store.update(
            conn,
            file,
            utcnow(),
            status=FileStatus.READY.value,
            type="IMAGE",
            description=description,
            object_key=f"files/{file.id}/original",
            **extra,
        )
    assert done is not None
    return file.id


async def test_search_ranks_by_the_share_of_words_found(library: FileLibrary) -> None:
    account = await new_account(library.db)
    both = await ready_file(library, account, "Red fox", "a fox asleep in the snow")
    one = await ready_file(library, account, "Snowy peaks")
    await ready_file(library, account, "Harbour at night")
    await ready_file(library, account, "Foxglove", scope="TEMPORARY")
    stranger = await ready_file(library, await new_account(library.db), "fox in snow")
    found = await library.search(account, "FOX snow", 10)
    assert [(hit.file.id, hit.similarity) for hit in found] == [(both, 1.0), (one, 0.5)]
    assert stranger not in {hit.file.id for hit in found}
    assert await library.search(account, "  ,;  ", 10) == []
    assert [hit.file.id for hit in await library.search(account, "fox", 1)] == [both]


async def test_a_renamed_file_is_found_by_its_new_name(library: FileLibrary) -> None:
    account = await new_account(library.db)
    file_id = await ready_file(library, account, "Draft")
    file = await library.get(account, file_id)
    async with library.db.write() as conn:
        await store.update(conn, file, utcnow(), display_name="Final cut")
    assert [hit.file.id for hit in await library.search(account, "final", 5)] == [file_id]
    assert await library.search(account, "draft", 5) == []


async def test_ids_and_owners(library: FileLibrary) -> None:
    account = await new_account(library.db)
    file_id = await ready_file(library, account, "mine")
    with pytest.raises(InvalidId):
        await library.get(account, "vg_exec_123456789")
    with pytest.raises(NotFound):
        await library.get(await new_account(library.db), file_id)
    with pytest.raises(BadRequest):  # an image has no public preview
        await library.set_public_preview(account, file_id, True)


async def test_an_upload_arrives_once_and_goes_to_processing(library: FileLibrary) -> None:
    account = await new_account(library.db)
    file, url = await library.create_upload(account, "clip", FileType.VIDEO, True)
    assert "/storage/uploads/" in url and file.status == FileStatus.UPLOADING
    assert await library.arrived(file) is None  # no bytes yet
    await library.storage.put(upload_key(file.id), b"12345")
    moved = await library.arrived(file)
    assert moved is not None and moved.status == FileStatus.PROCESSING and moved.bytes == 5
    assert moved.expires_at is not None  # temporary: kept until then
    kept = moved.expires_at - moved.updated_at
    assert timedelta(hours=23.9) < kept <= timedelta(hours=24)
    assert await library.receive_upload(file, 5) is None  # a second arrival changes nothing
    with pytest.raises(Conflict):
        await library.uploading(file.id)


async def test_a_job_lease_keeps_a_late_worker_from_writing(library: FileLibrary) -> None:
    account = await new_account(library.db)
    file, _ = await library.create_upload(account, "x", None, False)
    await library.receive_upload(file, 1)
    now = utcnow()
    async with library.db.write() as conn:
        first = await store.claim(conn, "w1", now, now + timedelta(milliseconds=1))
    assert first is not None and first.attempts == 1
    later = utcnow() + timedelta(seconds=1)
    async with library.db.write() as conn:
        second = await store.claim(conn, "w2", later, later + timedelta(minutes=5))
        assert await store.claim(conn, "w3", later, later) is None  # held by w2
    assert second is not None and second.attempts == 2
    async with library.db.write() as conn:
        assert await store.finish(conn, first, utcnow(), status="ready") is None
        done = await store.finish(conn, second, utcnow(), status="failed", error="no")
    assert done is not None and done.status == FileStatus.FAILED


async def test_the_janitor_fails_expired_uploads_and_removes_temporary_files(
    library: FileLibrary,
) -> None:
    account = await new_account(library.db)
    waiting, _ = await library.create_upload(account, "never sent", None, False)
    temporary = await ready_file(library, account, "scratch", scope="TEMPORARY")
    kept = await ready_file(library, account, "keeper")
    await library.storage.put(f"files/{temporary}/original", b"bytes")
    await library.storage.put(f"files/{temporary}/thumbnail", b"thumb")
    just_expired, _ = await library.create_upload(account, "a PUT may still be ending", None, False)
    past = utcnow() - timedelta(seconds=1)
    async with library.db.write() as conn:
        await store.update(conn, waiting, utcnow(), expires_at=past - timedelta(minutes=2))
        await store.update(conn, just_expired, utcnow(), expires_at=past)
        scratch = await store.get(conn, temporary)
        assert scratch is not None
        await store.update(conn, scratch, utcnow(), expires_at=past)
    swept = await FileJanitor(library, interval=60).sweep()
    assert (swept.expired, swept.removed) == (1, 1)
    failed = await library.get(account, waiting.id)
    assert failed.status == FileStatus.FAILED and "expired" in (failed.error or "")
    assert (await library.get(account, just_expired.id)).status == FileStatus.UPLOADING
    gone = await library.get(account, temporary)
    assert gone.archived_at is not None and gone.object_key is None
    assert await library.storage.head(f"files/{temporary}/original") is None
    assert (await library.get(account, kept)).status == FileStatus.READY
    assert await FileJanitor(library, interval=60).sweep() == type(swept)()  # nothing left


async def test_a_job_in_progress_keeps_its_lease_and_a_dead_one_loses_it(
    library: FileLibrary,
) -> None:
    account = await new_account(library.db)
    file, _ = await library.create_upload(account, "clip", None, False)
    await library.receive_upload(file, 1)
    limits = Limits(max_bytes=10_000_000, lease_seconds=0.3)
    worker = FileProcessor(library.db, library.storage, Notifier(), owner="w1", limits=limits)
    now = utcnow()
    async with library.db.write() as conn:
        claimed = await store.claim(conn, "w1", now, now + timedelta(seconds=0.3))
    assert claimed is not None

    async def claim_by_w2() -> object:
        now = utcnow()
        async with library.db.write() as conn:
            return await store.claim(conn, "w2", now, now + timedelta(seconds=5))

    keeper = asyncio.create_task(worker.keep_lease(claimed))
    await asyncio.sleep(0.8)  # well past the lease: only renewals keep it
    assert await claim_by_w2() is None
    keeper.cancel()  # the worker stops renewing (it died)
    await asyncio.sleep(0.5)
    taken = await claim_by_w2()
    assert taken is not None and taken.lease_owner == "w2" and taken.attempts == 2


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('fox" OR "x', 1 / 3),  # quotes and operators are only words here
        ("*", None),
        ("fox_den", 1.0),  # `_` separates words, as both indexes split text
        ("FOX-den!", 1.0),
        ("café", 1.0),
        ("cafe", None),  # accents stay on both databases
        ("日本", 1.0),
        ("den:* | x", 0.5),
        ("NEAR(fox den)", 2 / 3),
    ],
)
async def test_any_query_text_is_words_and_both_databases_agree(
    library: FileLibrary, query: str, expected: float | None
) -> None:
    account = await new_account(library.db)
    file_id = await ready_file(library, account, "Fox den", "un café à 日本")
    found = await library.search(account, query, 5)
    assert [(hit.file.id, hit.similarity) for hit in found] == (
        [] if expected is None else [(file_id, round(expected, 4))]
    )
