"""The SDK over an ``httpx.MockTransport``, for answers a real server does not give: malformed
data, undecodable bodies, redirects to a file host, and polls that fail while a task runs."""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hatchery.client import (
    APIConnectionError,
    APIError,
    Client,
    ConfigurationError,
    NotFoundError,
    ServiceUnavailableError,
    Task,
    WaitTimeoutError,
)
from hatchery.client._base import PollSchedule, partial_file

API = "http://api.test"
TASK_ID = "gen_abcdefghijklmnop"
Handler = Callable[[httpx.Request], httpx.Response]


def envelope(data: Any, status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"data": data, "error": None}, headers=headers)


def failure(status: int, code: Any = "SERVICE_UNAVAILABLE", **headers: str) -> httpx.Response:
    error = {"code": code, "message": "m"}
    return httpx.Response(status, json={"data": None, "error": error}, headers=headers)


def task_json(status: str, **extra: Any) -> dict[str, Any]:
    return {"id": TASK_ID, "status": status, "model": "nanobanana", "cost": "$0.00", **extra}


def client(handler: Handler, **options: Any) -> Client:
    http = httpx.Client(transport=httpx.MockTransport(handler))
    return Client(api_key="hk_test", base_url=API, http_client=http, **options)


def script(*steps: httpx.Response | Exception) -> Iterator[httpx.Response | Exception]:
    yield from steps


def replay(steps: Iterator[httpx.Response | Exception], seen: list[httpx.Request]) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        step = next(steps)
        if isinstance(step, Exception):
            raise step
        return step

    return handle


@pytest.mark.parametrize(
    "data",
    [None, [1], {"status": "completed"}, task_json("completed", created_at="yesterday"), "x"],
)
def test_a_task_that_is_not_shaped_like_one_is_an_api_error(data: Any) -> None:
    with client(lambda r: envelope(data, **{"X-Request-ID": "r1"})) as c:
        with pytest.raises(APIError, match="cannot read") as caught:
            c.tasks.get(TASK_ID)
    assert type(caught.value) is APIError and caught.value.request_id == "r1"


def test_a_listing_or_account_that_is_not_shaped_like_one_is_an_api_error() -> None:
    with client(lambda r: envelope({"items": None, "pagination": {"page": 1}})) as c:
        with pytest.raises(APIError, match="cannot read"):
            c.tasks.list()
    with client(lambda r: envelope({"items": [], "pagination": {"page": "one"}})) as c:
        with pytest.raises(APIError, match="cannot read"):
            c.tasks.list()
    with client(lambda r: envelope(["not", "an", "account"])) as c:
        with pytest.raises(APIError, match="cannot read"):
            c.account()


def test_an_error_code_that_is_not_a_string_is_typed_by_status() -> None:
    with client(lambda r: failure(404, code=["NOT_FOUND"])) as c:
        with pytest.raises(NotFoundError) as caught:
            c.tasks.get(TASK_ID)
    assert caught.value.code == "NOT_FOUND"


def test_an_undecodable_body_is_an_api_error_not_an_httpx_one() -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"not gzip", headers={"Content-Encoding": "gzip"})

    with client(broken) as c, pytest.raises(APIError, match="unreadable answer"):
        c.account()


def test_a_non_ascii_key_is_refused_before_sending() -> None:
    with pytest.raises(ConfigurationError, match="HTTP header"):
        Client(api_key="hk_clé", base_url=API)


def test_wait_rides_out_failed_polls_until_the_task_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr(time, "sleep", sleeps.append)
    seen: list[httpx.Request] = []
    steps = script(
        envelope(task_json("processing")),
        failure(503),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        failure(502, "UPSTREAM_ERROR"),
        failure(429, "RATE_LIMITED"),
        envelope(task_json("completed", output={"urls": [f"{API}/files/t/0.png"]})),
    )
    with client(replay(steps, seen), max_retries=0) as c:
        done = c.tasks.wait(TASK_ID, timeout=60)
    assert done.status == "completed" and done.urls == [f"{API}/files/t/0.png"]
    assert len(seen) == 7 and len(sleeps) == 6
    assert sleeps == sorted(sleeps)  # the schedule keeps growing through the failures


def test_wait_polls_no_sooner_than_a_retry_after_asks(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr(time, "sleep", sleeps.append)
    steps = script(
        envelope(task_json("processing"), **{"Retry-After": "7"}),
        envelope(task_json("processing")),
        failure(429, "RATE_LIMITED", **{"Retry-After": "4"}),
        envelope(task_json("completed")),
    )
    with client(replay(steps, [])) as c:
        assert c.tasks.wait(TASK_ID, timeout=60).status == "completed"
    assert sleeps[0] == 7.0 and sleeps[1] < 1.0 and sleeps[2] == 4.0


def test_wait_polls_on_its_schedule_when_the_server_ignores_prefer_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The Egg API does not hold a poll: no ``Preference-Applied``, so the wait sleeps between
    polls as before; a server that held the poll is asked again at once."""
    sleeps: list[float] = []
    monkeypatch.setattr(time, "sleep", sleeps.append)
    seen: list[httpx.Request] = []
    held = {"Preference-Applied": "wait=20"}
    steps = script(
        envelope(task_json("pending")),
        envelope(task_json("processing")),
        envelope(task_json("processing"), **held),
        envelope(task_json("completed"), **held),
    )
    with client(replay(steps, seen)) as c:
        assert c.tasks.wait(TASK_ID, timeout=None).status == "completed"
    assert [r.headers.get("Prefer") for r in seen] == [None] + ["wait=20"] * 3
    assert sleeps[:2] == [0.25, 0.375] and sleeps[2] < 0.05
    timeouts = [r.extensions["timeout"]["read"] for r in seen]
    assert timeouts == [60.0] + [80.0] * 3  # the client's 60 s, plus the 20 s hold


def test_a_stream_that_is_not_an_event_stream_is_an_api_error() -> None:
    with client(lambda r: envelope(task_json("pending"))) as c:
        with pytest.raises(APIError, match="did not answer with an event stream"):
            next(c.tasks.stream(TASK_ID))


def test_a_stream_is_retried_before_it_starts_like_any_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(time, "sleep", lambda s: None)
    seen: list[httpx.Request] = []
    body = b"id: 1\nevent: cancelled\ndata: " + json.dumps(task_json("cancelled")).encode()
    stream = httpx.Response(
        200, content=body + b"\n\n", headers={"Content-Type": "text/event-stream"}
    )
    steps = script(failure(503), httpx.ConnectError("refused"), stream)
    with client(replay(steps, seen)) as c:
        (event,) = c.tasks.stream(TASK_ID)
    assert event.terminal and event.task is not None and event.task.status == "cancelled"
    assert len(seen) == 3 and seen[0].url.path == f"/v1/tasks/{TASK_ID}/events"


def test_wait_raises_what_is_not_transient_at_once() -> None:
    seen: list[httpx.Request] = []
    steps = script(envelope(task_json("processing")), failure(404, "NOT_FOUND"))
    with client(replay(steps, seen)) as c, pytest.raises(NotFoundError):
        c.tasks.wait(TASK_ID, timeout=60)
    assert len(seen) == 2


def test_a_wait_ends_at_its_deadline_while_polls_fail() -> None:
    answers = iter([envelope(task_json("pending"))])

    def pending_then_down(request: httpx.Request) -> httpx.Response:
        return next(answers, None) or failure(503)

    began = time.monotonic()
    with client(pending_then_down) as c, pytest.raises(WaitTimeoutError) as caught:
        c.tasks.wait(TASK_ID, timeout=1.0)
    assert time.monotonic() - began < 5  # not the 3 x 60 s of retried requests
    assert caught.value.task.status == "pending"
    assert isinstance(caught.value.__cause__, ServiceUnavailableError)

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    with client(down) as c, pytest.raises(APIConnectionError):  # no task seen: the error itself
        c.tasks.wait(TASK_ID, timeout=0.5)


def test_a_poll_is_bounded_by_the_time_left_and_not_retried_by_itself() -> None:
    clock = iter([100.0, 109.5]).__next__
    schedule = PollSchedule(timeout=10.0, clock=clock)
    with client(lambda r: envelope(None)) as c:
        call = c._task_call(TASK_ID, schedule)
        plain = c._task_call("../x")
    assert call.timeout == 0.5 and not call.retry
    assert plain.timeout is None and plain.retry and plain.url == f"{API}/v1/tasks/..%2Fx"


def test_a_poll_honours_retry_after_up_to_a_minute() -> None:
    schedule = PollSchedule(timeout=None)
    assert schedule.next_delay(hint=3600.0) == 60.0


def test_downloads_follow_redirects_without_taking_the_key_along(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def files(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "api.test":
            return httpx.Response(302, headers={"Location": "http://cdn.test/signed/0.png"})
        return httpx.Response(200, content=b"\x89PNG-bytes")

    done = Task.from_json(task_json("completed", output={"urls": [f"{API}/files/t/0.png"]}))
    with client(files) as c:
        (path,) = c.download(done, tmp_path)
    assert path.read_bytes() == b"\x89PNG-bytes"
    assert [r.url.host for r in seen] == ["api.test", "cdn.test"]
    assert seen[0].headers["Authorization"] == "Bearer hk_test"
    assert "Authorization" not in seen[1].headers


def test_an_unfinished_task_is_refused_before_anything_is_created(tmp_path: Path) -> None:
    with client(lambda r: envelope(None)) as c, pytest.raises(ValueError, match="processing"):
        c.download(Task.from_json(task_json("processing")), tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_file_names_cannot_leave_the_directory(tmp_path: Path) -> None:
    hostile = task_json("completed", output={"urls": [f"{API}/files/t/0.png"]})
    hostile["id"] = "../../etc/passwd"
    with client(lambda r: httpx.Response(200, content=b"x")) as c:
        (path,) = c.download(Task.from_json(hostile), tmp_path)
    assert path.parent == tmp_path and path.name == ".._.._etc_passwd-0.png"


def test_a_file_appears_whole_even_when_written_twice_at_once(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    started = threading.Barrier(2)

    def write(payload: bytes) -> None:
        with partial_file(target) as out:
            started.wait()
            out.write(payload)

    writers = [threading.Thread(target=write, args=(bytes([n]) * 100_000,)) for n in (1, 2)]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    assert target.read_bytes() in (b"\x01" * 100_000, b"\x02" * 100_000)
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
    with pytest.raises(RuntimeError), partial_file(target) as out:
        out.write(b"half")
        raise RuntimeError("the connection dropped")
    assert len(target.read_bytes()) == 100_000 and len(list(tmp_path.iterdir())) == 1


def test_gzip_bodies_still_decode() -> None:
    body = gzip.compress(json.dumps({"data": {"email": "a@b"}, "error": None}).encode())
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    with client(lambda r: httpx.Response(200, content=body, headers=headers)) as c:
        assert c.account().email == "a@b"


def listing(ids: list[str], **pagination: Any) -> httpx.Response:
    tasks = [{**task_json("completed"), "id": task_id} for task_id in ids]
    return envelope({"items": tasks, "pagination": {"per_page": 2, **pagination}})


def test_iter_follows_the_servers_cursor() -> None:
    seen: list[httpx.Request] = []
    pages = script(
        listing(["gen_d", "gen_c"], page=1, total=3, total_pages=2, cursor="c1"),
        listing(["gen_a"], page=None, total=3, total_pages=2, cursor=None),
    )
    with client(replay(pages, seen)) as c:
        walked = [t.id for t in c.tasks.iter(per_page=2)]
    assert walked == ["gen_d", "gen_c", "gen_a"]
    assert [dict(r.url.params) for r in seen] == [
        {"page": "1", "per_page": "2"},
        {"cursor": "c1", "per_page": "2"},
    ]


def test_iter_walks_page_numbers_on_a_server_without_cursors() -> None:
    """The Egg API's own pagination has no cursor: the SDK walks page numbers and skips a task
    that a new submit pushed onto the next page."""
    seen: list[httpx.Request] = []
    pages = script(
        listing(["gen_d", "gen_c"], page=1, total=3, total_pages=2),
        listing(["gen_c", "gen_b"], page=2, total=4, total_pages=2),
    )
    with client(replay(pages, seen)) as c:
        walked = [t.id for t in c.tasks.iter(per_page=2)]
    assert walked == ["gen_d", "gen_c", "gen_b"]
    assert [r.url.params.get("page") for r in seen] == ["1", "2"]
