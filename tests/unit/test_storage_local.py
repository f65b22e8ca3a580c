"""The local object store and its signed URLs."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from hatchery.storage import LocalStore, ObjectMissing, UrlSigner, load_secret


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


@pytest.fixture
def signer() -> UrlSigner:
    return UrlSigner(b"a secret", "http://files.test/")


@pytest.fixture
def store(tmp_path: Path, signer: UrlSigner) -> LocalStore:
    return LocalStore(tmp_path, signer)


def test_a_signed_url_works_for_its_method_and_key_until_it_expires(signer: UrlSigner) -> None:
    url = signer.url("GET", "files/vg_file_abc/original", 60, "image/png")
    assert url.startswith("http://files.test/storage/files/vg_file_abc/original?")
    query = query_of(url)
    assert query["type"] == "image/png"
    assert signer.verify("GET", "files/vg_file_abc/original", query) is None
    assert signer.verify("HEAD", "files/vg_file_abc/original", query) is None
    assert "does not match" in str(signer.verify("PUT", "files/vg_file_abc/original", query))
    assert "does not match" in str(signer.verify("GET", "files/vg_file_abd/original", query))
    later = time.time() + 61
    assert "expired" in str(signer.verify("GET", "files/vg_file_abc/original", query, later))


def test_changing_the_expiry_or_the_type_breaks_the_signature(signer: UrlSigner) -> None:
    query = query_of(signer.url("GET", "outputs/t/0.png", 60, "image/png"))
    for field, value in (("expires", str(int(query["expires"]) + 3600)), ("type", "text/html")):
        changed = {**query, field: value}
        assert "does not match" in str(signer.verify("GET", "outputs/t/0.png", changed))
    assert "not signed" in str(signer.verify("GET", "outputs/t/0.png", {}))


def test_another_secret_signs_differently(signer: UrlSigner) -> None:
    query = query_of(signer.url("GET", "outputs/t/0.png", 60))
    other = UrlSigner(b"another", "http://files.test")
    assert other.verify("GET", "outputs/t/0.png", query) is not None


def test_the_secret_is_made_once_and_kept_or_taken_from_the_setting(tmp_path: Path) -> None:
    first = load_secret(tmp_path / "data", "")
    assert len(first) >= 32 and load_secret(tmp_path / "data", "") == first
    assert load_secret(tmp_path / "data", "configured") == b"configured"


async def test_a_task_token_may_start_with_a_dash(store: LocalStore) -> None:
    await store.put("outputs/-Zq8_a/0.png", b"png")  # secrets.token_urlsafe can start so
    assert await store.get("outputs/-Zq8_a/0.png") == b"png"


async def test_objects_round_trip_and_go(store: LocalStore, tmp_path: Path) -> None:
    await store.put("files/vg_file_x/thumbnail", b"jpeg bytes", "image/jpeg")
    assert await store.get("files/vg_file_x/thumbnail") == b"jpeg bytes"
    assert (await store.head("files/vg_file_x/thumbnail")).size == 10  # type: ignore[union-attr]
    source = tmp_path / "big"
    source.write_bytes(b"x" * 3_000_000)
    await store.put_file("files/vg_file_x/original", source)
    copy = tmp_path / "copy"
    assert await store.download("files/vg_file_x/original", copy) == 3_000_000
    assert copy.read_bytes() == source.read_bytes()
    assert await store.delete_prefix("files/vg_file_x/") == 2
    assert await store.head("files/vg_file_x/original") is None
    await store.delete("files/vg_file_x/original")  # nothing there: no error
    with pytest.raises(ObjectMissing):
        await store.get("files/vg_file_x/original")


@pytest.mark.parametrize(
    "key",
    [
        "../etc/passwd",
        "files/../x",
        "hatchery.db",
        "/outputs/x",
        "files/.hidden",
        "x/y",
        "outputs/abc/0.png\n",
        "files//x",
    ],
)
async def test_keys_outside_the_stores_folders_are_refused(store: LocalStore, key: str) -> None:
    with pytest.raises(ValueError):
        await store.put(key, b"")
