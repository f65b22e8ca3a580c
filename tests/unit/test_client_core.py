"""The SDK's decisions, without a network: configuration, the retry policy, Retry-After, the poll
schedule, how a response becomes data or a typed error, and where downloads go."""

from __future__ import annotations

import email.utils
import itertools
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from hatchery.client import (
    APIConnectionError,
    APIError,
    BadRequestError,
    Client,
    ConfigurationError,
    ConflictError,
    ForbiddenError,
    IdempotencyMismatchError,
    InsufficientBalanceError,
    InternalServerError,
    NotFoundError,
    RateLimitedError,
    ServiceUnavailableError,
    Task,
    TaskCancelledError,
    TaskFailedError,
    UnauthorizedError,
    UpstreamError,
    ValidationError,
    WaitTimeoutError,
)
from hatchery.client._base import (
    Call,
    Config,
    EventReader,
    PollSchedule,
    RetryPolicy,
    data_of,
    finished,
    idempotency_key,
    output_paths,
    prefer_wait,
    retry_after,
    unseen,
)

GET = Call("GET", "http://127.0.0.1:8000/v1/tasks/gen_x")
POST = Call("POST", "http://127.0.0.1:8000/v1/generate", json={"model": "nanobanana"})


def response(
    status: int, body: Any = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    content = json.dumps(body).encode() if body is not None else b""
    request = httpx.Request("GET", "http://127.0.0.1:8000/v1/x")
    return httpx.Response(status, content=content, headers=headers or {}, request=request)


def envelope_error(code: str, message: str = "m") -> dict[str, Any]:
    return {"data": None, "error": {"code": code, "message": message}}


def task(status: str, **extra: Any) -> Task:
    return Task.from_json({"id": "gen_abcdefghijklmnop", "status": status, **extra})


# configuration


def test_arguments_win_over_the_environment() -> None:
    env = {"HATCHERY_API_KEY": "hk_env", "HATCHERY_BASE_URL": "http://env:1"}
    config = Config.resolve("hk_arg", "http://arg:2/", 5.0, 1, env)
    assert (config.api_key, config.base_url) == ("hk_arg", "http://arg:2")
    config = Config.resolve(None, None, 5.0, 1, env)
    assert (config.api_key, config.base_url) == ("hk_env", "http://env:1")


def test_base_url_defaults_to_the_local_server() -> None:
    assert Config.resolve("k", None, 5.0, 1, {}).base_url == "http://127.0.0.1:8000"


@pytest.mark.parametrize(
    ("key", "url", "retries", "says"),
    [
        (None, None, 1, "HATCHERY_API_KEY"),
        ("k", "ftp://host", 1, "http(s)"),
        ("k", "127.0.0.1:8000", 1, "http(s)"),
        ("k", None, -1, "max_retries"),
    ],
)
def test_bad_configuration_is_refused(
    key: str | None, url: str | None, retries: int, says: str
) -> None:
    with pytest.raises(ConfigurationError, match=says.replace("(", r"\(").replace(")", r"\)")):
        Config.resolve(key, url, 5.0, retries, {})


# the retry policy


def policy(max_retries: int = 3) -> RetryPolicy:
    return RetryPolicy(max_retries, rand=lambda: 1.0)  # no jitter: the full backoff


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_gets_are_retried_on_overload_and_gateway_errors(status: int) -> None:
    assert policy().after_response(GET, 0, response(status)) == 0.5


@pytest.mark.parametrize("status", [200, 400, 401, 403, 404, 409, 413, 422, 500])
def test_other_statuses_are_final(status: int) -> None:
    assert policy().after_response(GET, 0, response(status)) is None
    assert policy().after_response(POST, 0, response(status)) is None


def test_a_submit_is_resent_only_when_nothing_was_done() -> None:
    assert policy().after_response(POST, 0, response(429)) is not None
    assert policy().after_response(POST, 0, response(503)) is not None
    assert policy().after_response(POST, 0, response(502)) is None
    assert policy().after_response(POST, 0, response(504)) is None
    unsent = APIConnectionError("refused", request_sent=False)
    sent = APIConnectionError("reset", request_sent=True)
    assert policy().after_error(POST, 0, unsent) is not None
    assert policy().after_error(POST, 0, sent) is None
    assert policy().after_error(GET, 0, sent) is not None


KEYED = Call("POST", POST.url, json=POST.json, headers={"Idempotency-Key": "k"})
CANCEL = Call("POST", "http://127.0.0.1:8000/v1/tasks/gen_x/cancel", safe=True)


@pytest.mark.parametrize("status", [409, 429, 500, 502, 503, 504])
def test_a_keyed_submit_is_resent_after_any_answer_that_may_change(status: int) -> None:
    assert policy().after_response(KEYED, 0, response(status)) == 0.5
    assert policy().after_response(KEYED, 0, response(409, headers={"Retry-After": "1"})) == 1.0


@pytest.mark.parametrize("status", [200, 202, 400, 401, 403, 404, 422])
def test_a_keyed_submit_is_not_resent_after_a_final_answer(status: int) -> None:
    assert policy().after_response(KEYED, 0, response(status)) is None


def test_a_keyed_submit_and_a_cancel_are_resent_when_the_answer_was_lost() -> None:
    sent = APIConnectionError("reset", request_sent=True)
    assert policy().after_error(KEYED, 0, sent) is not None
    assert policy().after_error(CANCEL, 0, sent) is not None
    assert policy().after_response(CANCEL, 0, response(502)) is not None
    assert policy().after_response(CANCEL, 0, response(409)) is None  # already ended
    assert policy().after_response(CANCEL, 0, response(500)) is None


def test_backoff_grows_exponentially_to_a_cap_with_jitter() -> None:
    full = RetryPolicy(10, rand=lambda: 1.0)
    assert [full.backoff(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    half = RetryPolicy(10, rand=lambda: 0.0)
    assert [half.backoff(n) for n in range(3)] == [0.25, 0.5, 1.0]


def test_retries_stop_at_the_maximum() -> None:
    assert policy(2).after_response(GET, 1, response(503)) is not None
    assert policy(2).after_response(GET, 2, response(503)) is None
    assert policy(0).after_response(GET, 0, response(503)) is None
    assert policy(0).after_error(GET, 0, APIConnectionError("x")) is None


def test_retry_after_is_honoured_up_to_a_minute() -> None:
    assert policy().after_response(GET, 0, response(429, headers={"Retry-After": "7"})) == 7.0
    assert policy().after_response(GET, 0, response(503, headers={"Retry-After": "60"})) == 60.0
    assert policy().after_response(GET, 0, response(429, headers={"Retry-After": "61"})) is None


def test_retry_after_parses_seconds_and_http_dates() -> None:
    now = 1_800_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert retry_after({"retry-after": "2.5"}) == 2.5
    assert retry_after({"retry-after": date}, now=now) == 30.0
    assert retry_after({"retry-after": email.utils.formatdate(now - 5)}, now=now) == 0.0
    assert retry_after({"retry-after": "soon"}) is None
    assert retry_after({"retry-after": "nan"}) is None
    assert retry_after({}) is None


# responses


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, "BAD_REQUEST", BadRequestError),
        (400, "VALIDATION_ERROR", ValidationError),
        (401, "UNAUTHORIZED", UnauthorizedError),
        (403, "FORBIDDEN", ForbiddenError),
        (403, "INSUFFICIENT_BALANCE", InsufficientBalanceError),
        (404, "NOT_FOUND", NotFoundError),
        (409, "CONFLICT", ConflictError),
        (422, "IDEMPOTENCY_MISMATCH", IdempotencyMismatchError),
        (429, "RATE_LIMITED", RateLimitedError),
        (500, "INTERNAL_ERROR", InternalServerError),
        (502, "UPSTREAM_ERROR", UpstreamError),
        (503, "SERVICE_UNAVAILABLE", ServiceUnavailableError),
    ],
)
def test_each_error_code_has_its_class(status: int, code: str, cls: type[APIError]) -> None:
    headers = {"X-Request-ID": "req-1", "Retry-After": "3"}
    with pytest.raises(cls) as caught:
        data_of(response(status, envelope_error(code, "what to fix"), headers))
    error = caught.value
    assert type(error) is cls
    assert (error.code, error.message, error.status) == (code, "what to fix", status)
    assert (error.request_id, error.retry_after) == ("req-1", 3.0)
    assert str(error) == f"{code}: what to fix"


def test_an_unknown_code_takes_the_class_of_its_status_and_keeps_its_code() -> None:
    with pytest.raises(ValidationError) as caught:
        data_of(response(422, envelope_error("UNPROCESSABLE")))
    assert caught.value.code == "UNPROCESSABLE"
    with pytest.raises(InternalServerError):
        data_of(response(507, envelope_error("INSUFFICIENT_STORAGE")))
    with pytest.raises(APIError) as other:
        data_of(response(418, envelope_error("TEAPOT")))
    assert type(other.value) is APIError and other.value.code == "TEAPOT"


def test_a_non_envelope_error_is_typed_by_status_with_its_text() -> None:
    request = httpx.Request("GET", "http://127.0.0.1:8000/v1/x")
    html = httpx.Response(502, text="<h1>Bad Gateway</h1>", request=request)
    with pytest.raises(UpstreamError, match="HTTP 502 Bad Gateway: <h1>Bad Gateway</h1>"):
        data_of(html)


def test_a_success_that_is_not_the_envelope_is_an_error() -> None:
    with pytest.raises(APIError, match="envelope"):
        data_of(response(200, ["not", "an", "envelope"]))
    assert data_of(response(200, {"data": {"id": 1}, "error": None})) == {"id": 1}


def test_a_submit_body_leaves_out_what_was_not_given() -> None:
    with Client(api_key="hk_x", base_url="http://h") as client:
        call = client._submit_call(
            {"model": "m", "prompt": "p", "duration": None, "image_urls": ("a", "b")}
        )
    assert (call.method, call.url) == ("POST", "http://h/v1/generate")
    assert call.json == {"model": "m", "prompt": "p", "image_urls": ["a", "b"]}


def test_a_submit_carries_a_new_or_the_given_key_and_its_hold() -> None:
    with Client(api_key="hk_x", base_url="http://h", timeout=30) as client:
        one = client._submit_call({"model": "m", "prompt": "p"})
        two = client._submit_call({"model": "m", "prompt": "p"})
        mine = client._submit_call({"model": "m", "prompt": "p"}, "order-1", wait=12)
    assert (
        one.keyed
        and one.idempotent
        and one.headers["Idempotency-Key"] != two.headers["Idempotency-Key"]
    )
    assert "Prefer" not in one.headers and one.timeout is None
    assert mine.headers == {"Idempotency-Key": "order-1", "Prefer": "wait=12"}
    assert mine.timeout == 42.0  # the client's 30 s, plus the 12 s the server may hold it


def test_a_held_get_has_its_timeout_lengthened_and_cancel_is_safe_to_resend() -> None:
    with Client(api_key="hk_x", base_url="http://h", timeout=30) as client:
        held = client._task_call("gen_x", wait=0)
        cancel = client._cancel_call("gen/x")
        events = client._events_call("gen_x", 7)
    assert held.headers == {"Prefer": "wait=0"} and held.timeout == 30.0
    assert (cancel.method, cancel.url) == ("POST", "http://h/v1/tasks/gen%2Fx/cancel")
    assert cancel.idempotent and not cancel.keyed and cancel.json is None
    assert events.url == "http://h/v1/tasks/gen_x/events" and events.stream
    assert events.headers["Last-Event-ID"] == "7"


@pytest.mark.parametrize(("wait", "sent"), [(0, 0), (60, 60), (5.0, 5), (None, None)])
def test_prefer_wait_takes_whole_seconds_from_0_to_60(wait: float | None, sent: int | None) -> None:
    assert prefer_wait(wait) == sent


@pytest.mark.parametrize("wait", [-1, 60.5, 61, 0.5, float("inf"), float("nan"), True, "5"])
def test_prefer_wait_refuses_anything_else(wait: Any) -> None:
    with pytest.raises(ValueError, match="whole seconds from 0 to 60"):
        prefer_wait(wait)


def test_an_idempotency_key_is_1_to_255_printable_ascii_characters() -> None:
    assert idempotency_key("a") == "a" and idempotency_key("~" * 255) == "~" * 255
    assert idempotency_key("with inner space") == "with inner space"
    assert len(idempotency_key(None)) == 32
    for bad in ("", "x" * 256, "é", "new\nline", "trailing "):
        with pytest.raises(ValueError, match="1 to 255 printable ASCII"):
            idempotency_key(bad)


# waiting


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_polls_start_short_and_back_off_to_a_cap() -> None:
    schedule = PollSchedule(timeout=None, clock=Clock())
    delays = [schedule.next_delay() for _ in range(10)]
    assert delays[0] == 0.25
    assert all(b >= a for a, b in itertools.pairwise(delays))
    assert delays[-1] == 5.0


def test_polls_honour_retry_after_and_the_deadline() -> None:
    clock = Clock()
    schedule = PollSchedule(timeout=10.0, clock=clock)
    schedule.polled(task("pending"))
    assert schedule.next_delay(hint=3.0) == 3.0
    clock.now += 9.0
    assert schedule.next_delay(hint=3.0) == pytest.approx(1.0)
    clock.now += 1.0
    with pytest.raises(WaitTimeoutError) as caught:
        schedule.next_delay()
    assert isinstance(caught.value, TimeoutError)
    assert caught.value.task.status == "pending" and caught.value.timeout == 10.0


def test_a_terminal_task_is_returned_or_raised() -> None:
    done = task("completed")
    assert finished(done) is done
    with pytest.raises(TaskFailedError) as failed:
        finished(task("failed", error="Content moderation: prompt contains prohibited content"))
    assert failed.value.error == "Content moderation: prompt contains prohibited content"
    assert failed.value.task.status == "failed"
    with pytest.raises(TaskCancelledError):
        finished(task("cancelled"))


def test_outputs_are_named_after_the_task() -> None:
    urls = ["http://h/files/t/0.png", "http://h/files/t/1.png", "http://h/files/t/2"]
    done = task("completed", output={"url": urls[0], "urls": urls})
    names = [path.name for _, path in output_paths(done, Path("out"))]
    assert names == [f"{done.id}-0.png", f"{done.id}-1.png", f"{done.id}-2.bin"]
    with pytest.raises(ValueError, match="processing"):
        output_paths(task("processing"), Path("out"))


def test_a_walked_listing_skips_tasks_pushed_over_from_the_page_before() -> None:
    a, b, c, d = (Task.from_json({"id": f"gen_{n * 16}", "status": "completed"}) for n in "abcd")
    assert unseen([b, c, d], previous=[a, b]) == [c, d]
    assert unseen([a, b], previous=[]) == [a, b]


def test_a_poll_asks_the_server_to_hold_it_a_second_short_of_the_deadline() -> None:
    clock = Clock()
    schedule = PollSchedule(timeout=None, clock=clock)
    assert schedule.limits(60.0) == (None, 60.0)  # the first poll shows the task at once
    schedule.polled(task("pending"))
    assert schedule.limits(60.0) == (20, 80.0)
    schedule = PollSchedule(timeout=30.0, clock=clock)
    assert schedule.limits(60.0) == (None, 30.0)
    schedule.polled(task("pending"))
    assert schedule.limits(60.0) == (20, 30.0)
    clock.now += 20.5  # 9.5 s left
    assert schedule.limits(5.0) == (8, 9.5)
    clock.now += 8.0  # 1.5 s left: no hold, a plain poll
    assert schedule.limits(5.0) == (None, 1.5)


def test_after_a_held_poll_the_next_goes_at_once_unless_retry_after_says() -> None:
    schedule = PollSchedule(timeout=None, clock=Clock())
    assert schedule.next_delay(held=True) == pytest.approx(0.025)
    assert schedule.next_delay(hint=3.0, held=True) == 3.0
    assert schedule.next_delay() == 0.25  # a plain poll: the schedule had not grown meanwhile


# the event stream


def sse(event_id: int, status: str, data: dict[str, Any]) -> bytes:
    return f"id: {event_id}\nevent: {status}\ndata: {json.dumps(data)}\n\n".encode()


def pending(event_id: int, status: str = "pending") -> bytes:
    return sse(event_id, status, {"id": "gen_x", "status": status, "at": "2026-01-02T03:04:05Z"})


DONE = {"id": "gen_x", "status": "completed", "completed_at": "2026-01-02T03:04:09Z"}


def test_events_become_task_events_and_the_terminal_one_carries_the_task() -> None:
    reader = EventReader(policy())
    first, second = reader.feed(b"retry: 100\n\n" + pending(1) + pending(2, "processing"))
    (last,) = reader.feed(sse(3, "completed", DONE))
    assert (first.id, first.status, first.terminal, first.task) == (1, "pending", False, None)
    assert first.at is not None and first.at.year == 2026
    assert second.status == "processing" and reader.last_id == 3 and reader.done
    assert last.terminal and last.task is not None and last.task.status == "completed"
    assert last.at == last.task.completed_at


def test_an_event_seen_before_or_after_the_end_is_dropped() -> None:
    reader = EventReader(policy())
    assert [e.id for e in reader.feed(pending(1) + pending(2))] == [1, 2]
    reader.reconnect(APIConnectionError("dropped", request_sent=True))
    # a server that replays from the start: only what is new comes through
    cancelled = sse(3, "cancelled", {**DONE, "status": "cancelled"})
    replayed = reader.feed(pending(1) + pending(2) + cancelled)
    assert [e.id for e in replayed] == [3]
    assert reader.feed(pending(4, "processing")) == []


def test_an_event_cut_off_by_a_drop_is_forgotten_with_the_connection() -> None:
    reader = EventReader(policy())
    assert reader.feed(pending(1)[:-5]) == []
    reader.reconnect(APIConnectionError("dropped", request_sent=True))
    assert [e.id for e in reader.feed(pending(1))] == [1]


def test_reconnects_wait_the_backoff_or_the_servers_retry_and_stop_at_the_maximum() -> None:
    reader = EventReader(policy(2))
    dropped = APIConnectionError("dropped", request_sent=True)
    reader.feed(b"retry: 3000\n\n" + pending(1))
    assert reader.reconnect(dropped) == 3.0  # the server's retry, more than the backoff
    assert reader.reconnect(dropped) == 3.0
    with pytest.raises(APIConnectionError):
        reader.reconnect(dropped)
    reader.feed(pending(2))  # a new event: the count starts again
    assert reader.reconnect(dropped) == 3.0
    with pytest.raises(NotFoundError):
        reader.reconnect(NotFoundError("gone"))


@pytest.mark.parametrize(
    "raw",
    [
        b"event: pending\ndata: {}\n\n",  # no id
        b"id: x\nevent: pending\ndata: {}\n\n",
        b"id: 1\nevent: pending\ndata: not json\n\n",
        b"id: 1\nevent: completed\ndata: {}\n\n",  # a terminal event without the task
        b"id: 1\ndata: []\n\n",
    ],
)
def test_an_event_not_shaped_like_one_is_an_api_error(raw: bytes) -> None:
    with pytest.raises(APIError, match="cannot read"):
        EventReader(policy()).feed(raw)
