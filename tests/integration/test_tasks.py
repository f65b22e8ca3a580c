"""The task lifecycle end to end on the embedded default: submit, work, poll, list, files."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import av
import httpx
import pytest
from PIL import Image

from tests.contract import TASK_FIELDS
from tests.helpers import LocalHTTPServer, ServerProcess, wait_for_task

TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def submit(client: httpx.Client, **body: object) -> dict[str, object]:
    response = client.post("/v1/generate", json={"model": "nanobanana", "prompt": "a fox", **body})
    assert response.status_code == 202, response.text
    data: dict[str, object] = response.json()["data"]
    return data


def test_submit_returns_the_pending_task_at_once(server: ServerProcess) -> None:
    with server.client() as client:
        response = client.post("/v1/generate", json={"model": "nanobanana-pro", "prompt": "a cat"})
    assert response.status_code == 202
    body = response.json()
    assert body["error"] is None
    task = body["data"]
    assert list(task) == TASK_FIELDS
    assert re.fullmatch(r"gen_[a-z0-9]{12,}", task["id"])
    assert task["status"] == "pending"
    assert task["type"] == "image_generate"
    assert task["cost"] == "$0.00"
    assert TIME.match(task["created_at"])
    assert task["output"] is None and task["started_at"] is None and task["completed_at"] is None


def test_image_task_completes_with_files_cost_and_charge(server: ServerProcess) -> None:
    key = server.new_account("life@example.com", balance="1.00")
    with server.client(key=key) as client:
        task_id = submit(client, model="nanobanana-pro", num_outputs=2)["id"]
        task = wait_for_task(client, str(task_id))
        account = client.get("/v1/account").json()["data"]
    assert task["status"] == "completed", task
    assert task["error"] is None
    assert task["cost"] == "$0.0320"
    assert all(TIME.match(task[k]) for k in ("created_at", "started_at", "completed_at"))
    assert task["created_at"] <= task["started_at"] <= task["completed_at"]
    urls = task["output"]["urls"]
    assert len(urls) == 2 and task["output"]["url"] == urls[0]
    assert all(u.startswith(server.url + "/files/") for u in urls)
    images = [httpx.get(u).content for u in urls]
    assert all(i.startswith(b"\x89PNG") for i in images)
    assert images[0] != images[1]
    assert account["balance"] == "$0.9680" and account["reserved"] == "$0.0000"


@pytest.mark.parametrize("aspect_ratio", ["16:9", "9:16"])
@pytest.mark.parametrize(("resolution", "long_side"), [("1k", 1024), ("2k", 2048), ("4k", 4096)])
def test_png_size_per_aspect_ratio_and_resolution(
    server: ServerProcess, aspect_ratio: str, resolution: str, long_side: int
) -> None:
    with server.client() as client:
        task_id = submit(client, aspect_ratio=aspect_ratio, resolution=resolution)["id"]
        task = wait_for_task(client, str(task_id))
    response = httpx.get(task["output"]["url"])
    assert response.headers["content-type"] == "image/png"
    size = Image.open(io.BytesIO(response.content)).size
    short_side = round(long_side * 9 / 16)
    assert size == ((long_side, short_side) if aspect_ratio == "16:9" else (short_side, long_side))


@pytest.mark.parametrize("duration", [1, 3])
def test_video_is_an_h264_mp4_of_exactly_the_duration(server: ServerProcess, duration: int) -> None:
    with server.client() as client:
        task_id = submit(client, model="veo3.1", duration=duration, aspect_ratio="9:16")["id"]
        task = wait_for_task(client, str(task_id))
    assert task["status"] == "completed", task
    assert task["type"] == "video_generate"
    assert task["cost"] == f"${0.08 * duration:.4f}"
    assert task["output"]["duration_seconds"] == duration
    response = httpx.get(task["output"]["url"])
    assert response.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(response.content)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert container.duration / 1_000_000 == pytest.approx(duration, abs=0.05)
        assert stream.height > stream.width


def test_listing_pages_newest_first_with_filters(server: ServerProcess) -> None:
    key = server.new_account("lister@example.com")
    with server.client(key=key) as client:
        ids = [submit(client, prompt=f"p{i}")["id"] for i in range(5)]
        video = submit(client, model="veo3.1", duration=1)["id"]
        page1 = client.get("/v1/tasks?page=1&per_page=2").json()["data"]
        page3 = client.get("/v1/tasks?page=3&per_page=2").json()["data"]
        beyond = client.get("/v1/tasks?page=9&per_page=2").json()["data"]
        by_model = client.get("/v1/tasks?model=veo3.1").json()["data"]
        wait_for_task(client, str(video))
        for task_id in ids:
            wait_for_task(client, str(task_id))
        done = client.get("/v1/tasks?status=completed&per_page=100").json()["data"]
        pending = client.get("/v1/tasks?status=pending").json()["data"]
    assert [t["id"] for t in page1["items"]] == [video, ids[4]]
    assert page1["pagination"] == {
        "page": 1,
        "per_page": 2,
        "total": 6,
        "total_pages": 3,
        "cursor": page1["pagination"]["cursor"],
    }
    assert isinstance(page1["pagination"]["cursor"], str)
    assert [t["id"] for t in page3["items"]] == [ids[1], ids[0]]
    assert page3["pagination"]["cursor"] is None  # the last page
    assert beyond["items"] == [] and beyond["pagination"]["total"] == 6
    assert [t["id"] for t in by_model["items"]] == [video]
    assert done["pagination"]["total"] == 6 and pending["pagination"]["total"] == 0


def test_a_cursor_walks_history_without_repeats_or_gaps(server: ServerProcess) -> None:
    key = server.new_account("walker@example.com")
    with server.client(key=key) as client:
        ids = [submit(client, prompt=f"p{i}")["id"] for i in range(5)]
        first = client.get("/v1/tasks?per_page=2").json()["data"]
        submit(client, prompt="newer")  # would push ids[2] onto page 2 of an offset walk
        video = submit(client, model="veo3.1", duration=1)["id"]
        pages = [first]
        while pages[-1]["pagination"]["cursor"]:
            cursor = pages[-1]["pagination"]["cursor"]
            pages.append(client.get(f"/v1/tasks?per_page=2&cursor={cursor}").json()["data"])
        images = client.get("/v1/tasks?model=nanobanana&per_page=3").json()["data"]
        cursor = images["pagination"]["cursor"]
        rest = client.get(f"/v1/tasks?model=nanobanana&per_page=3&cursor={cursor}").json()["data"]
    assert [[t["id"] for t in p["items"]] for p in pages] == [
        [ids[4], ids[3]],
        [ids[2], ids[1]],
        [ids[0]],
    ]
    assert [p["pagination"]["page"] for p in pages] == [1, None, None]
    assert [p["pagination"]["total"] for p in pages[1:]] == [7, 7]
    assert video not in [t["id"] for t in images["items"] + rest["items"]]
    assert [t["id"] for t in rest["items"]] == [ids[2], ids[1], ids[0]]
    assert rest["pagination"]["cursor"] is None and rest["pagination"]["total"] == 6


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("cursor=garbage", "cursor 'garbage' is not valid"),
        ("cursor=dDEueA", "cursor 'dDEueA' is not valid"),  # t1.x
        ("cursor=%F0%9F%90%A3", "is not valid"),
        ("cursor=dDEuOTIyMzM3MjAzNjg1NDc3NTgwOA", "is not valid"),  # t1.2**63: past any position
        ("cursor=dDEuMTU&page=2", "pass either page or cursor, not both"),
    ],
)
def test_a_bad_cursor_is_refused(server: ServerProcess, query: str, says: str) -> None:
    with server.client() as client:
        response = client.get(f"/v1/tasks?{query}")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "BAD_REQUEST" and says in error["message"]


def test_another_accounts_task_is_not_found(server: ServerProcess) -> None:
    with server.client() as client:
        task_id = submit(client)["id"]
    other = server.new_account("other@example.com")
    with server.client(key=other) as client:
        response = client.get(f"/v1/tasks/{task_id}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "NOT_FOUND"
        assert client.get("/v1/tasks/gen_doesnotexist00").status_code == 404
        assert all(t["id"] != task_id for t in client.get("/v1/tasks").json()["data"]["items"])


def test_unknown_file_is_not_found(server: ServerProcess) -> None:
    response = httpx.get(server.url + "/files/AAAAAAAAAAAAAAAAAAAAAAAA/0.png")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"
    assert httpx.get(server.url + "/files/..%2F..%2Fhatchery.db/0.png").status_code == 404


def _png(color: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def origin() -> Iterator[LocalHTTPServer]:
    pages = {
        "/red.png": (200, {"Content-Type": "image/png"}, _png((255, 0, 0))),
        "/notimage.png": (200, {"Content-Type": "image/png"}, b"hello, not an image"),
        "/missing.png": (404, {}, b"no"),
    }
    server = LocalHTTPServer(lambda path, method: pages.get(path, (404, {}, b"")))
    yield server
    server.close()


def test_reference_images_are_fetched_and_used(
    server: ServerProcess, origin: LocalHTTPServer
) -> None:
    with server.client() as client:
        plain = wait_for_task(client, str(submit(client, prompt="ref test")["id"]))
        task_id = submit(client, prompt="ref test", image_urls=[origin.url("/red.png")])["id"]
        with_ref = wait_for_task(client, str(task_id))
    assert with_ref["status"] == "completed", with_ref
    assert [r.path for r in origin.received] == ["/red.png"]
    assert httpx.get(plain["output"]["url"]).content != httpx.get(with_ref["output"]["url"]).content


@pytest.mark.parametrize(
    ("path", "reason"), [("/notimage.png", "not an image"), ("/missing.png", "HTTP 404")]
)
def test_bad_reference_fails_the_task_and_costs_nothing(
    server: ServerProcess, origin: LocalHTTPServer, path: str, reason: str
) -> None:
    key = server.new_account(f"ref{path[1:4]}@example.com", balance="0.01")
    with server.client(key=key) as client:
        task_id = submit(client, image_urls=[origin.url(path)])["id"]
        task = wait_for_task(client, str(task_id))
        account = client.get("/v1/account").json()["data"]
    assert task["status"] == "failed"
    assert task["cost"] == "$0.00"
    assert task["output"] is None
    assert "image_urls[0]" in task["error"] and reason in task["error"]
    assert task["completed_at"] is not None
    assert account["available"] == "$0.0100"


def test_healthz(server: ServerProcess) -> None:
    response = httpx.get(server.url + "/healthz")
    assert response.status_code == 200
    assert response.json() == {"data": {"status": "ok"}, "error": None}
    assert response.headers["x-request-id"]
