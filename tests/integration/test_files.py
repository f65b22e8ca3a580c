"""The VideoGen API's files on the embedded default (local store): uploads, processing, signed
URLs, lists, search, archive, public preview, and task outputs as files."""

from __future__ import annotations

import io
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image

from tests.files_helpers import create_upload, mp4, png, upload, wait_for_file
from tests.helpers import ServerProcess, wait_for_task

MAX_UPLOAD = 300_000


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    new_database: Callable[[], tuple[str | None, str | None]],
) -> Iterator[ServerProcess]:
    url, key = new_database()
    proc = ServerProcess(
        tmp_path_factory.mktemp("files"),
        database_url=url,
        key=key,
        settings={"HATCHERY_MAX_UPLOAD_BYTES": str(MAX_UPLOAD)},
    ).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    key = server.new_account("files@example.com")
    with server.client(key=key) as c:
        yield c


def test_an_upload_is_processed_into_a_file_with_sources(client: httpx.Client) -> None:
    data = png(300, 200)
    created = create_upload(client, "A mountain at sunrise")
    assert created["fileId"].startswith("vg_file_")
    waiting = client.get(f"/v1/files/{created['fileId']}").json()
    assert waiting["status"] == "uploading" and waiting["type"] is None
    assert waiting["downloadSource"] == {
        "status": "pending", "url": None, "expiresAt": None,
        "width": None, "height": None, "fileBytes": None,
    }  # fmt: skip

    file = upload(client, data, "A mountain at sunrise")
    file = wait_for_file(client, file["fileId"])
    assert file["status"] == "ready", file
    assert (file["type"], file["scope"], file["contentType"]) == ("IMAGE", "GLOBAL", "image/png")
    download = file["downloadSource"]
    assert (download["status"], download["width"], download["height"]) == ("ready", 300, 200)
    assert download["fileBytes"] == len(data)
    assert httpx.get(download["url"]).content == data  # no key: the URL is its own authority
    thumb = file["thumbnailSource"]
    image = Image.open(io.BytesIO(httpx.get(thumb["url"]).content))
    assert max(image.size) <= 256 and (thumb["width"], thumb["height"]) == image.size
    assert file["previewSource"]["status"] == "ready"


def test_a_signed_url_serves_ranges_and_refuses_a_changed_signature(client: httpx.Client) -> None:
    data = png(120, 90, (10, 200, 10))
    url = upload(client, data)["downloadSource"]["url"]
    part = httpx.get(url, headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and part.content == data[:10]
    tampered = url.replace("expires=", "expires=1")
    refused = httpx.get(tampered)
    assert refused.status_code == 403 and refused.json()["code"] == "invalid_signature"


def test_the_type_is_read_from_the_bytes_not_the_name(client: httpx.Client) -> None:
    file = upload(client, png(), "holiday.mp4")
    assert (file["status"], file["type"]) == ("ready", "IMAGE")


def test_bytes_that_are_not_media_fail_with_a_reason_and_leave_no_upload(
    client: httpx.Client, server: ServerProcess
) -> None:
    file = upload(client, b"<html><body>not a picture</body></html>", "page")
    assert file["status"] == "failed"
    assert "not an image, video or audio" in file["error"]
    assert file["downloadSource"]["status"] == "failed"
    assert not (server.data_dir / "uploads" / file["fileId"]).exists()


def test_a_declared_type_the_bytes_do_not_match_fails(client: httpx.Client) -> None:
    file = upload(client, png(), "clip", type="VIDEO")
    assert file["status"] == "failed"
    assert "declared VIDEO" in file["error"] and "image" in file["error"]


def test_a_second_put_is_refused_and_changes_nothing(client: httpx.Client) -> None:
    created = create_upload(client)
    assert httpx.put(created["uploadUrl"], content=png()).status_code == 200
    again = httpx.put(created["uploadUrl"], content=png(10, 10))
    assert again.status_code == 409 and again.json()["code"] == "upload_already_received"
    file = wait_for_file(client, created["fileId"])
    assert (file["downloadSource"]["width"], file["downloadSource"]["height"]) == (64, 48)


def test_an_upload_over_the_limit_is_refused_and_the_file_still_waits(
    client: httpx.Client, server: ServerProcess
) -> None:
    created = create_upload(client)
    response = httpx.put(created["uploadUrl"], content=b"\0" * (MAX_UPLOAD + 1))
    assert response.status_code == 413
    assert response.json()["code"] == "file_too_large"
    assert str(MAX_UPLOAD) in response.json()["message"]
    assert client.get(f"/v1/files/{created['fileId']}").json()["status"] == "uploading"
    assert not (server.data_dir / "uploads" / created["fileId"]).exists()


def test_a_truncated_upload_stores_nothing(client: httpx.Client, server: ServerProcess) -> None:
    created = create_upload(client)
    url = urlsplit(created["uploadUrl"])
    with socket.create_connection((url.hostname, url.port)) as sock:
        head = (
            f"PUT {url.path}?{url.query} HTTP/1.1\r\nHost: {url.netloc}\r\n"
            "Content-Length: 5000\r\n\r\n"
        )
        sock.sendall(head.encode() + b"\x89PNG" + b"\0" * 100)
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(10)
        try:
            sock.recv(1000)
        except OSError:
            pass
    assert client.get(f"/v1/files/{created['fileId']}").json()["status"] == "uploading"
    assert not (server.data_dir / "uploads" / created["fileId"]).exists()
    assert httpx.put(created["uploadUrl"], content=png()).status_code == 200  # still takes bytes


def test_ids_keys_and_other_accounts(client: httpx.Client, server: ServerProcess) -> None:
    file_id = upload(client, png())["fileId"]
    other = server.new_account("other-files@example.com")
    with server.client(key=other) as stranger:
        missing = stranger.get(f"/v1/files/{file_id}")
        assert missing.status_code == 404 and missing.json()["code"] == "not_found"
        assert stranger.post(f"/v1/files/{file_id}/archive").status_code == 404
    bad = client.get("/v1/files/not-a-file")
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_id"
    assert set(bad.json()) == {"message", "code"}
    no_key = httpx.get(f"{server.url}/v1/files")
    assert no_key.status_code == 401 and no_key.json()["code"] == "missing_api_key"
    wrong = httpx.get(f"{server.url}/v1/files", headers={"Authorization": "Bearer hk_nope0000000"})
    assert wrong.status_code == 401 and wrong.json()["code"] == "invalid_api_key"


def test_bad_bodies_name_what_to_fix(client: httpx.Client) -> None:
    missing = client.post("/v1/files/upload", json={})
    assert missing.status_code == 400 and missing.json()["code"] == "invalid_parameters"
    assert "displayName" in missing.json()["message"]
    wrong = client.post("/v1/files/upload", json={"displayName": "x", "type": "PDF"})
    assert wrong.status_code == 400 and "type" in wrong.json()["message"]
    search = client.post("/v1/files/search", json={"query": ""})
    assert search.status_code == 400 and "query" in search.json()["message"]


def test_lists_page_newest_first_and_leave_out_archived_files(server: ServerProcess) -> None:
    key = server.new_account("lists@example.com")
    with server.client(key=key) as client:
        ids = [upload(client, png(20 + i, 20))["fileId"] for i in range(3)]
        everything = client.get("/v1/files").json()
        assert [f["fileId"] for f in everything["files"]] == ids[::-1]
        assert everything["hasMore"] is False and everything["nextCursor"] is None
        first = client.get("/v1/files", params={"limit": 2}).json()
        assert first["hasMore"] is True
        rest = client.get("/v1/files", params={"limit": 2, "cursor": first["nextCursor"]}).json()
        assert [f["fileId"] for f in first["files"] + rest["files"]] == ids[::-1]
        archived = client.post(f"/v1/files/{ids[1]}/archive").json()
        assert archived["fileId"] == ids[1]
        after = [f["fileId"] for f in client.get("/v1/files").json()["files"]]
        assert after == [ids[2], ids[0]]
        assert client.get(f"/v1/files/{ids[1]}").status_code == 200  # still readable by id
        bad = client.get("/v1/files", params={"cursor": "bm9wZQ"})
        assert bad.status_code == 400 and bad.json()["code"] == "invalid_parameters"
        headers = client.get("/v1/files").headers
    assert headers["X-RateLimit-Limit"] == "50000"
    assert int(headers["X-RateLimit-Remaining"]) < 50000


def test_search_is_lexical_over_names_and_not_temporary_files(server: ServerProcess) -> None:
    key = server.new_account("search@example.com")
    with server.client(key=key) as client:
        fox = upload(client, png(), "A red fox in the snow")["fileId"]
        upload(client, png(), "A snowy mountain")
        upload(client, png(), "A fox cub", isTemporary=True)
        archived = upload(client, png(), "Another fox")["fileId"]
        client.post(f"/v1/files/{archived}/archive")
        found = client.post("/v1/files/search", json={"query": "fox snow"}).json()["results"]
        ranked = [(r["file"]["fileId"], r["similarity"]) for r in found]
        assert ranked[0] == (fox, 1.0)
        assert [s for _, s in ranked] == sorted((s for _, s in ranked), reverse=True)
        assert all(0 <= s <= 1 for _, s in ranked) and len(ranked) == 2
        assert archived not in {i for i, _ in ranked}
        nothing = client.post("/v1/files/search", json={"query": "zebra"}).json()
        assert nothing == {"results": []}


def test_a_task_output_is_a_file_found_by_its_prompt_and_rendered_when_read(
    server: ServerProcess,
) -> None:
    key = server.new_account("outputs@example.com")
    with server.client(key=key) as client:
        submitted = client.post(
            "/v1/generate", json={"model": "nanobanana", "prompt": "a lighthouse at dusk"}
        ).json()["data"]
        task = wait_for_task(client, submitted["id"])
        assert task["status"] == "completed"
        # Completed with its file record, and nothing more made for it while nobody asks.
        rows = server.query("SELECT id, status FROM files WHERE task_id = :t", t=task["id"])
        assert [status for _, status in rows] == ["stored"]
        found = client.post("/v1/files/search", json={"query": "lighthouse"}).json()["results"]
        assert [(hit["file"]["fileId"], hit["similarity"]) for hit in found] == [(rows[0][0], 1.0)]
        listed = found[0]["file"]  # a list shows it usable, its renditions not made
        assert listed["status"] == "ready" and listed["downloadSource"]["status"] == "ready"
        assert listed["thumbnailSource"]["status"] == "pending"
        first = client.get(f"/v1/files/{listed['fileId']}").json()
        assert first["status"] == "processing"  # read by id: its renditions are made now
        file = wait_for_file(client, first["fileId"])
    assert file["description"] == "a lighthouse at dusk" and file["type"] == "IMAGE"
    output = httpx.get(task["output"]["url"]).content
    assert httpx.get(file["downloadSource"]["url"]).content == output
    assert (file["status"], file["thumbnailSource"]["status"]) == ("ready", "ready")
    assert file["updatedAt"] >= first["updatedAt"]


def test_public_preview_streams_a_video_without_a_key(client: httpx.Client, tmp_path: Path) -> None:
    file = upload(client, mp4(tmp_path / "clip.mp4"), "a short clip")
    assert (file["status"], file["type"]) == ("ready", "VIDEO")
    assert 1.5 < file["durationSeconds"] < 2.5
    assert file["isPublicPreviewEnabled"] is False and file["publicHlsUrl"] is None
    enabled = client.post(f"/v1/files/{file['fileId']}/enable-public-preview").json()
    assert enabled["isPublicPreviewEnabled"] is True
    assert enabled["publicPlaybackId"].startswith("vg_play_")
    ready = wait_for_file(client, file["fileId"], until=("ready",))
    playlist = httpx.get(ready["publicHlsUrl"])
    assert playlist.status_code == 200 and "#EXT-X-ENDLIST" in playlist.text
    segments = [line for line in playlist.text.splitlines() if line.startswith("http")]
    assert segments and all(
        httpx.get(s, follow_redirects=True).status_code == 200 for s in segments
    )
    private = httpx.get(ready["hlsSource"]["url"])
    assert private.status_code == 200 and "#EXTINF" in private.text
    embed = httpx.get(ready["publicHlsUrl"].replace("/public/", "/embed/").rsplit("/", 1)[0])
    assert embed.status_code == 200 and ready["publicHlsUrl"] in embed.text
    disabled = client.post(f"/v1/files/{file['fileId']}/disable-public-preview").json()
    assert disabled["isPublicPreviewEnabled"] is False and disabled["publicHlsUrl"] is None
    assert httpx.get(ready["publicHlsUrl"]).status_code == 404
    assert httpx.get(segments[0]).status_code == 404


def test_public_preview_is_for_video_and_audio(client: httpx.Client) -> None:
    file = upload(client, png())
    refused = client.post(f"/v1/files/{file['fileId']}/enable-public-preview")
    assert refused.status_code == 400 and "video and audio" in refused.json()["message"]


def test_egg_output_urls_still_work_without_a_key(server: ServerProcess) -> None:
    with server.client() as client:
        submitted = client.post("/v1/generate", json={"model": "nanobanana", "prompt": "x"})
        task = wait_for_task(client, submitted.json()["data"]["id"])
    response = httpx.get(task["output"]["url"])
    assert response.status_code == 200 and response.content.startswith(b"\x89PNG")
    ranged = httpx.get(task["output"]["url"], headers={"Range": "bytes=0-3"})
    assert ranged.status_code == 206 and ranged.content == b"\x89PNG"
