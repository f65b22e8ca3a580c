"""Task control through the SDK, against a fake API on 127.0.0.1 that speaks the contract
(``tests/fake_task_api.py``): cancelling, idempotent submits and their retries, ``Prefer: wait``
and the task event stream across dropped connections, on ``Client`` and ``AsyncClient``."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from hatchery.client import (
    AsyncClient,
    Client,
    ConflictError,
    IdempotencyMismatchError,
    NotFoundError,
    TaskCancelledError,
    TaskEvent,
)
from tests.fake_task_api import FakeTaskAPI, Fault

HEX_KEY = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture
def api() -> Iterator[FakeTaskAPI]:
    fake = FakeTaskAPI()
    yield fake
    fake.close()


def client(api: FakeTaskAPI, **options: Any) -> Client:
    return Client(api_key="hk_test", base_url=api.url, **options)


def keys_sent(api: FakeTaskAPI) -> list[str | None]:
    return [s.headers.get("Idempotency-Key") for s in api.requests("POST", "/v1/generate")]


# cancel


def test_cancel_returns_the_cancelled_task_and_a_second_cancel_conflicts(api: FakeTaskAPI) -> None:
    task_id = api.create("processing")
    with client(api) as c:
        task = c.tasks.cancel(task_id)
        assert (task.id, task.status, task.cost) == (task_id, "cancelled", "0.0000")
        assert task.completed_at is not None and task.done
        with pytest.raises(ConflictError) as again:
            c.tasks.cancel(task_id)
        with pytest.raises(NotFoundError):
            c.tasks.cancel("gen_not_there")
    assert again.value.status == 409 and f"task {task_id} is already cancelled" in str(again.value)
    assert len(api.requests("POST", f"/v1/tasks/{task_id}/cancel")) == 2


def test_a_cancel_whose_answer_was_lost_is_resent_and_then_conflicts(api: FakeTaskAPI) -> None:
    task_id = api.create()
    api.fail("POST", f"/v1/tasks/{task_id}/cancel", Fault(lost=True))
    with client(api) as c, pytest.raises(ConflictError, match="already cancelled"):
        c.tasks.cancel(task_id)
    assert api.tasks[task_id]["status"] == "cancelled"
    assert len(api.requests("POST", f"/v1/tasks/{task_id}/cancel")) == 2


def test_waiting_for_a_task_cancelled_meanwhile_raises_task_cancelled(api: FakeTaskAPI) -> None:
    task_id = api.create("processing")
    api.advance_later(task_id, (0.5, "cancelled"))
    with client(api) as c, pytest.raises(TaskCancelledError) as caught:
        c.tasks.wait(task_id, timeout=30)
    assert caught.value.task.status == "cancelled"


# idempotent submits


def test_each_submit_carries_a_new_key_and_a_given_key_replays_the_task(
    api: FakeTaskAPI, caplog: pytest.LogCaptureFixture
) -> None:
    with client(api) as c:
        first = c.generate(model="nanobanana", prompt="a")
        second = c.generate(model="nanobanana", prompt="a")
        mine = c.generate(model="nanobanana", prompt="b", idempotency_key="order-42")
        with caplog.at_level(logging.INFO, logger="hatchery.client"):
            again = c.generate(model="nanobanana", prompt="b", idempotency_key="order-42")
    keys = keys_sent(api)
    assert all(HEX_KEY.match(k or "") for k in keys[:2]) and keys[0] != keys[1]
    assert keys[2:] == ["order-42", "order-42"]
    assert first.id != second.id and again.id == mine.id and len(api.tasks) == 3
    assert f"submit replayed: task {mine.id}" in caplog.text


@pytest.mark.parametrize(
    "fault",
    [
        Fault(lost=True),  # carried out, then the connection dropped before the answer
        Fault(500),
        Fault(429, {"Retry-After": "0"}),
        Fault(503),
        Fault(502),
    ],
    ids=["lost", "500", "429", "503", "502"],
)
def test_a_submit_is_resent_with_the_same_key_and_makes_one_task(
    api: FakeTaskAPI, fault: Fault
) -> None:
    api.fail("POST", "/v1/generate", fault)
    with client(api) as c:
        task = c.generate(model="nanobanana", prompt="once")
    keys = keys_sent(api)
    assert len(keys) == 2 and keys[0] == keys[1] and HEX_KEY.match(keys[0] or "")
    assert list(api.tasks) == [task.id]


def test_a_submit_still_in_progress_is_asked_again_after_its_retry_after(
    api: FakeTaskAPI,
) -> None:
    in_progress = Fault(409, {"Retry-After": "1"})
    api.fail("POST", "/v1/generate", Fault(lost=True), in_progress)
    with client(api) as c:
        task = c.generate(model="nanobanana", prompt="slow", idempotency_key="k-409")
    seen = api.requests("POST", "/v1/generate")
    assert [s.status for s in seen] == [0, 409, 202]  # 0: no answer
    assert [s.headers["Idempotency-Key"] for s in seen] == ["k-409"] * 3
    assert seen[2].at - seen[1].at >= 1.0
    assert list(api.tasks) == [task.id]


def test_a_key_reused_with_another_body_is_a_mismatch_not_retried(api: FakeTaskAPI) -> None:
    with client(api) as c:
        c.generate(model="nanobanana", prompt="first", idempotency_key="same")
        with pytest.raises(IdempotencyMismatchError) as caught:
            c.generate(model="nanobanana", prompt="second", idempotency_key="same")
    assert caught.value.status == 422 and caught.value.code == "IDEMPOTENCY_MISMATCH"
    assert len(api.requests("POST", "/v1/generate")) == 2 and len(api.tasks) == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "clé", "tab\there", " padded"])
def test_a_bad_key_is_refused_before_sending(api: FakeTaskAPI, key: str) -> None:
    with client(api) as c, pytest.raises(ValueError, match="idempotency_key"):
        c.generate(model="nanobanana", prompt="p", idempotency_key=key)
    assert api.seen == []


# Prefer: wait


def test_a_submit_held_until_the_task_ended_answers_200_completed(api: FakeTaskAPI) -> None:
    api.complete_after = 1.0
    with client(api, timeout=0.5) as c:  # the hold lengthens the request's timeout
        task = c.generate(model="nanobanana", prompt="quick", prefer_wait=5)
    (seen,) = api.requests("POST", "/v1/generate")
    assert seen.headers["Prefer"] == "wait=5" and seen.status == 200
    assert task.status == "completed"


def test_a_held_get_answers_the_task_as_it_is_after_the_wait(api: FakeTaskAPI) -> None:
    task_id = api.create()
    with client(api, timeout=0.5) as c:
        began = time.monotonic()
        task = c.tasks.get(task_id, wait=1)
        took = time.monotonic() - began
        plain = c.tasks.get(task_id)
    first, second = api.requests("GET", f"/v1/tasks/{task_id}")
    assert task.status == "pending" and took >= 1.0
    assert first.headers["Prefer"] == "wait=1" and "Prefer" not in second.headers
    assert plain.status == "pending"


@pytest.mark.parametrize("wait", [-1, 61, 2.5, float("nan"), True])
def test_a_wait_outside_0_to_60_whole_seconds_is_refused(api: FakeTaskAPI, wait: Any) -> None:
    task_id = api.create()
    with client(api) as c:
        with pytest.raises(ValueError, match="whole seconds from 0 to 60"):
            c.tasks.get(task_id, wait=wait)
        with pytest.raises(ValueError, match="whole seconds from 0 to 60"):
            c.generate(model="nanobanana", prompt="p", prefer_wait=wait)
    assert api.seen == []


def test_wait_long_polls_a_server_that_holds(api: FakeTaskAPI) -> None:
    task_id = api.create()
    api.advance_later(task_id, (0.2, "processing"), (1.5, "completed"))
    with client(api) as c:
        began = time.monotonic()
        task = c.tasks.wait(task_id, timeout=60)
        took = time.monotonic() - began
    first, held = api.requests("GET", f"/v1/tasks/{task_id}")
    assert task.status == "completed" and took < 2.5
    assert "Prefer" not in first.headers and held.headers["Prefer"] == "wait=20"


def test_generate_and_wait_uses_the_held_answer(api: FakeTaskAPI) -> None:
    api.complete_after = 0.3
    with client(api) as c:
        task = c.generate(model="nanobanana", prompt="p", prefer_wait=10, wait=True)
    assert task.status == "completed"
    assert api.requests("GET", "/v1/tasks/") == []  # no poll: the submit's answer was final


# the event stream


def statuses(events: list[TaskEvent]) -> list[tuple[int, str]]:
    return [(e.id, e.status) for e in events]


def test_stream_yields_every_event_once_across_a_dropped_connection(api: FakeTaskAPI) -> None:
    task_id = api.create()
    api.advance(task_id, "processing")
    api.advance(task_id, "completed")
    api.fail("GET", f"/v1/tasks/{task_id}/events", Fault(cut_after=1, half=True))
    with client(api) as c:
        events = list(c.tasks.stream(task_id))
    assert statuses(events) == [(1, "pending"), (2, "processing"), (3, "completed")]
    assert [e.terminal for e in events] == [False, False, True]
    assert events[0].task is None and events[0].at is not None
    done = events[-1].task
    assert done is not None and done.status == "completed" and done.urls
    first, second = api.requests("GET", f"/v1/tasks/{task_id}/events")
    assert "Last-Event-ID" not in first.headers and second.headers["Last-Event-ID"] == "1"
    assert second.headers["Accept"] == "text/event-stream"


def test_stream_follows_a_live_task_across_a_stream_that_ends_early(api: FakeTaskAPI) -> None:
    task_id = api.create()
    api.advance_later(task_id, (0.3, "processing"), (0.3, "failed"))
    api.fail("GET", f"/v1/tasks/{task_id}/events", Fault(cut_after=2, clean_end=True))
    with client(api) as c:
        events = list(c.tasks.stream(task_id))
    assert statuses(events) == [(1, "pending"), (2, "processing"), (3, "failed")]
    seen = api.requests("GET", f"/v1/tasks/{task_id}/events")
    assert [s.headers.get("Last-Event-ID") for s in seen] == [None, "2"]


def test_stream_stops_at_the_terminal_event_without_waiting_for_the_end(
    api: FakeTaskAPI,
) -> None:
    api.linger = 30.0
    task_id = api.create("completed")
    began = time.monotonic()
    with client(api) as c:
        events = list(c.tasks.stream(task_id))
    assert statuses(events) == [(1, "pending"), (2, "completed")]
    assert time.monotonic() - began < 5


def test_stream_of_an_unknown_task_is_not_found(api: FakeTaskAPI) -> None:
    with client(api) as c, pytest.raises(NotFoundError):
        next(c.tasks.stream("gen_not_there"))


def test_async_client_does_all_of_it(api: FakeTaskAPI) -> None:
    task_id = api.create()
    api.advance(task_id, "processing")
    api.fail("GET", f"/v1/tasks/{task_id}/events", Fault(cut_after=2))
    api.fail("POST", "/v1/generate", Fault(lost=True))
    api.advance_later(task_id, (0.5, "completed"))

    async def run() -> tuple[list[TaskEvent], str, str]:
        async with AsyncClient(api_key="hk_test", base_url=api.url) as c:
            events = [event async for event in c.tasks.stream(task_id)]
            other = await c.generate(model="nanobanana", prompt="async", idempotency_key="a-1")
            held = await c.tasks.get(other.id, wait=1)
            cancelled = await c.tasks.cancel(other.id)
            with pytest.raises(ConflictError):
                await c.tasks.cancel(other.id)
            return events, held.status, cancelled.status

    events, held, cancelled = asyncio.run(run())
    assert statuses(events) == [(1, "pending"), (2, "processing"), (3, "completed")]
    seen = api.requests("GET", f"/v1/tasks/{task_id}/events")
    assert [s.headers.get("Last-Event-ID") for s in seen] == [None, "2"]
    assert keys_sent(api) == ["a-1", "a-1"] and len(api.tasks) == 2
    assert (held, cancelled) == ("pending", "cancelled")
