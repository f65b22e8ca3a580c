"""Webhooks to a real receiver on 127.0.0.1: seed payloads, the seeds' own verify(), retries from
the durable outbox with an identical body, and the URL guard."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from hatchery.client import Client
from hatchery.webhooks import (
    InvalidSignatureError,
    MissingHeaderError,
    StaleTimestampError,
)
from hatchery.webhooks import verify as sdk_verify
from tests.contract import COMPLETED_EVENT_FIELDS, FAILED_EVENT_FIELDS
from tests.helpers import LocalHTTPServer, ServerProcess, wait_for_task


def seed_verify(signature: str, timestamp: str, raw_body: str, secret: str) -> bool:
    """Seed 001's verification function, as written."""
    message = f"{timestamp}.{raw_body}".encode("utf-8")  # noqa: UP012 (the seed, verbatim)
    expected = (
        "sha256="
        + hmac.new(
            secret.encode("utf-8"),
            message,
            hashlib.sha256,
        ).hexdigest()
    )
    return hmac.compare_digest(signature, expected)


def submit(client: httpx.Client, receiver: LocalHTTPServer, path: str, **body: object) -> str:
    payload = {"model": "nanobanana", "prompt": "hook", "webhook_url": receiver.url(path), **body}
    response = client.post("/v1/generate", json=payload)
    assert response.status_code == 202, response.text
    return str(response.json()["data"]["id"])


def test_completed_webhook_is_signed_and_verifies(
    server: ServerProcess, receiver: LocalHTTPServer
) -> None:
    key = server.new_account("hooks@example.com")
    secret = server.cli("webhook-secret", "rotate", "hooks@example.com").stdout.strip()
    assert secret.startswith("whsec_")
    with server.client(key=key) as client:
        task_id = submit(client, receiver, "/done")
        (hook,) = receiver.wait_for(1, path="/done")
        task = wait_for_task(client, task_id)
    assert hook.headers["Content-Type"] == "application/json"
    timestamp = hook.headers["X-EggAPI-Timestamp"]
    signature = hook.headers["X-EggAPI-Signature"]
    assert seed_verify(signature, timestamp, hook.body.decode("utf-8"), secret)
    assert not seed_verify(signature, timestamp, hook.body.decode("utf-8"), secret + "x")
    assert sdk_verify(hook.body, hook.headers, secret)["task_id"] == task_id
    event = hook.json()
    assert list(event) == COMPLETED_EVENT_FIELDS
    assert event["event"] == "task.completed" and event["status"] == "completed"
    assert event["task_id"] == task_id and event["model"] == "nanobanana"
    assert event["output"] == task["output"]
    assert event["error"] is None
    assert event["cost"] == "0.010000"
    assert isinstance(event["timestamp"], int)


def test_sdk_verify_on_a_real_delivery_and_tampered_copies(
    server: ServerProcess, receiver: LocalHTTPServer
) -> None:
    """The SDK's verify() accepts the delivery exactly as received and refuses every alteration."""
    key = server.new_account("verify@example.com")
    secret = server.cli("webhook-secret", "rotate", "verify@example.com").stdout.strip()
    with Client(api_key=key, base_url=server.url) as client:
        task = client.generate(
            model="nanobanana", prompt="signed", webhook_url=receiver.url("/v"), wait=True
        )
    (hook,) = receiver.wait_for(1, path="/v")
    event = sdk_verify(hook.body, hook.headers, secret)
    assert event["task_id"] == task.id and event["event"] == "task.completed"
    assert sdk_verify(hook.body.decode(), hook.headers, secret, tolerance=60) == event
    ts = int(hook.headers["X-EggAPI-Timestamp"])
    tampered_body = hook.body.replace(b'"cost":"0.010000"', b'"cost":"0.000000"')
    assert tampered_body != hook.body
    later_ts = {**hook.headers, "X-EggAPI-Timestamp": str(ts + 1)}
    bad_signature = {**hook.headers, "X-EggAPI-Signature": "sha256=" + "0" * 64}
    for body, headers, key_used in [
        (tampered_body, hook.headers, secret),
        (hook.body + b" ", hook.headers, secret),
        (hook.body, later_ts, secret),
        (hook.body, bad_signature, secret),
        (hook.body, hook.headers, secret + "x"),
    ]:
        with pytest.raises(InvalidSignatureError):
            sdk_verify(body, headers, key_used)
    with pytest.raises(StaleTimestampError):
        sdk_verify(hook.body, hook.headers, secret, now=ts + 301)
    assert sdk_verify(hook.body, hook.headers, secret, now=ts + 299) == event
    for name in ("X-EggAPI-Signature", "X-EggAPI-Timestamp"):
        headers = {k: v for k, v in hook.headers.items() if k != name}
        with pytest.raises(MissingHeaderError, match=name):
            sdk_verify(hook.body, headers, secret)


def test_no_signature_without_a_secret(server: ServerProcess, receiver: LocalHTTPServer) -> None:
    with server.client() as client:
        submit(client, receiver, "/unsigned")
        (hook,) = receiver.wait_for(1, path="/unsigned")
    assert "X-EggAPI-Signature" not in hook.headers
    assert hook.headers["X-EggAPI-Timestamp"].isdigit()


def test_failed_task_webhook(server: ServerProcess, receiver: LocalHTTPServer) -> None:
    with server.client() as client:
        task_id = submit(client, receiver, "/failed", image_urls=[receiver.url("/not-an-image")])
        (hook,) = receiver.wait_for(1, path="/failed")
    event = hook.json()
    assert event["event"] == "task.failed" and event["status"] == "failed"
    assert event["task_id"] == task_id
    assert list(event) == FAILED_EVENT_FIELDS
    assert event["cost"] == "0.000000"
    assert "image_urls[0]" in event["error"]


def test_retries_until_2xx_with_an_identical_body(
    make_server: Callable[..., ServerProcess], receiver: LocalHTTPServer
) -> None:
    server = make_server()
    answers = iter([500, 503, 302, 200])
    receiver.respond = lambda path, method: (next(answers, 200), {"Location": "/elsewhere"}, b"")
    with server.client() as client:
        submit(client, receiver, "/flaky")
        hooks = receiver.wait_for(4, path="/flaky", timeout=30)
    assert len({h.body for h in hooks}) == 1
    assert not [r for r in receiver.received if r.path == "/elsewhere"]


def test_gives_up_after_five_retries(
    make_server: Callable[..., ServerProcess], receiver: LocalHTTPServer
) -> None:
    server = make_server(HATCHERY_WEBHOOK_BACKOFF_BASE="0.05")
    receiver.respond = lambda path, method: (500, {}, b"down")
    with server.client() as client:
        submit(client, receiver, "/down")
        receiver.wait_for(6, path="/down", timeout=30)
        time.sleep(1.5)
    assert len([r for r in receiver.received if r.path == "/down"]) == 6


def test_delivery_survives_a_restart(
    make_server: Callable[..., ServerProcess], receiver: LocalHTTPServer, tmp_path: Path
) -> None:
    data = tmp_path / "restart"
    receiver.respond = lambda path, method: (500, {}, b"")
    server = make_server(data, HATCHERY_WEBHOOK_BACKOFF_BASE="2")
    with server.client() as client:
        task_id = submit(client, receiver, "/later")
        receiver.wait_for(1, path="/later")
    server.kill()
    receiver.respond = lambda path, method: (200, {}, b"")
    restarted = make_server(data, HATCHERY_WEBHOOK_BACKOFF_BASE="2")
    restarted.key = server.key
    hooks = receiver.wait_for(2, path="/later", timeout=30)
    assert hooks[0].body == hooks[1].body
    assert json.loads(hooks[1].body)["task_id"] == task_id


def test_private_webhook_url_is_refused_by_default(
    make_server: Callable[..., ServerProcess], receiver: LocalHTTPServer
) -> None:
    server = make_server(HATCHERY_ALLOW_PRIVATE_URLS="0")
    with server.client() as client:
        before = client.get("/v1/account").json()["data"]["available"]
        for url in (
            receiver.url("/x"),
            "http://localhost:9/x",
            "http://[::1]:9/x",
            "http://169.254.169.254/latest/meta-data",
            "http://10.0.0.8/x",
        ):
            response = client.post(
                "/v1/generate", json={"model": "nanobanana", "prompt": "p", "webhook_url": url}
            )
            assert response.status_code == 400, url
            error = response.json()["error"]
            assert error["code"] == "VALIDATION_ERROR"
            assert "WebhookURL" in error["message"]
            assert "HATCHERY_ALLOW_PRIVATE_URLS=1" in error["message"]
        response = client.post(
            "/v1/generate",
            json={"model": "nanobanana", "prompt": "p", "image_urls": ["http://127.0.0.1:9/a.png"]},
        )
        assert response.status_code == 400
        assert "ImageURLs" in response.json()["error"]["message"]
        assert client.get("/v1/tasks").json()["data"]["pagination"]["total"] == 0
        assert client.get("/v1/account").json()["data"]["available"] == before
    assert receiver.received == []


@pytest.mark.parametrize("secret_rotations", [2])
def test_rotated_secret_signs_new_deliveries(
    server: ServerProcess, receiver: LocalHTTPServer, secret_rotations: int
) -> None:
    key = server.new_account("rotate@example.com")
    secrets = [
        server.cli("webhook-secret", "rotate", "rotate@example.com").stdout.strip()
        for _ in range(secret_rotations)
    ]
    assert len(set(secrets)) == secret_rotations
    with server.client(key=key) as client:
        submit(client, receiver, "/rotated")
        (hook,) = receiver.wait_for(1, path="/rotated")
    sig, ts = hook.headers["X-EggAPI-Signature"], hook.headers["X-EggAPI-Timestamp"]
    assert seed_verify(sig, ts, hook.body.decode(), secrets[-1])
    assert not seed_verify(sig, ts, hook.body.decode(), secrets[0])


def test_a_large_2xx_answer_is_a_delivery(server: ServerProcess, receiver: LocalHTTPServer) -> None:
    receiver.respond = lambda path, method: (200, {}, b"x" * 200_000)
    with server.client() as client:
        task_id = submit(client, receiver, "/chatty")
        receiver.wait_for(1, path="/chatty")
        wait_for_task(client, task_id)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows = server.query(
            "SELECT status, attempts FROM webhook_deliveries WHERE subject_id = :id", id=task_id
        )
        row = rows[0] if rows else None
        if row and row[0] != "pending":
            break
        time.sleep(0.1)
    assert row == ("delivered", 1)


def test_the_sdk_reads_a_tasks_delivery_log_and_redelivers(
    server: ServerProcess, receiver: LocalHTTPServer
) -> None:
    """``tasks.webhooks`` shows each attempt (a 500 with its answer, then the 200);
    ``tasks.redeliver_webhook`` sends the message again with the same webhook-id."""
    answers = iter([(500, b"receiver down")])

    def first_down(path: str, method: str) -> tuple[int, dict[str, str], bytes]:
        status, body = next(answers, (200, b"fine"))
        return status, {}, body

    receiver.respond = first_down
    key = server.new_account("sdk-log@example.com")
    with Client(api_key=key, base_url=server.url) as client:
        task = client.generate(
            model="nanobanana", prompt="logged", webhook_url=receiver.url("/log"), wait=True
        )
        first, second = receiver.wait_for(2, path="/log")
        deadline = time.monotonic() + 10
        while (log := client.tasks.webhooks(task.id))[0].status != "delivered":
            assert time.monotonic() < deadline, log
            time.sleep(0.1)
        (delivery,) = log
        assert delivery.event == "task.completed" and delivery.url == receiver.url("/log")
        assert delivery.webhook_id == first.headers["webhook-id"] == second.headers["webhook-id"]
        assert [(a.attempt, a.status_code) for a in delivery.attempts] == [(1, 500), (2, 200)]
        assert (delivery.attempts[0].response, delivery.attempts[0].error) == (
            "receiver down",
            "HTTP 500",
        )
        assert delivery.attempts[1].response == "fine" and delivery.delivered_at is not None
        again = client.tasks.redeliver_webhook(task.id, delivery.id)
        assert again.id == delivery.id and again.status == "pending"
        third = receiver.wait_for(3, path="/log")[2]
    assert third.headers["webhook-id"] == delivery.webhook_id and third.body == first.body
