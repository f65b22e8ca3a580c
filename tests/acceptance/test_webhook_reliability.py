"""Webhook delivery is reliable against real receivers on 127.0.0.1 (issue 19): a SIGKILL of the
delivering process mid-request loses no message, and the retry carries the same ``webhook-id``;
a receiver that answers late, 3xx, 4xx, 5xx, resets or closes the connection is retried on the
endpoint's schedule (redirects not followed) until it gives up or the receiver recovers; an
endpoint deleted while its messages wait gets none of them; and a thousand messages for one slow
endpoint do not hold back another endpoint's.

Each delivery's attempts are read back from the delivery log (``GET /v1/webhooks/deliveries``);
the gaps between attempts are checked as lower bounds of the schedule (its delays, jittered by
0.9-1.0), never as upper bounds."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from hatchery.webhooks import verify_standard
from tests.helpers import ServerProcess, wait_for_task
from tests.webhook_receivers import Action, Answer, Close, Hit, Hold, Receiver, Reset

pytestmark = pytest.mark.slow

Deliveries = list[dict[str, Any]]


@pytest.fixture
def rcv() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


def create_endpoint(client: httpx.Client, url: str, *events: str) -> dict[str, Any]:
    response = client.post("/v1/webhooks/endpoints", json={"url": url, "events": list(events)})
    assert response.status_code == 201, response.text
    endpoint: dict[str, Any] = response.json()
    return endpoint


def submit(client: httpx.Client, prompt: str, **extra: Any) -> str:
    response = client.post("/v1/generate", json={"model": "nanobanana", "prompt": prompt, **extra})
    assert response.status_code == 202, response.text
    return str(response.json()["data"]["id"])


def deliveries(client: httpx.Client, endpoint_id: str | None = None) -> Deliveries:
    """Every message of the account (or of one endpoint) in the delivery log, newest first."""
    found: Deliveries = []
    params: dict[str, Any] = {"limit": 200}
    if endpoint_id is not None:
        params["endpointId"] = endpoint_id
    while True:
        response = client.get("/v1/webhooks/deliveries", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        found += page["deliveries"]
        if not page["hasMore"]:
            return found
        params["cursor"] = page["nextCursor"]


def wait_for_log(
    client: httpx.Client,
    done: Callable[[Deliveries], bool],
    endpoint_id: str | None = None,
    timeout: float = 30.0,
) -> Deliveries:
    deadline = time.monotonic() + timeout
    while True:
        found = deliveries(client, endpoint_id)
        if done(found):
            return found
        if time.monotonic() > deadline:
            statuses = [(d["endpointId"], d["status"], len(d["attempts"])) for d in found]
            raise AssertionError(f"delivery log not as expected after {timeout} s: {statuses}")
        time.sleep(0.1)


def tasks_on(hits: list[Hit], path: str, since: float = 0.0) -> set[str]:
    """The tasks whose message arrived on ``path`` after ``since``."""
    return {h.json()["task_id"] for h in hits if h.path == path and h.at > since}


def settled(found: Deliveries) -> bool:
    return bool(found) and all(d["status"] != "pending" for d in found)


# ----------------------------------------------------------------------- 1. SIGKILL mid-request

KILL_SETTINGS = {
    # The lease of a claimed message is twice the longest answer timeout: 6 s until the restarted
    # process may take over what the killed one was sending.
    "HATCHERY_WEBHOOK_TIMEOUT": "3",
    "HATCHERY_WEBHOOK_ENDPOINT_TIMEOUT": "3",
    "HATCHERY_WEBHOOK_PER_RECEIVER": "4",
}


def test_sigkill_mid_request_every_message_arrives_with_its_webhook_id(
    make_server: Callable[..., ServerProcess], rcv: Receiver, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    server = make_server(data, **KILL_SETTINGS)
    key = server.new_account("kill@example.com")
    killed = {"yet": False}
    # Until the kill every request is held open, unanswered; afterwards each is answered 200.
    rcv.behave = lambda hit: Answer() if killed["yet"] else Hold()
    with server.client(key=key) as client:
        endpoint = create_endpoint(client, rcv.url("/endpoint"), "task.completed")
        tasks = [submit(client, f"kill {i}", webhook_url=rcv.url("/task")) for i in range(6)]
    # Four messages per receiver in flight (HATCHERY_WEBHOOK_PER_RECEIVER), well within their
    # 3 s timeout; the others wait (or their tasks are still running).
    rcv.wait_held(4, "/endpoint")
    rcv.wait_held(4, "/task")
    interrupted = list(rcv.hits)
    server.kill()
    killed["yet"] = True
    kill_time = time.time()
    rcv.release()  # what the held requests' threads write now goes nowhere
    assert len(interrupted) == 8

    restarted = make_server(data, **KILL_SETTINGS)
    with restarted.client(key=key) as client:
        for task_id in tasks:
            assert wait_for_task(client, task_id)["status"] == "completed"
    rcv.wait_until(
        lambda hits: all(
            tasks_on(hits, path, since=kill_time) == set(tasks) for path in ("/endpoint", "/task")
        ),
        timeout=60,
        what="every task's messages to both receivers after the restart",
    )
    with restarted.client(key=key) as client:
        log = wait_for_log(client, settled)

    # One message per task and receiver, each delivered, each with one webhook-id on every try.
    assert len(log) == 12
    assert {d["status"] for d in log} == {"delivered"}
    by_message = {(d["endpointId"], d["subjectId"]): d for d in log}
    assert set(by_message) == {(e, t) for e in (endpoint["endpointId"], None) for t in tasks}
    for hit in rcv.hits:
        endpoint_id = endpoint["endpointId"] if hit.path == "/endpoint" else None
        delivery = by_message[endpoint_id, hit.json()["task_id"]]
        assert hit.webhook_id == delivery["webhookId"]
        assert delivery["attempts"][-1]["statusCode"] == 200
    # Each interrupted request came again after the restart: same id, same body.
    for held in interrupted:
        again = [h for h in rcv.on(held.path) if h.at > kill_time and h.body == held.body]
        assert again, f"{held.path} {held.json()['task_id']} was not sent again"
        assert {h.webhook_id for h in again} == {held.webhook_id}
    # And what the endpoint got after the restart is signed with its secret.
    for hit in rcv.on("/endpoint"):
        if hit.at > kill_time:
            verify_standard(hit.body, hit.headers, endpoint["signingSecret"])


# ------------------------------------------------------------- 2. retried on the schedule

SCHEDULE = (0.3, 0.6)  # HATCHERY_WEBHOOK_ENDPOINT_SCHEDULE="300ms,600ms": 2 retries
TIMEOUT = 1.0  # HATCHERY_WEBHOOK_ENDPOINT_TIMEOUT


def answers_by_path(hit: Hit, rcv: Receiver, counts: dict[str, int]) -> Action:
    counts[hit.path] = counts.get(hit.path, 0) + 1
    match hit.path:
        case "/slow":
            return Answer(delay=TIMEOUT + 1.5)
        case "/redirect":
            return Answer(302, {"Location": rcv.url("/redirect-target")}, b"moved")
        case "/client-error":
            return Answer(400, body=b"bad payload")
        case "/server-error":
            return Answer(500, body=b"down for now")
        case "/reset":
            return Reset()
        case "/close":
            return Close()
        case "/recovers":
            return Answer(500, body=b"not yet") if counts[hit.path] <= 2 else Answer()
    return Answer(404, body=b"no such path")


FAILURES = {  # path: what every attempt's log entry shows (status code, error contains)
    "/slow": (None, "timeout"),
    "/redirect": (302, "302"),
    "/client-error": (400, "400"),
    "/server-error": (500, "500"),
    "/reset": (None, ""),
    "/close": (None, ""),
}


def test_failing_receivers_are_retried_on_schedule_then_fail_or_recover(
    make_server: Callable[..., ServerProcess], rcv: Receiver
) -> None:
    server = make_server(
        HATCHERY_WEBHOOK_ENDPOINT_SCHEDULE="300ms,600ms",
        HATCHERY_WEBHOOK_ENDPOINT_TIMEOUT=str(TIMEOUT),
    )
    counts: dict[str, int] = {}
    rcv.behave = lambda hit: answers_by_path(hit, rcv, counts)
    key = server.new_account("schedule@example.com")
    with server.client(key=key) as client:
        paths = {
            create_endpoint(client, rcv.url(path), "task.completed")["endpointId"]: path
            for path in [*FAILURES, "/recovers"]
        }
        task_id = submit(client, "schedule")
        log = wait_for_log(client, lambda found: len(found) == len(paths) and settled(found))
        time.sleep(1.5)  # longer than the whole schedule: no attempt comes after the last one
        assert deliveries(client) == log
        listed = client.get("/v1/webhooks/endpoints").json()["endpoints"]
        states = {e["endpointId"]: e["status"] for e in listed}

    assert rcv.on("/redirect-target") == []  # redirects are not followed
    assert set(states.values()) == {"enabled"}  # failing for seconds does not disable one
    assert {d["endpointId"] for d in log} == set(paths)
    for delivery in log:
        path = paths[delivery["endpointId"]]
        attempts = delivery["attempts"]
        hits = rcv.on(path)
        assert delivery["subjectId"] == task_id
        # One request per recorded attempt, all of one message: one webhook-id, one body.
        assert [a["attempt"] for a in attempts] == list(range(1, len(attempts) + 1))
        assert len(hits) == len(attempts), path
        assert {h.webhook_id for h in hits} == {delivery["webhookId"]}
        assert len({h.body for h in hits}) == 1
        # Each retry waited at least its (jittered) delay after the attempt before it.
        for n, delay in enumerate(SCHEDULE[: len(attempts) - 1]):
            earliest = attempts[n]["attemptedAt"] + 0.9 * delay - 0.001
            assert attempts[n + 1]["attemptedAt"] >= earliest, (path, attempts)
            assert hits[n + 1].at >= earliest, (path, attempts, hits[n + 1].at)
        if path == "/recovers":
            assert delivery["status"] == "delivered"
            assert [a["statusCode"] for a in attempts] == [500, 500, 200]
            assert [a["response"] for a in attempts] == ["not yet", "not yet", "ok"]
            assert attempts[-1]["error"] is None
            assert delivery["deliveredAt"] is not None
            continue
        status_code, error = FAILURES[path]
        assert delivery["status"] == "failed", path
        assert delivery["nextAttemptAt"] is None
        assert len(attempts) == 1 + len(SCHEDULE), (path, attempts)  # then it gave up
        for attempt in attempts:
            assert attempt["statusCode"] == status_code, (path, attempt)
            assert attempt["error"] and error in attempt["error"].lower(), (path, attempt)
        if path == "/slow":  # it waited out the timeout each time
            assert all(a["durationMs"] >= 0.9 * TIMEOUT * 1000 for a in attempts), attempts
        if path == "/client-error":
            assert {a["response"] for a in attempts} == {"bad payload"}


# --------------------------------------------------- 3. deleted while its messages wait

DELETE_SCHEDULE = "3s,3s,3s"


def test_an_endpoint_deleted_while_messages_wait_gets_none_of_them(
    make_server: Callable[..., ServerProcess], rcv: Receiver
) -> None:
    server = make_server(HATCHERY_WEBHOOK_ENDPOINT_SCHEDULE=DELETE_SCHEDULE)
    # /retry and /control fail every attempt at once; /held holds each request until released.
    rcv.behave = lambda hit: Hold(Answer(500)) if hit.path == "/held" else Answer(500)
    key = server.new_account("delete@example.com")
    with server.client(key=key) as client:
        control = create_endpoint(client, rcv.url("/control"), "task.completed")["endpointId"]
        retried = create_endpoint(client, rcv.url("/retry"), "task.completed")["endpointId"]
        held = create_endpoint(client, rcv.url("/held"), "task.completed")["endpointId"]
        for i in range(6):
            submit(client, f"delete {i}")
        # /retry: each of its 6 messages failed once and waits for its retry (~3 s later);
        # /held: 4 in flight (HATCHERY_WEBHOOK_PER_RECEIVER), 2 never tried yet.
        wait_for_log(
            client,
            lambda found: (
                len(found) == 6
                and all(d["status"] == "pending" and len(d["attempts"]) == 1 for d in found)
            ),
            endpoint_id=retried,
        )
        rcv.wait_held(4, "/held")
        for endpoint_id in (retried, held):
            assert client.delete(f"/v1/webhooks/endpoints/{endpoint_id}").status_code == 204
        deleted_at = time.time()
        before = {path: len(rcv.on(path)) for path in ("/retry", "/held", "/control")}
        rcv.release()  # the held ones are answered (500) now, after the DELETE

        # Past when every waiting retry was due: the control endpoint gets its retries.
        rcv.wait_until(
            lambda hits: sum(h.path == "/control" and h.at > deleted_at for h in hits) >= 6,
            timeout=15,
            what="the control endpoint's retries",
        )
        assert len(rcv.on("/retry")) == 6  # its retries were as due as those: none came
        retried_log = wait_for_log(
            client, lambda found: {d["status"] for d in found} == {"cancelled"}, retried
        )
        held_log = wait_for_log(
            client, lambda found: {d["status"] for d in found} == {"cancelled"}, held, timeout=20
        )
        control_log = wait_for_log(
            client, lambda found: all(len(d["attempts"]) >= 2 for d in found), control
        )
        time.sleep(1.0)  # and a little longer: nothing more comes to the deleted ones

    assert (before["/retry"], before["/held"]) == (6, 4)
    assert len(rcv.on("/retry")) == 6  # nothing after the DELETE
    assert len(rcv.on("/held")) == 4  # the 4 in flight were sent before it; the rest never
    assert len(retried_log) == len(held_log) == 6
    assert sorted(len(d["attempts"]) for d in held_log) == [0, 0, 1, 1, 1, 1]
    assert all(len(d["attempts"]) == 1 for d in retried_log)
    assert len(control_log) == 6 and "cancelled" not in {d["status"] for d in control_log}


# ------------------------------------------- 4. a slow endpoint does not hold back another

MANY = 1000
PER_RECEIVER = 4


def test_a_thousand_messages_to_a_slow_endpoint_do_not_hold_back_another(
    make_server: Callable[..., ServerProcess], rcv: Receiver
) -> None:
    """1000 ``task.failed`` messages for endpoint A, whose receiver takes 1 s per request; then
    ``task.completed`` ones for endpoint B, which answers at once. The events are real: Egg tasks
    whose reference image is a 404 fail at once in the server's workers (no rendering), which
    queues the thousand in seconds."""
    server = make_server(HATCHERY_WEBHOOK_PER_RECEIVER=str(PER_RECEIVER))
    rcv.behave = lambda hit: {
        "/slow": Answer(delay=1.0),
        "/fast": Answer(),
    }.get(hit.path, Answer(404, body=b"no such image"))
    key = server.new_account("fair@example.com", balance="100.00")
    with server.client(key=key) as client:
        slow = create_endpoint(client, rcv.url("/slow"), "task.failed")["endpointId"]
        fast = create_endpoint(client, rcv.url("/fast"), "task.completed")["endpointId"]

    def fail_many(worker: int) -> None:
        with server.client(key=key) as client:
            for i in range(worker, MANY, 8):
                submit(client, f"fail {i}", image_urls=[rcv.url("/missing.png")])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(fail_many, range(8)))
    with server.client(key=key) as client:
        deadline = time.monotonic() + 60
        while client.get("/v1/tasks?status=failed").json()["data"]["pagination"]["total"] < MANY:
            assert time.monotonic() < deadline, "the failing tasks did not all end"
            time.sleep(0.2)
        queued_at = len(rcv.on("/slow"))
        fast_tasks = {submit(client, f"fast {i}") for i in range(20)}
        hits = rcv.wait_until(
            lambda hits: tasks_on(hits, "/fast") == fast_tasks,
            timeout=60,
            what="endpoint B's messages",
        )
        slow_when_fast_done = sum(h.path == "/slow" for h in hits)
        slow_log = deliveries(client, slow)
        fast_log = wait_for_log(client, settled, fast)

    assert len(slow_log) == MANY
    assert {d["status"] for d in fast_log} == {"delivered"} and len(fast_log) == len(fast_tasks)
    # B's messages all got through while most of A's thousand still waited.
    pending = sum(d["status"] == "pending" for d in slow_log)
    assert pending > MANY // 2, (queued_at, slow_when_fast_done, pending)
    assert slow_when_fast_done < MANY // 2, (queued_at, slow_when_fast_done)
    # A never had more than its share of attempts in flight at once.
    assert rcv.most_in_flight["/slow"] <= PER_RECEIVER
