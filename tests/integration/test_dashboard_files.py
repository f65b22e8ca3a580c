"""The dashboard's files pages over HTTP: an upload through the session's presigned flow shows in
the list with its preview, a file's page with its facts and download, archive (with and without
the CSRF token), the public preview's embed link, filters and pages, and other accounts' files."""

from __future__ import annotations

import html
import io
import re
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.dashboard_helpers import Dashboard, new_signed_in_account
from tests.files_helpers import mp4, png
from tests.helpers import ServerProcess, wait_for_task

EMBED = re.compile(r'<input type="text" id="embed-link" readonly value="([^"]+)">')


@pytest.fixture(scope="module")
def dash(server: ServerProcess) -> Iterator[Dashboard]:
    dashboard = new_signed_in_account(server, "files-page@example.com")
    yield dashboard
    dashboard.close()


def wait_ready(dash: Dashboard, file_id: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        file: dict[str, Any] = dash.api("GET", f"/v1/files/{file_id}").json()
        if file["status"] in ("ready", "failed"):
            return file
        time.sleep(0.1)
    raise AssertionError(f"file {file_id} is still {file['status']}")


def upload(dash: Dashboard, data: bytes, name: str, content_type: str) -> dict[str, Any]:
    """What static/files.js does: create the upload with the session, PUT the bytes, wait."""
    dash.get("/dashboard/files")
    created = dash.api("POST", "/v1/files/upload", json={"displayName": name})
    assert created.status_code == 200, created.text
    body = created.json()
    put = httpx.put(body["uploadUrl"], content=data, headers={"Content-Type": content_type})
    assert put.status_code == 200, put.text
    file = wait_ready(dash, body["fileId"])
    assert file["status"] == "ready", file
    return file


def card(page: str, file_id: str) -> str:
    """The list's card of a file (the page's HTML from it to the end of its item)."""
    found = re.search(rf'<li class="card file-card" id="card-{file_id}".*?</li>', page, re.S)
    assert found, f"no card for {file_id}"
    return found.group(0)


def attribute(fragment: str, tag: str, name: str) -> str:
    found = re.search(rf"<{tag}\b[^>]*\b{name}=\"([^\"]*)\"", fragment)
    assert found, f"no <{tag} {name}> in {fragment}"
    return html.unescape(found.group(1))


@pytest.fixture(scope="module")
def photo(dash: Dashboard) -> dict[str, Any]:
    return upload(dash, png(64, 48), "Red square <b>", "image/png")


def test_an_upload_through_the_session_is_listed_with_its_preview(
    dash: Dashboard, photo: dict[str, Any]
) -> None:
    page = dash.get("/dashboard/files")
    assert page.status_code == 200
    assert 'class="dropzone"' in page.text
    assert '<label for="upload-input">' in page.text and 'id="upload-input"' in page.text
    assert 'role="status"' in page.text and "/static/files.js" in page.text
    item = card(page.text, photo["fileId"])
    assert "Red square &lt;b&gt;" in item and "<b>" not in item  # escaped
    assert 'class="badge ready"' in item and "image" in item
    assert f'href="/dashboard/files/{photo["fileId"]}"' in item
    thumbnail = httpx.get(attribute(item, "img", "src"))  # no session: a signed URL
    assert thumbnail.status_code == 200
    assert Image.open(io.BytesIO(thumbnail.content)).size[0] <= 64


def test_a_file_page_shows_its_facts_preview_and_download(
    dash: Dashboard, photo: dict[str, Any]
) -> None:
    page = dash.get(f"/dashboard/files/{photo['fileId']}")
    assert page.status_code == 200
    facts = re.search(r'<dl class="facts" id="file-facts">.*?</dl>', page.text, re.S)
    assert facts
    for fact in (
        "image",
        "64 x 48 pixels",
        "image/png",
        photo["fileId"],
        f"{photo['fileBytes']} bytes",
    ):
        assert fact in facts.group(0)
    preview = re.search(r'<div class="media" id="file-preview">.*?</div>', page.text, re.S)
    assert preview and httpx.get(attribute(preview.group(0), "img", "src")).status_code == 200
    original = re.search(r'id="download" href="([^"]+)"', page.text)
    assert original and httpx.get(html.unescape(original.group(1))).content == png(64, 48)
    assert "Public preview is for video and audio files" in page.text
    assert 'id="public-preview-on"' not in page.text


def test_archive_needs_the_csrf_token_and_takes_the_file_out_of_the_list(
    dash: Dashboard, server: ServerProcess
) -> None:
    file = upload(dash, png(20, 20, (0, 0, 200)), "to archive", "image/png")
    path = f"/dashboard/files/{file['fileId']}"
    dash.get(path)
    refused = dash.post(f"{path}/archive", {}, csrf="")
    assert refused.status_code == 403 and "CSRF" in refused.text
    wrong = dash.post(f"{path}/archive", {}, csrf="not-the-token")
    assert wrong.status_code == 403
    assert f"card-{file['fileId']}" in dash.get("/dashboard/files").text

    done = dash.post(f"{path}/archive", {})
    assert done.status_code == 303 and done.headers["location"].startswith(path + "?notice=")
    assert f"card-{file['fileId']}" not in dash.get("/dashboard/files").text
    listed = dash.get("/dashboard/files", archived="1").text
    assert 'class="badge archived"' in card(listed, file["fileId"])
    page = dash.get(path).text
    assert "Archived on" in page and 'id="archive-button"' not in page
    assert server.query("SELECT archived_at FROM files WHERE id = :i", i=file["fileId"])[0][0]


def test_public_preview_shows_an_embed_link_that_plays_without_a_key(
    dash: Dashboard, tmp_path: Path
) -> None:
    clip = upload(dash, mp4(tmp_path / "clip.mp4"), "a clip", "video/mp4")
    path = f"/dashboard/files/{clip['fileId']}"
    page = dash.get(path).text
    assert 'id="public-preview-on"' in page and 'id="embed-link"' not in page
    assert re.search(r"<video [^>]*controls", page)

    assert dash.post(f"{path}/public-preview", {"on": "1"}, csrf="").status_code == 403
    turned_on = dash.post(f"{path}/public-preview", {"on": "1"})
    assert turned_on.status_code == 303
    wait_ready(dash, clip["fileId"])  # its stream is made
    page = dash.get(path).text
    embed = EMBED.search(page)
    assert embed and 'data-copy="#embed-link"' in page and '<label for="embed-link">' in page
    link = html.unescape(embed.group(1))
    assert "/embed/vg_play_" in link
    played = httpx.get(link)  # no session, no key
    assert played.status_code == 200 and "index.m3u8" in played.text

    assert dash.post(f"{path}/public-preview", {"on": "0"}).status_code == 303
    page = dash.get(path).text
    assert not EMBED.search(page) and 'id="public-preview-on"' in page
    assert httpx.get(link).status_code == 404


def wav(seconds: float = 1.0, rate: int = 8000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(rate)
        sound.writeframes(b"\x00\x10" * int(seconds * rate))
    return out.getvalue()


def test_audio_plays_in_the_list_and_on_its_page(dash: Dashboard) -> None:
    sound = upload(dash, wav(), "a tone", "audio/wav")
    item = card(dash.get("/dashboard/files").text, sound["fileId"])
    assert re.search(r"<audio controls", item) and "<img" not in item
    assert httpx.get(attribute(item, "audio", "src")).status_code == 200
    page = dash.get(f"/dashboard/files/{sound['fileId']}").text
    assert "1.0 s" in page and 'id="public-preview-on"' in page
    assert httpx.get(attribute(page, "audio", "src")).status_code == 200


def test_filters_and_pages(server: ServerProcess, tmp_path: Path) -> None:
    other = new_signed_in_account(server, "many-files@example.com")
    try:
        other.get("/dashboard/files")
        ids = [
            other.api("POST", "/v1/files/upload", json={"displayName": f"f{i}"}).json()["fileId"]
            for i in range(26)
        ]
        first = other.get("/dashboard/files").text
        second = other.get("/dashboard/files", page="2").text
        assert first.count('class="card file-card"') == 24
        assert second.count('class="card file-card"') == 2
        assert 'href="/dashboard/files?page=2"' in first and 'rel="prev"' in second
        assert all(f"card-{i}" in first + second for i in ids)
        assert 'class="badge uploading"' in first
        images = other.get("/dashboard/files", type="IMAGE").text
        assert 'id="no-files"' in images  # nothing has been read as an image yet
        assert other.get("/dashboard/files", type="PDF").status_code == 400
        assert other.get("/dashboard/files", page="0").status_code == 400
    finally:
        other.close()


def test_the_type_filter_keeps_to_one_kind(dash: Dashboard, photo: dict[str, Any]) -> None:
    images = dash.get("/dashboard/files", type="IMAGE").text
    assert f"card-{photo['fileId']}" in images
    videos = dash.get("/dashboard/files", type="VIDEO").text
    assert f"card-{photo['fileId']}" not in videos


def test_a_task_output_links_to_its_task(dash: Dashboard, server: ServerProcess) -> None:
    dash.get("/dashboard/files")
    submitted = dash.api("POST", "/v1/generate", json={"model": "nanobanana", "prompt": "a kite"})
    assert submitted.status_code == 202, submitted.text
    task = wait_for_task(dash.http, submitted.json()["data"]["id"])  # the session reads it too
    assert task["status"] == "completed"
    [(file_id,)] = server.query("SELECT id FROM files WHERE task_id = :t", t=task["id"])
    item = card(dash.get("/dashboard/files").text, file_id)
    assert httpx.get(attribute(item, "img", "src")).status_code == 200  # the original, for now
    page = dash.get(f"/dashboard/files/{file_id}").text
    assert f'href="/dashboard/tasks/{task["id"]}"' in page


def test_another_accounts_file_and_a_malformed_id_are_not_found(
    dash: Dashboard, server: ServerProcess, photo: dict[str, Any]
) -> None:
    stranger = new_signed_in_account(server, "stranger-files@example.com")
    try:
        path = f"/dashboard/files/{photo['fileId']}"
        page = stranger.get(path)
        assert page.status_code == 404 and "Not found" in page.text
        assert "text/html" in page.headers["content-type"]
        assert stranger.post(f"{path}/archive", {}).status_code == 404
        assert stranger.post(f"{path}/public-preview", {"on": "1"}).status_code == 404
        assert f"card-{photo['fileId']}" not in stranger.get("/dashboard/files").text
        assert stranger.get("/dashboard/files/not-a-file").status_code == 404
        assert stranger.post("/dashboard/files/not-a-file/archive", {}).status_code == 404
    finally:
        stranger.close()
    assert dash.get(path).status_code == 200  # still there for its owner


def test_signed_out_the_files_page_asks_to_sign_in(server: ServerProcess) -> None:
    response = httpx.get(server.url + "/dashboard/files")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/dashboard/sign-in?next=")
