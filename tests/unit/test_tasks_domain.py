"""Tests for hatchery.domain.tasks (ids, states, transitions) and hatchery.domain.present (the
task object and the webhook body on the wire)."""

from __future__ import annotations

import json
import re
from datetime import datetime

import pytest
from tests.contract import COMPLETED_EVENT_FIELDS, TASK_FIELDS
from tests.task_factory import CREATED, make_task

from hatchery.domain.present import EVENTS, file_url, iso, output_json, task_json, webhook_event
from hatchery.domain.tasks import (
    TERMINAL,
    TRANSITIONS,
    TaskStatus,
    TaskType,
    can_transition,
    is_task_id,
    new_task_id,
    task_type,
)

PUBLIC = "http://127.0.0.1:8000"
STARTED = datetime(2026, 5, 8, 10, 30, 2)
COMPLETED = datetime(2026, 5, 8, 10, 30, 7, 999_999)


# ---------------------------------------------------------------- ids


def test_new_task_id_format() -> None:
    for _ in range(200):
        assert re.fullmatch(r"gen_[a-z0-9]{12,}", new_task_id())


def test_new_task_ids_are_unique() -> None:
    ids = {new_task_id() for _ in range(5000)}
    assert len(ids) == 5000


def test_new_task_ids_are_valid_ids() -> None:
    assert all(is_task_id(new_task_id()) for _ in range(200))


@pytest.mark.parametrize(
    "value", ["gen_abcdefghijkl", "gen_0123456789ab", "gen_" + "a" * 64, "gen_abc123def456ghi7"]
)
def test_is_task_id_accepts(value: str) -> None:
    assert is_task_id(value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "gen_",
        "gen_abcdefghijk",  # 11 characters
        "gen_" + "a" * 65,
        "gen_ABCDEFGHIJKL",
        "gen_abcdefghij-l",
        "gen_abcdefghij l",
        "abcdefghijklmnop",
        "GEN_abcdefghijkl",
        "task_abcdefghijkl",
        " gen_abcdefghijkl",
        "gen_abcdefghijklé",
    ],
)
def test_is_task_id_rejects(value: str) -> None:
    assert not is_task_id(value)


# ---------------------------------------------------------------- states


def test_status_and_type_values() -> None:
    assert [s.value for s in TaskStatus] == [
        "pending",
        "processing",
        "completed",
        "failed",
        "cancelled",
    ]
    assert TaskType.IMAGE.value == "image_generate"
    assert TaskType.VIDEO.value == "video_generate"


def test_terminal_states() -> None:
    ended = {TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED}
    assert {s for s in TaskStatus if s.terminal} == ended
    assert TERMINAL == ended


@pytest.mark.parametrize(
    "terminal", [TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED]
)
def test_terminal_states_have_no_transitions(terminal: TaskStatus) -> None:
    assert TRANSITIONS[terminal] == frozenset()
    assert not any(can_transition(terminal, target) for target in TaskStatus)


@pytest.mark.parametrize(
    ("current", "target", "allowed"),
    [
        (TaskStatus.PENDING, TaskStatus.PROCESSING, True),
        (TaskStatus.PENDING, TaskStatus.FAILED, True),
        (TaskStatus.PENDING, TaskStatus.COMPLETED, False),
        (TaskStatus.PENDING, TaskStatus.CANCELLED, True),
        (TaskStatus.PROCESSING, TaskStatus.CANCELLED, True),
        (TaskStatus.PENDING, TaskStatus.PENDING, False),
        (TaskStatus.PROCESSING, TaskStatus.COMPLETED, True),
        (TaskStatus.PROCESSING, TaskStatus.FAILED, True),
        (TaskStatus.PROCESSING, TaskStatus.PENDING, True),  # lease lapsed
        (TaskStatus.PROCESSING, TaskStatus.PROCESSING, False),
        (TaskStatus.COMPLETED, TaskStatus.FAILED, False),
        (TaskStatus.FAILED, TaskStatus.PENDING, False),
    ],
)
def test_can_transition(current: TaskStatus, target: TaskStatus, allowed: bool) -> None:
    assert can_transition(current, target) is allowed


def test_every_status_has_a_transition_entry() -> None:
    assert set(TRANSITIONS) == set(TaskStatus)


# ---------------------------------------------------------------- present


def test_iso() -> None:
    assert iso(CREATED) == "2026-05-08T10:30:00Z"
    assert iso(COMPLETED) == "2026-05-08T10:30:07Z"  # microseconds dropped
    assert iso(None) is None


def test_file_url() -> None:
    assert file_url(PUBLIC, "tok/gen_x/0.png") == "http://127.0.0.1:8000/files/tok/gen_x/0.png"


def test_task_json_pending() -> None:
    body = task_json(make_task(), PUBLIC)
    assert list(body) == TASK_FIELDS
    assert body == {
        "id": "gen_abcdefghijkl0123",
        "status": "pending",
        "model": "nanobanana",
        "type": "image_generate",
        "output": None,
        "error": None,
        "cost": "$0.00",
        "created_at": "2026-05-08T10:30:00Z",
        "started_at": None,
        "completed_at": None,
    }


def test_task_json_completed_image() -> None:
    task = make_task(
        status=TaskStatus.COMPLETED,
        cost_micros=20_000,
        output={"files": ["tok/gen_a/0.png", "tok/gen_a/1.png"]},
        started_at=STARTED,
        completed_at=COMPLETED,
    )
    body = task_json(task, PUBLIC)
    assert body["status"] == "completed"
    assert body["output"] == {
        "url": f"{PUBLIC}/files/tok/gen_a/0.png",
        "urls": [f"{PUBLIC}/files/tok/gen_a/0.png", f"{PUBLIC}/files/tok/gen_a/1.png"],
    }
    assert "duration_seconds" not in body["output"]
    assert body["cost"] == "$0.0200"
    assert body["started_at"] == "2026-05-08T10:30:02Z"
    assert body["completed_at"] == "2026-05-08T10:30:07Z"
    assert body["error"] is None


def test_task_json_completed_video() -> None:
    task = make_task(
        model="veo3.1",
        type=TaskType.VIDEO,
        status=TaskStatus.COMPLETED,
        cost_micros=400_000,
        output={"files": ["tok/gen_v/0.mp4"], "duration_seconds": 5},
        started_at=STARTED,
        completed_at=COMPLETED,
    )
    body = task_json(task, "https://media.example.com")
    assert body["type"] == "video_generate"
    assert body["output"] == {
        "url": "https://media.example.com/files/tok/gen_v/0.mp4",
        "urls": ["https://media.example.com/files/tok/gen_v/0.mp4"],
        "duration_seconds": 5,
    }
    assert list(body["output"]) == ["url", "urls", "duration_seconds"]
    assert body["cost"] == "$0.4000"


def test_task_json_failed() -> None:
    task = make_task(
        status=TaskStatus.FAILED,
        error="Content moderation: prompt contains prohibited content",
        completed_at=COMPLETED,
    )
    body = task_json(task, PUBLIC)
    assert body["status"] == "failed"
    assert body["output"] is None
    assert body["error"] == "Content moderation: prompt contains prohibited content"
    assert body["cost"] == "$0.00"
    assert body["started_at"] is None
    assert body["completed_at"] == "2026-05-08T10:30:07Z"


def test_output_with_no_files() -> None:
    assert output_json(make_task(output={"files": []}), PUBLIC) == {"url": None, "urls": []}
    assert output_json(make_task(output={}), PUBLIC) is None


def test_webhook_event_completed() -> None:
    task = make_task(
        status=TaskStatus.COMPLETED,
        cost_micros=10_000,
        output={"files": ["tok/gen_a/0.png"]},
        completed_at=COMPLETED,
    )
    event, body = webhook_event(task, PUBLIC, 1_778_236_207)
    assert event == "task.completed"
    assert " " not in body  # compact separators; nothing in this task has spaces
    parsed = json.loads(body)
    assert list(parsed) == COMPLETED_EVENT_FIELDS
    assert parsed == {
        "event": "task.completed",
        "task_id": "gen_abcdefghijkl0123",
        "status": "completed",
        "model": "nanobanana",
        "type": "image_generate",
        "output": {
            "url": f"{PUBLIC}/files/tok/gen_a/0.png",
            "urls": [f"{PUBLIC}/files/tok/gen_a/0.png"],
        },
        "error": None,
        "cost": "0.010000",
        "timestamp": 1_778_236_207,
    }
    assert body == json.dumps(parsed, separators=(",", ":"))


def test_webhook_event_failed_has_no_output_like_the_seeds() -> None:
    task = make_task(status=TaskStatus.FAILED, error="boom", completed_at=COMPLETED)
    event, body = webhook_event(task, PUBLIC, 5)
    assert event == "task.failed"
    assert body == (
        '{"event":"task.failed","task_id":"gen_abcdefghijkl0123","status":"failed",'
        '"model":"nanobanana","type":"image_generate","error":"boom","cost":"0.000000",'
        '"timestamp":5}'
    )


def test_webhook_event_video_cost_six_decimals() -> None:
    task = make_task(
        model="veo3.1",
        type=TaskType.VIDEO,
        status=TaskStatus.COMPLETED,
        cost_micros=1_234_567,
        output={"files": ["t/v.mp4"], "duration_seconds": 8},
    )
    _, body = webhook_event(task, PUBLIC, 1)
    parsed = json.loads(body)
    assert parsed["cost"] == "1.234567"
    assert parsed["output"]["duration_seconds"] == 8
    assert parsed["type"] == "video_generate"


def test_an_image_request_with_reference_images_is_an_edit() -> None:
    assert task_type(TaskType.IMAGE, {"image_urls": ["https://a/b.png"]}) is TaskType.IMAGE_EDIT
    assert task_type(TaskType.IMAGE, {"image_urls": []}) is TaskType.IMAGE
    assert task_type(TaskType.IMAGE, {"image_urls": None}) is TaskType.IMAGE
    assert task_type(TaskType.VIDEO, {"image_urls": ["https://a/b.png"]}) is TaskType.VIDEO
    assert [t.unit for t in TaskType] == ["image", "image", "second", "output"]


def test_the_output_says_which_size_was_made_when_the_task_recorded_it() -> None:
    made = make_task(status=TaskStatus.COMPLETED, output={"files": ["t/0.png"], "resolution": "1k"})
    older = make_task(status=TaskStatus.COMPLETED, output={"files": ["t/0.png"]})
    assert task_json(made, PUBLIC)["output"]["resolution"] == "1k"
    assert "resolution" not in task_json(older, PUBLIC)["output"]


@pytest.mark.parametrize("status", [TaskStatus.PENDING, TaskStatus.PROCESSING])
def test_no_webhook_event_for_unfinished_tasks(status: TaskStatus) -> None:
    assert status not in EVENTS
    with pytest.raises(KeyError):
        webhook_event(make_task(status=status), PUBLIC, 1)


def test_the_cancelled_webhook_carries_no_output_and_costs_nothing() -> None:
    task = make_task(status=TaskStatus.CANCELLED, completed_at=COMPLETED)
    event, body = webhook_event(task, PUBLIC, 1778236200)
    assert event == "task.cancelled"
    assert json.loads(body) == {
        "event": "task.cancelled",
        "task_id": "gen_abcdefghijkl0123",
        "status": "cancelled",
        "model": "nanobanana",
        "type": "image_generate",
        "error": None,
        "cost": "0.000000",
        "timestamp": 1778236200,
    }
