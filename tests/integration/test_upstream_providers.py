"""The real server with vendor keys set, its providers pointed at fake upstreams on 127.0.0.1:
routing, outputs copied into our storage, fallback on each retryable kind of failure, terminal
refusals, values refused at submit, the circuit breaker, the concurrency limit, and upstream jobs
that wait without holding a worker slot."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.fake_upstreams import (
    FAL_KEY,
    GOOGLE_KEY,
    REPLICATE_TOKEN,
    UPSTREAM_TIMEOUT,
    FakeFal,
    FakeGoogle,
    FakeReplicate,
    mp4_bytes,
    png_bytes,
)
from tests.helpers import ServerProcess, wait_for_task

TIMEOUT = UPSTREAM_TIMEOUT

pytestmark = pytest.mark.usefixtures("fresh_fakes")

FAST_UPSTREAMS = {
    "HATCHERY_UPSTREAM_TIMEOUT": str(TIMEOUT),
    "HATCHERY_UPSTREAM_POLL_MAX": "0.1",
    "HATCHERY_PROVIDER_BACKOFF": "0.1",
    "HATCHERY_PROVIDER_ROUNDS": "2",
    "HATCHERY_BREAKER_FAILURES": "1000",
}


def vendor_settings(
    google: FakeGoogle | None = None,
    fal: FakeFal | None = None,
    replicate: FakeReplicate | None = None,
) -> dict[str, str]:
    settings = dict(FAST_UPSTREAMS)
    if google:
        settings |= {
            "HATCHERY_GEMINI_API_KEY": GOOGLE_KEY,
            "HATCHERY_GEMINI_BASE_URL": google.base_url,
        }
    if fal:
        settings |= {"HATCHERY_FAL_KEY": FAL_KEY, "HATCHERY_FAL_BASE_URL": fal.base}
    if replicate:
        settings |= {
            "HATCHERY_REPLICATE_API_TOKEN": REPLICATE_TOKEN,
            "HATCHERY_REPLICATE_BASE_URL": replicate.base_url,
        }
    return settings


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    new_database: Callable[[], tuple[str | None, str | None]],
    google: FakeGoogle,
    fal: FakeFal,
    replicate: FakeReplicate,
) -> Iterator[ServerProcess]:
    url, key = new_database()
    settings = vendor_settings(google, fal, replicate)
    proc = ServerProcess(
        tmp_path_factory.mktemp("vendors"), settings, database_url=url, key=key
    ).start()
    yield proc
    proc.stop()


def submit(client: httpx.Client, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/generate", json={"prompt": "a lighthouse at dusk", **body})
    assert response.status_code == 202, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


def usage_of(server: ServerProcess, task_id: str) -> dict[str, Any]:
    (raw,) = server.query("SELECT usage FROM tasks WHERE id = :id", id=task_id)[0]
    return raw if isinstance(raw, dict) else json.loads(raw)  # type: ignore[no-any-return]


def balance(client: httpx.Client) -> str:
    return str(client.get("/v1/account").json()["data"]["balance"])


def fetch(url: str) -> bytes:
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200
    return response.content


def outcomes(usage: dict[str, Any]) -> list[tuple[str, str]]:
    return [(a["provider"], a["outcome"]) for a in usage["attempts"]]


def test_nanobanana_is_made_by_gemini_and_its_image_is_copied_into_our_storage(
    server: ServerProcess, google: FakeGoogle, fal: FakeFal
) -> None:
    with server.client() as client:
        before = balance(client)
        task = wait_for_task(client, submit(client, model="nanobanana", num_outputs=2)["id"])
        after = balance(client)
    assert task["status"] == "completed", task
    assert task["cost"] == "$0.0200"
    assert float(before.strip("$")) - float(after.strip("$")) == pytest.approx(0.02)
    assert [fetch(url) for url in task["output"]["urls"]] == [png_bytes()] * 2
    assert all(url.startswith(server.url + "/files/") for url in task["output"]["urls"])
    usage = usage_of(server, task["id"])
    assert usage["provider"] == "gemini"
    assert outcomes(usage) == [("gemini", "completed")]
    assert usage["tokens"] == {"prompt": 24, "output": 2580, "total": 2604}
    assert len(usage["upstream_ids"]) == 2 and usage["outputs"] == 2
    assert len(google.seen("POST", "gemini-2.5-flash-image:generateContent")) == 2
    assert fal.requests == []


def usage_record(client: httpx.Client, task_id: str) -> dict[str, Any]:
    records = client.get("/v1/usage", params={"per_page": 100}).json()["data"]["items"]
    [record] = [r for r in records if r["task_id"] == task_id]
    return record  # type: ignore[no-any-return]


def test_a_size_no_vendor_makes_is_made_at_the_nearest_size_and_says_so(
    server: ServerProcess, google: FakeGoogle, fal: FakeFal
) -> None:
    """Every vendor's nanobanana makes 1K only: a 2K request is accepted all the same, made at
    1K by the first provider, and its output and usage record say 1k."""
    with server.client() as client:
        task = wait_for_task(client, submit(client, model="nanobanana", resolution="2k")["id"])
        record = usage_record(client, task["id"])
    assert task["status"] == "completed", task
    assert task["output"]["resolution"] == "1k" and task["cost"] == "$0.0100"
    (sent,) = google.seen("POST", "gemini-2.5-flash-image:generateContent")
    assert "imageSize" not in sent.json()["generationConfig"]["imageConfig"]
    assert fal.requests == []
    assert (record["resolution"], record["units"], record["cost"]) == ("1k", 1, "$0.0100")


def test_a_pro_image_at_4k_is_made_at_4k_and_costs_the_4k_price(
    server: ServerProcess, google: FakeGoogle
) -> None:
    with server.client() as client:
        before = balance(client)
        task = wait_for_task(
            client, submit(client, model="nanobanana-pro", resolution="4k", num_outputs=2)["id"]
        )
        after = balance(client)
        record = usage_record(client, task["id"])
    assert task["status"] == "completed", task
    assert task["output"]["resolution"] == "4k" and task["cost"] == "$0.0640"
    assert float(before.strip("$")) - float(after.strip("$")) == pytest.approx(0.064)
    sent = google.seen("POST", "gemini-3-pro-image-preview:generateContent")
    assert [r.json()["generationConfig"]["imageConfig"]["imageSize"] for r in sent] == ["4K"] * 2
    assert (record["units"], record["unit_price"], record["cost"]) == (2, "$0.0320", "$0.0640")


def test_a_provider_that_makes_the_size_is_chosen_before_one_that_would_not(
    make_server: Callable[..., ServerProcess], google: FakeGoogle, tmp_path: Any
) -> None:
    """A catalog that lists local after gemini for nanobanana: a 2K image goes to local (which
    makes 2K), a 1K image to gemini (first in the list)."""
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(
        '[models.nanobanana]\ntype = "image"\nprice_per_output = "0.01"\n'
        'providers = ["gemini", "local"]\n'
    )
    server = make_server(HATCHERY_CATALOG=str(catalog), **vendor_settings(google))
    with server.client() as client:
        big = wait_for_task(client, submit(client, model="nanobanana", resolution="2k")["id"])
        assert google.requests == []
        small = wait_for_task(client, submit(client, model="nanobanana", resolution="1k")["id"])
    assert (big["status"], big["output"]["resolution"]) == ("completed", "2k")
    assert usage_of(server, big["id"])["provider"] == "local"
    assert (small["status"], small["output"]["resolution"]) == ("completed", "1k")
    assert usage_of(server, small["id"])["provider"] == "gemini"


def test_veo_is_polled_until_done_and_the_video_is_ours(
    server: ServerProcess, google: FakeGoogle
) -> None:
    google.pending_polls = 3
    with server.client() as client:
        task = wait_for_task(client, submit(client, model="veo3.1", duration=8)["id"])
    assert task["status"] == "completed", task
    assert task["output"]["duration_seconds"] == 8 and task["cost"] == "$0.6400"
    assert fetch(task["output"]["url"]) == mp4_bytes()
    assert len(google.seen("POST", ":predictLongRunning")) == 1
    assert len(google.seen("GET", "/operations/")) == 4
    usage = usage_of(server, task["id"])
    assert usage["provider"] == "veo" and usage["seconds"] == 8
    assert usage["upstream_ids"][0].startswith("models/veo-3.1-generate-preview/operations/")
    assert usage["attempts"][0]["upstream"] == {"operation": usage["upstream_ids"][0]}


@pytest.mark.parametrize("kind", ["429", "500", "503", "hang", "drop", "badkey"])
def test_a_retryable_failure_moves_the_task_to_the_next_provider(
    server: ServerProcess, google: FakeGoogle, fal: FakeFal, kind: str
) -> None:
    google.plan("generate", kind)
    with server.client() as client:
        task = wait_for_task(client, submit(client, model="nanobanana-pro")["id"])
    assert task["status"] == "completed", task
    usage = usage_of(server, task["id"])
    assert usage["provider"] == "fal"
    assert outcomes(usage) == [("gemini", "failed"), ("fal", "completed")]
    assert usage["attempts"][0]["error"].startswith(
        "gemini: POST models/gemini-3-pro-image-preview:generateContent"
    )
    (submitted,) = fal.seen("POST", "fal-ai/")
    assert submitted.path == "/fal-ai/nano-banana-pro"


def test_a_failed_veo_operation_moves_the_video_to_fal(
    server: ServerProcess, google: FakeGoogle, fal: FakeFal
) -> None:
    google.plan("veo", "error")
    with server.client() as client:
        task = wait_for_task(client, submit(client, model="veo3.1", duration=4)["id"])
    assert task["status"] == "completed", task
    usage = usage_of(server, task["id"])
    assert outcomes(usage) == [("veo", "failed"), ("fal", "completed")]
    assert "code 13" in usage["attempts"][0]["error"]
    assert usage["attempts"][0]["upstream"]["operation"].startswith("models/veo-3.1")
    assert fal.seen("POST", "fal-ai/veo3.1")[0].json()["duration"] == "4s"


@pytest.mark.parametrize(
    ("kind", "mode", "model", "reason"),
    [
        ("generate", "blocked", "nanobanana", "gemini refused the prompt (SAFETY)"),
        ("veo", "filtered", "veo3.1", "veo's safety filters blocked 1 video(s)"),
    ],
)
def test_a_refusal_fails_the_task_at_once_and_charges_nothing(
    server: ServerProcess,
    google: FakeGoogle,
    fal: FakeFal,
    replicate: FakeReplicate,
    kind: str,
    mode: str,
    model: str,
    reason: str,
) -> None:
    google.plan(kind, mode)
    with server.client() as client:
        before = balance(client)
        task = wait_for_task(client, submit(client, model=model, duration=8)["id"])
        assert balance(client) == before
    assert task["status"] == "failed" and task["cost"] == "$0.00"
    assert task["error"].startswith(f"generation failed: {reason}")
    assert fal.requests == [] and replicate.requests == []  # no other provider was tried
    assert outcomes(usage_of(server, task["id"])) == [
        (kind.replace("generate", "gemini"), "refused")
    ]


def test_when_every_provider_fails_the_task_fails_after_two_rounds(
    server: ServerProcess, google: FakeGoogle, fal: FakeFal, replicate: FakeReplicate
) -> None:
    google.plan("generate", "500", "500")
    fal.plan("submit", "503", "503")
    replicate.plan("create", "500", "500")
    with server.client() as client:
        task = wait_for_task(client, submit(client, model="nanobanana")["id"])
    assert task["status"] == "failed" and task["cost"] == "$0.00"
    assert task["error"].startswith(
        "generation failed: all 3 providers failed; the last: replicate: POST"
    )
    assert (
        outcomes(usage_of(server, task["id"]))
        == [("gemini", "failed"), ("fal", "failed"), ("replicate", "failed")] * 2
    )


def test_a_provider_left_after_a_failed_job_has_the_rest_of_that_job_cancelled(
    server: ServerProcess, google: FakeGoogle, fal: FakeFal, replicate: FakeReplicate
) -> None:
    """Replicate makes one prediction per image: when one of two fails, the task moves on, and
    the other prediction is cancelled rather than left running (and billing) upstream."""
    google.plan("generate", "500")
    fal.plan("submit", "503")
    replicate.plan("create", "ok", "failed")
    with server.client() as client:
        task = wait_for_task(client, submit(client, model="nanobanana", num_outputs=2)["id"])
    assert task["status"] == "completed", task
    created = sorted(replicate.jobs)
    assert len(created) == 2
    cancelled = sorted(r.path.split("/")[-2] for r in replicate.seen("POST", "/cancel"))
    assert cancelled == created
    assert outcomes(usage_of(server, task["id"]))[:3] == [
        ("gemini", "failed"),
        ("fal", "failed"),
        ("replicate", "failed"),
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"model": "veo3.1", "duration": 5},
            "veo3.1 cannot make this request: "
            "duration must be 4, 6 or 8 seconds (veo, fal, replicate)",
        ),
        (
            {"model": "veo3.1", "duration": 4, "resolution": "4k", "num_outputs": 2},
            "a 4k video must be 8 seconds long (veo); it makes one video per request, from "
            'at most one image (fal); its videos are 720p or 1080p (resolution "1k" or "2k") '
            "(replicate)",
        ),
    ],
)
def test_values_no_provider_can_make_are_refused_at_submit(
    server: ServerProcess, body: dict[str, Any], message: str
) -> None:
    with server.client() as client:
        before = client.get("/v1/tasks").json()["data"]["pagination"]["total"]
        response = client.post("/v1/generate", json={"prompt": "x", **body})
        after = client.get("/v1/tasks").json()["data"]["pagination"]["total"]
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert message in error["message"]
    assert before == after


def test_the_circuit_breaker_skips_a_provider_that_keeps_failing(
    make_server: Callable[..., ServerProcess], google: FakeGoogle, fal: FakeFal
) -> None:
    server = make_server(
        **{
            **vendor_settings(google, fal),
            "HATCHERY_BREAKER_FAILURES": "2",
            "HATCHERY_BREAKER_COOLDOWN": "600",
        }
    )
    google.plan("generate", *["500"] * 10)
    with server.client() as client:
        tasks = [wait_for_task(client, submit(client, model="nanobanana")["id"]) for _ in range(3)]
    assert [t["status"] for t in tasks] == ["completed"] * 3
    assert len(google.seen("POST", ":generateContent")) == 2  # the third task did not call it
    last = usage_of(server, tasks[2]["id"])
    assert outcomes(last) == [("gemini", "skipped"), ("fal", "completed")]
    assert "circuit open after 2 failures in a row" in last["attempts"][0]["error"]


def test_the_concurrency_limit_keeps_a_provider_at_its_share(
    make_server: Callable[..., ServerProcess], fal: FakeFal
) -> None:
    server = make_server(
        **vendor_settings(fal=fal), HATCHERY_PROVIDER_CONCURRENCY="2", HATCHERY_WORKERS="8"
    )
    fal.hold.set()
    with server.client() as client:
        ids = [submit(client, model="nanobanana")["id"] for _ in range(5)]
        fal.wait_for("POST", "fal-ai/", count=2)
        time.sleep(1.0)  # the other three are claimed but wait for the limit
        assert len(fal.seen("POST", "fal-ai/")) == 2
        fal.hold.clear()
        tasks = [wait_for_task(client, task_id) for task_id in ids]
    assert [t["status"] for t in tasks] == ["completed"] * 5
    assert len(fal.seen("POST", "fal-ai/")) == 5


def test_tasks_waiting_on_upstream_jobs_do_not_hold_worker_slots(
    make_server: Callable[..., ServerProcess], google: FakeGoogle
) -> None:
    server = make_server(**vendor_settings(google), HATCHERY_WORKERS="2")
    google.hold_operations = True
    with server.client() as client:
        ids = [submit(client, model="veo3.1", duration=8)["id"] for _ in range(12)]
        google.wait_for("POST", ":predictLongRunning", count=12)  # 12 in flight on 2 slots
        statuses = {client.get(f"/v1/tasks/{i}").json()["data"]["status"] for i in ids}
        assert statuses == {"processing"}
        google.release.set()
        tasks = [wait_for_task(client, task_id) for task_id in ids]
    assert [t["status"] for t in tasks] == ["completed"] * 12
    assert len(google.seen("POST", ":predictLongRunning")) == 12


def test_only_the_vendors_with_keys_are_used(
    make_server: Callable[..., ServerProcess], replicate: FakeReplicate
) -> None:
    server = make_server(**vendor_settings(replicate=replicate))
    with server.client() as client:
        task = wait_for_task(client, submit(client, model="nanobanana")["id"])
    assert task["status"] == "completed"
    assert usage_of(server, task["id"])["provider"] == "replicate"
    assert (
        replicate.seen("POST", "/predictions")[0].path
        == "/v1/models/google/nano-banana/predictions"
    )
