"""Registered webhook endpoints and the delivery log, with real deliveries to real receivers on
127.0.0.1: the registry and its refusals (the URL policy by decisions only), every VideoGen event
(tool executions, file uploads, an endpoint's disabling, the test event) verified with the
``standardwebhooks`` library and with the official VideoGen SDK's ``verify_webhook_signature``,
the Egg API's per-task webhooks with the Standard Webhooks headers beside its own, the delivery
log with each attempt, redelivery, disabling and enabling, and deleting an endpoint with messages
still queued for it."""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from hatchery.webhooks import verify as egg_verify
from tests.files_helpers import mp4, png, upload
from tests.helpers import LocalHTTPServer, Received, ServerProcess, run_videogen_sdk, wait_for_task
from tests.tools_helpers import download, run_tool, succeeded, wait_for_execution

EXECUTION_EVENTS = ["tool_execution.succeeded", "tool_execution.failed", "tool_execution.cancelled"]
FILE_EVENTS = [
    "file.upload.completed",
    "file.upload.failed",
    "file.playback_ready",
    "file.download_ready",
    "file.analysis_completed",
    "file.analysis_failed",
]
READY_EVENTS = {"file.upload.completed", "file.analysis_completed", "file.download_ready"}
FAILED_EVENTS = {"file.upload.failed", "file.analysis_failed"}
DENIED = "forbidden"  # on the fast server's moderation deny-list
RETRY_AFTER = 2.0  # the fast server's first retry, in seconds


# ------------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def fast(
    tmp_path_factory: pytest.TempPathFactory,
    new_database: Callable[[], tuple[str | None, str | None]],
) -> Iterator[ServerProcess]:
    """A server whose endpoints are retried soon (2 s, then every 300 ms), disabled after one
    second of failing attempts, and whose moderation refuses prompts saying ``forbidden``."""
    data_dir = tmp_path_factory.mktemp("fast-hooks")
    denylist = data_dir / "deny.txt"
    denylist.write_text(f"{DENIED}\n")
    url, key = new_database()
    settings = {
        "HATCHERY_WEBHOOK_ENDPOINT_SCHEDULE": f"{RETRY_AFTER:g}s,300ms,300ms,300ms",
        "HATCHERY_WEBHOOK_DISABLE_AFTER": "1",
        "HATCHERY_MODERATION_DENYLIST": str(denylist),
    }
    proc = ServerProcess(data_dir, settings, database_url=url, key=key).start()
    yield proc
    proc.stop()


def header(hook: Received, name: str) -> str | None:
    return next((v for k, v in hook.headers.items() if k.lower() == name.lower()), None)


def verified(hook: Received, secret: str) -> dict[str, Any]:
    """The delivery checked by the ``standardwebhooks`` library, as a receiver would."""
    event: dict[str, Any] = Webhook(secret).verify(hook.body, hook.headers)
    return event


def refused_by(hook: Received, secret: str) -> bool:
    try:
        Webhook(secret).verify(hook.body, hook.headers)
    except WebhookVerificationError:
        return True
    return False


def create_endpoint(
    client: httpx.Client, url: str, events: list[str], **extra: Any
) -> dict[str, Any]:
    response = client.post("/v1/webhooks/endpoints", json={"url": url, "events": events, **extra})
    assert response.status_code == 201, response.text
    endpoint: dict[str, Any] = response.json()
    return endpoint


def vg_error(response: httpx.Response, status: int, code: str) -> str:
    """The VideoGen error body (``message`` and ``code``) of a refusal; its message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code and isinstance(body["message"], str) and body["message"], body
    assert "error" not in body and "data" not in body  # not the Egg API's envelope
    message: str = body["message"]
    return message


def deliveries(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/v1/webhooks/deliveries", params=params)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["deliveries"]
    return found


def settled(
    read: Callable[[], list[dict[str, Any]]], done: Callable[[dict[str, Any]], bool]
) -> list[dict[str, Any]]:
    """What ``read`` gives once it is not empty and ``done`` holds for each entry (the log is
    written when an attempt ends, a moment after the receiver answered)."""
    deadline = time.monotonic() + 30
    while True:
        found = read()
        if found and all(done(d) for d in found):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"the delivery log did not settle: {found}")
        time.sleep(0.05)


def delivered(d: dict[str, Any]) -> bool:
    return d["status"] == "delivered"


def by_path(replies: dict[str, tuple[int, bytes]]) -> Callable:
    """A receiver's ``respond`` answering each path its own way (200 ``ok`` elsewhere)."""

    def respond(path: str, method: str) -> tuple[int, dict[str, str], bytes]:
        status, body = replies.get(path, (200, b"ok"))
        return status, {}, body

    return respond


def in_turn(*replies: tuple[int, bytes]) -> Callable:
    """A receiver's ``respond`` giving ``replies`` in turn, then 200 ``ok`` for ever."""
    sequence = itertools.chain(replies, itertools.repeat((200, b"ok")))

    def respond(path: str, method: str) -> tuple[int, dict[str, str], bytes]:
        status, body = next(sequence)
        return status, {}, body

    return respond


def after_this_second(timestamp: str | None) -> None:
    """Wait until the clock is past the whole second ``timestamp`` (a Unix time), so a new
    attempt's timestamp differs from it."""
    assert timestamp is not None
    time.sleep(max(0.0, int(timestamp) + 1.05 - time.time()))


def submit_egg(client: httpx.Client, webhook_url: str) -> str:
    body = {"model": "nanobanana", "prompt": "hooked", "webhook_url": webhook_url}
    response = client.post("/v1/generate", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["data"]["id"])


def task_log(client: httpx.Client, task_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/v1/tasks/{task_id}/webhooks")
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["data"]["items"]
    return items


def sdk_verify(tmp_path: Path, secret: str, hooks: list[Received]) -> dict[str, Any]:
    """The official VideoGen SDK's verdict on these deliveries (``tests/sdk/videogen_webhooks``)."""
    given = {
        "secret": secret,
        "deliveries": [{"body": h.body.decode("utf-8"), "headers": h.headers} for h in hooks],
    }
    path = tmp_path / "deliveries.json"
    path.write_text(json.dumps(given))
    return run_videogen_sdk("videogen_webhooks.py", str(path))


def assert_sdk_refuses_altered_copies(seen: dict[str, Any]) -> None:
    altered = seen["altered"]
    assert altered["as_received"] == {"accepted": True, "error": None}
    assert altered["resigned_now"] == {"accepted": True, "error": None}  # the re-signing is right
    for case in ("tampered_body", "tampered_signature", "wrong_secret", "no_signature"):
        assert altered[case]["accepted"] is False, case
    assert "signature" in altered["tampered_body"]["error"].lower()
    assert altered["resigned_6_minutes_ago"]["accepted"] is False
    assert "too old" in altered["resigned_6_minutes_ago"]["error"]


def by_file(events: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """File events by file id and event name, each file's event sent once; each with its file."""
    got: dict[str, dict[str, dict[str, Any]]] = {}
    for event in events:
        assert isinstance(event["occurredAt"], int)
        assert event["file"]["fileId"] == event["fileId"]
        assert event["event"] not in got.setdefault(event["fileId"], {})
        got[event["fileId"]][event["event"]] = event
    return got


def paged(client: httpx.Client, limit: int) -> list[list[str]]:
    """The account's delivery log page by page, following ``nextCursor``: the ids on each."""
    pages, cursor = [], None
    while True:
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/webhooks/deliveries", params=params).json()
        pages.append([d["deliveryId"] for d in page["deliveries"]])
        if not page["hasMore"]:
            assert page["nextCursor"] is None
            return pages
        cursor = page["nextCursor"]
        assert len(pages) < 20, "the cursor does not move on"


# ------------------------------------------------------------------------------- the registry


def test_the_registry_shows_the_secret_once_then_lists_gets_and_deletes(
    server: ServerProcess, receiver: LocalHTTPServer
) -> None:
    with server.client(key=server.new_account("registry@example.com")) as client:
        before = int(time.time())
        made = create_endpoint(
            client,
            receiver.url("/registry"),
            ["tool_execution.succeeded", "file.upload.completed"],
            description="the render farm's receiver",
        )
        second = create_endpoint(client, receiver.url("/registry-2"), ["task.completed"])
        secret = made["signingSecret"]
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) >= 24
        assert made["signingSecretLast4"] == secret[-4:]
        assert second["signingSecret"] != secret
        assert made["endpointId"].startswith("ep_") and made["endpointId"] != second["endpointId"]
        assert made["url"] == receiver.url("/registry")
        assert made["events"] == ["tool_execution.succeeded", "file.upload.completed"]
        assert made["description"] == "the render farm's receiver"
        assert second["description"] is None
        assert isinstance(made["createdAt"], int) and before <= made["createdAt"] <= time.time()
        assert (made["status"], made["disabledAt"], made["disabledReason"]) == (
            "enabled",
            None,
            None,
        )

        listed = client.get("/v1/webhooks/endpoints")
        assert listed.status_code == 200
        endpoints = listed.json()["endpoints"]
        assert endpoints == [
            {**made, "signingSecret": None},
            {**second, "signingSecret": None},
        ]
        one = client.get(f"/v1/webhooks/endpoints/{made['endpointId']}")
        assert one.status_code == 200 and one.json() == endpoints[0]

        deleted = client.delete(f"/v1/webhooks/endpoints/{made['endpointId']}")
        assert deleted.status_code == 204 and deleted.content == b""
        gone = client.get(f"/v1/webhooks/endpoints/{made['endpointId']}")
        vg_error(gone, 404, "not_found")
        again = client.delete(f"/v1/webhooks/endpoints/{made['endpointId']}")
        vg_error(again, 404, "not_found")
        left = client.get("/v1/webhooks/endpoints").json()["endpoints"]
        assert [e["endpointId"] for e in left] == [second["endpointId"]]


def test_the_registry_refuses_bad_requests_and_other_accounts_endpoints(
    server: ServerProcess, receiver: LocalHTTPServer
) -> None:
    url = receiver.url("/refusals")
    with server.client(key=server.new_account("refusals@example.com")) as client:
        for body, named in [
            ({"events": ["tool_execution.succeeded"]}, "url"),
            ({"url": url}, "events"),
            ({"url": url, "events": []}, "events"),
            ({"url": url, "events": ["tool_execution.exploded"]}, "tool_execution.exploded"),
            ({"url": url, "events": ["workflow_run.succeeded"]}, "workflow_run.succeeded"),
        ]:
            response = client.post("/v1/webhooks/endpoints", json=body)
            assert named in vg_error(response, 400, "invalid_parameters"), body
        assert client.get("/v1/webhooks/endpoints").json()["endpoints"] == []
        for method, path in [
            ("GET", "/v1/webhooks/endpoints/nope"),
            ("DELETE", "/v1/webhooks/endpoints/vg_exec_abcdefghijklmnop"),
            ("POST", "/v1/webhooks/endpoints/ep_/test"),
            ("GET", "/v1/webhooks/deliveries/nope"),
        ]:
            vg_error(client.request(method, path), 400, "invalid_id")

        with server.client(key=server.new_account("owner@example.com")) as owner:
            theirs = create_endpoint(owner, receiver.url("/theirs"), ["tool_execution.failed"])
            sent = owner.post(f"/v1/webhooks/endpoints/{theirs['endpointId']}/test")
            assert sent.status_code == 202
            receiver.wait_for(1, path="/theirs")
            base = f"/v1/webhooks/endpoints/{theirs['endpointId']}"
            for method, path in [
                ("GET", base),
                ("DELETE", base),
                ("POST", f"{base}/test"),
                ("POST", f"{base}/enable"),
                ("GET", f"/v1/webhooks/deliveries/{sent.json()['deliveryId']}"),
                ("POST", f"/v1/webhooks/deliveries/{sent.json()['deliveryId']}/redeliver"),
            ]:
                vg_error(client.request(method, path), 404, "not_found")
            assert deliveries(client, endpointId=theirs["endpointId"]) == []
            assert client.get("/v1/webhooks/endpoints").json()["endpoints"] == []
            still = owner.get(base)
            assert still.status_code == 200 and still.json()["status"] == "enabled"
            assert len(deliveries(owner, endpointId=theirs["endpointId"])) == 1


@pytest.mark.any_backend
def test_endpoint_urls_must_be_https_and_public_unless_private_ones_are_allowed(
    server: ServerProcess, make_server: Callable[..., ServerProcess], receiver: LocalHTTPServer
) -> None:
    """Decisions only: every URL here is a loopback, private or link-local literal, and none is
    reached (a refusal is made before any connection)."""
    strict = make_server(HATCHERY_ALLOW_PRIVATE_URLS="0")
    with strict.client(key=strict.new_account("strict@example.com")) as client:
        for url, why in [
            (receiver.url("/h"), "https"),
            ("https://127.0.0.1/h", "loopback"),
            ("https://169.254.169.254/latest/meta-data", "metadata"),
            ("https://[::1]:8443/h", "loopback"),
            ("https://10.0.0.8/h", "private"),
        ]:
            response = client.post(
                "/v1/webhooks/endpoints", json={"url": url, "events": ["task.completed"]}
            )
            assert why in vg_error(response, 400, "invalid_parameters"), url
        assert client.get("/v1/webhooks/endpoints").json()["endpoints"] == []
    assert receiver.received == []
    with server.client(key=server.new_account("lenient@example.com")) as client:
        made = create_endpoint(client, receiver.url("/h"), ["task.completed"])
        assert made["url"] == receiver.url("/h")


# ------------------------------------------------------------------------------- tool executions


def sdk_registry(server: ServerProcess, key: str, *args: str) -> dict[str, Any]:
    return run_videogen_sdk("videogen_webhook_registry.py", server.url, key, *args)


def test_the_official_sdk_creates_lists_and_deletes_endpoints(
    server: ServerProcess, receiver: LocalHTTPServer
) -> None:
    """The vendor's SDK, unchanged: its create answer carries the secret that signs what the
    endpoint then receives; its list shows the last four only; its delete is a 204, and a second
    delete its ApiError 404."""
    key = server.new_account("sdk-registry@example.com")
    made = sdk_registry(server, key, "create", receiver.url("/sdk"), *EXECUTION_EVENTS)["endpoint"]
    assert made["type"] == "WebhookEndpoint" and made["endpoint_id"].startswith("ep_")
    assert made["events"] == EXECUTION_EVENTS and made["description"] == "sdk"
    secret = made["signing_secret"]
    assert secret.startswith("whsec_") and made["signing_secret_last4"] == secret[-4:]
    (listed,) = sdk_registry(server, key, "list")["endpoints"]
    assert listed["signing_secret"] is None
    assert {k: v for k, v in listed.items() if k != "signing_secret"} == {
        k: v for k, v in made.items() if k != "signing_secret"
    }
    with server.client(key=key) as client:
        execution = succeeded(client, "generate-image", prompt="signed for the sdk")
    (hook,) = receiver.wait_for(1, path="/sdk")
    assert verified(hook, secret)["toolExecutionId"] == execution["toolExecutionId"]
    deleted = sdk_registry(server, key, "delete", made["endpoint_id"])
    assert deleted["deleted"] is None
    assert deleted["again"]["status"] == 404 and deleted["again"]["body"]["code"] == "not_found"
    assert sdk_registry(server, key, "list")["endpoints"] == []


def test_a_succeeded_execution_is_delivered_signed_to_its_subscribers_only(
    server: ServerProcess, receiver: LocalHTTPServer, tmp_path: Path
) -> None:
    with server.client(key=server.new_account("tool-hooks@example.com")) as client:
        hooked = create_endpoint(client, receiver.url("/tool"), EXECUTION_EVENTS)
        other = create_endpoint(
            client, receiver.url("/other"), ["file.upload.completed", "task.completed"]
        )
        execution = succeeded(client, "generate-image", prompt="a lighthouse at dusk")
        execution_id = execution["toolExecutionId"]
        (hook,) = receiver.wait_for(1, path="/tool")
        secret = hooked["signingSecret"]
        event = verified(hook, secret)
        assert event == hook.json()
        assert refused_by(hook, other["signingSecret"])
        assert set(event) == {"event", "toolExecutionId", "toolType", "occurredAt", "results"}
        assert event["event"] == "tool_execution.succeeded"
        assert (event["toolExecutionId"], event["toolType"]) == (execution_id, "GENERATE_IMAGE")
        assert isinstance(event["occurredAt"], int)
        assert event["occurredAt"] == int(execution["completedAt"])
        (result,) = event["results"]
        (expected,) = execution["results"]
        assert (result["fileId"], result["type"]) == (expected["fileId"], "IMAGE")
        file = result["file"]
        assert file["fileId"] == expected["fileId"] and file["downloadSource"]["status"] == "ready"
        assert download(result) == download(expected)

        webhook_id = header(hook, "webhook-id")
        assert webhook_id and webhook_id.startswith("msg_")
        (logged,) = settled(lambda: deliveries(client, toolExecutionId=execution_id), delivered)
        assert logged["webhookId"] == webhook_id and logged["endpointId"] == hooked["endpointId"]
        assert (logged["event"], logged["subjectId"]) == ("tool_execution.succeeded", execution_id)
        assert deliveries(client, endpointId=other["endpointId"]) == []
        assert [r for r in receiver.received if r.path == "/other"] == []

        seen = sdk_verify(tmp_path, secret, [hook])
        (checked,) = seen["deliveries"]
        assert checked["verified"] == event and checked["webhook_id"] == webhook_id
        assert checked["typed"]["model"] == "ToolExecutionWebhookPayload"
        assert checked["typed"]["tool_execution_id"] == execution_id
        assert checked["typed"]["tool_type"] == "GENERATE_IMAGE"
        assert checked["typed"]["occurred_at"] == event["occurredAt"]
        assert checked["typed"]["results"] == [
            {
                "file_id": expected["fileId"],
                "type": "IMAGE",
                "file_id_of_file": expected["fileId"],
                "download_url": True,
            }
        ]
        assert checked["typed"]["error"] is None
        assert_sdk_refuses_altered_copies(seen)

        # redelivered: the same message id, a new timestamp and a signature that verifies
        after_this_second(header(hook, "webhook-timestamp"))
        again = client.post(f"/v1/webhooks/deliveries/{logged['deliveryId']}/redeliver")
        assert again.status_code == 202, again.text
        assert again.json()["deliveryId"] == logged["deliveryId"]
        second = receiver.wait_for(2, path="/tool")[1]
        assert header(second, "webhook-id") == webhook_id
        assert int(header(second, "webhook-timestamp") or 0) > int(
            header(hook, "webhook-timestamp") or 0
        )
        assert header(second, "webhook-signature") != header(hook, "webhook-signature")
        redone = verified(second, secret)
        assert redone["toolExecutionId"] == execution_id
        assert redone["occurredAt"] == event["occurredAt"]
        assert download(redone["results"][0]) == download(expected)
        (after,) = settled(
            lambda: [client.get(f"/v1/webhooks/deliveries/{logged['deliveryId']}").json()],
            lambda d: delivered(d) and len(d["attempts"]) == 2,
        )
        assert [a["statusCode"] for a in after["attempts"]] == [200, 200]


def test_a_cancelled_execution_carries_neither_results_nor_error(
    server: ServerProcess, receiver: LocalHTTPServer
) -> None:
    with server.client(key=server.new_account("cancel-hooks@example.com", "50.00")) as client:
        endpoint = create_endpoint(client, receiver.url("/cancelled"), EXECUTION_EVENTS)
        execution_id = run_tool(
            client, "generate-sound-effect", prompt="rain on a tin roof", durationSeconds=30,
            numResults=100,
        )  # fmt: skip
        cancel = client.post(f"/v1/tools/executions/{execution_id}/cancel")
        assert cancel.status_code == 202
        assert wait_for_execution(client, execution_id)["status"] == "cancelled"
        (hook,) = receiver.wait_for(1, path="/cancelled")
        event = verified(hook, endpoint["signingSecret"])
        assert event == {
            "event": "tool_execution.cancelled",
            "toolExecutionId": execution_id,
            "toolType": "GENERATE_SOUND_EFFECT",
            "occurredAt": event["occurredAt"],
        }
        assert isinstance(event["occurredAt"], int)
        logged = settled(lambda: deliveries(client, toolExecutionId=execution_id), delivered)
        assert [d["event"] for d in logged] == ["tool_execution.cancelled"]


def test_a_failed_execution_carries_its_error_and_no_results(
    fast: ServerProcess, receiver: LocalHTTPServer, tmp_path: Path
) -> None:
    with fast.client(key=fast.new_account("failed-hooks@example.com")) as client:
        endpoint = create_endpoint(client, receiver.url("/failed"), ["tool_execution.failed"])
        execution_id = run_tool(client, "generate-image", prompt=f"a {DENIED} castle")
        execution = wait_for_execution(client, execution_id)
        assert execution["status"] == "failed"
        (hook,) = receiver.wait_for(1, path="/failed")
        event = verified(hook, endpoint["signingSecret"])
        assert set(event) == {"event", "toolExecutionId", "toolType", "occurredAt", "error"}
        assert (event["event"], event["toolExecutionId"]) == ("tool_execution.failed", execution_id)
        assert event["toolType"] == "GENERATE_IMAGE" and isinstance(event["occurredAt"], int)
        assert event["error"] == execution["error"]
        assert event["error"]["code"] == "content_moderated" and event["error"]["message"]
        seen = sdk_verify(tmp_path, endpoint["signingSecret"], [hook])
        typed = seen["deliveries"][0]["typed"]
        assert typed["model"] == "ToolExecutionWebhookPayload" and typed["results"] is None
        assert typed["error"]["code"] == "content_moderated"
        assert typed["error"]["message"] == event["error"]["message"]


# ------------------------------------------------------------------------------- files


def test_upload_events_each_a_message_of_its_own_with_the_file_hydrated(
    server: ServerProcess, receiver: LocalHTTPServer, tmp_path: Path
) -> None:
    picture = png(80, 60)
    clip = mp4(tmp_path / "clip.mp4", seconds=1.0)
    with server.client(key=server.new_account("file-hooks@example.com")) as client:
        endpoint = create_endpoint(client, receiver.url("/files"), FILE_EVENTS)
        secret = endpoint["signingSecret"]
        image = upload(client, picture, "a hooked photo")
        video = upload(client, clip, "a hooked clip")
        bad = upload(client, b"<html><body>not a picture</body></html>", "a page")
        assert (image["status"], video["status"], bad["status"]) == ("ready", "ready", "failed")
        hooks = receiver.wait_for(9, path="/files")
        events = [verified(h, secret) for h in hooks]
        assert len({header(h, "webhook-id") for h in hooks}) == 9
        got = by_file(events)
        assert set(got) == {image["fileId"], video["fileId"], bad["fileId"]}
        assert set(got[image["fileId"]]) == READY_EVENTS
        assert set(got[video["fileId"]]) == READY_EVENTS | {"file.playback_ready"}
        assert set(got[bad["fileId"]]) == FAILED_EVENTS

        for file_id, data in ((image["fileId"], picture), (video["fileId"], clip)):
            for name, event in got[file_id].items():
                assert set(event) == {"event", "fileId", "occurredAt", "file"}, name
                assert event["file"]["status"] == "ready"
                source = event["file"]["downloadSource"]
                assert source["status"] == "ready" and source["fileBytes"] == len(data)
                assert httpx.get(source["url"], timeout=30).content == data
        playable = got[video["fileId"]]["file.playback_ready"]["file"]["previewSource"]
        assert playable["status"] == "ready"
        assert httpx.get(playable["url"], timeout=30).status_code == 200
        for name, event in got[bad["fileId"]].items():
            assert set(event) == {"event", "fileId", "occurredAt", "file", "error"}, name
            assert event["file"]["status"] == "failed"
            assert "not an image, video or audio" in event["error"]["message"]
            assert event["error"]["code"]

        # the log, by file and page by page
        for file_id, expected in got.items():
            logged = settled(lambda f=file_id: deliveries(client, fileId=f), delivered)
            assert {d["event"] for d in logged} == set(expected)
            assert {d["subjectId"] for d in logged} == {file_id}
        everything = deliveries(client, endpointId=endpoint["endpointId"])
        assert {d["webhookId"] for d in everything} == {header(h, "webhook-id") for h in hooks}
        pages = paged(client, 4)
        assert [len(p) for p in pages] == [4, 4, 1]
        assert [i for p in pages for i in p] == [d["deliveryId"] for d in everything]  # newest 1st
        bad_cursor = client.get("/v1/webhooks/deliveries", params={"cursor": "nonsense"})
        vg_error(bad_cursor, 400, "invalid_parameters")
        both = {"fileId": image["fileId"], "toolExecutionId": "vg_exec_abcdefghijklmnop"}
        vg_error(client.get("/v1/webhooks/deliveries", params=both), 400, "invalid_parameters")
        wrong = client.get("/v1/webhooks/deliveries", params={"toolExecutionId": image["fileId"]})
        vg_error(wrong, 400, "invalid_id")

        seen = sdk_verify(tmp_path, secret, hooks)
        assert [d["verified"] for d in seen["deliveries"]] == events
        for checked, event in zip(seen["deliveries"], events, strict=True):
            typed = checked["typed"]
            assert typed["model"] == "FileUploadWebhookPayload"
            assert (typed["event"], typed["file_id"]) == (event["event"], event["fileId"])
            assert typed["file_id_of_file"] == event["fileId"]
            assert (typed["error"] is None) == (event["event"] not in FAILED_EVENTS)
        assert_sdk_refuses_altered_copies(seen)


# ------------------------------------------------------------------------------- the Egg API


def test_egg_webhooks_carry_standard_headers_beside_their_own_and_reach_endpoints(
    server: ServerProcess, receiver: LocalHTTPServer
) -> None:
    email = "egg-hooks@example.com"
    key = server.new_account(email)
    secret = server.cli("webhook-secret", "rotate", email).stdout.strip()
    with server.client(key=key) as client:
        endpoint = create_endpoint(client, receiver.url("/egg-endpoint"), ["task.completed"])
        task_id = submit_egg(client, receiver.url("/egg-url"))
        task = wait_for_task(client, task_id)
        (hook,) = receiver.wait_for(1, path="/egg-url")
        (copy,) = receiver.wait_for(1, path="/egg-endpoint")
        log = settled(lambda: task_log(client, task_id), delivered)

    event = egg_verify(hook.body, hook.headers, secret)  # the Egg API's own signature
    assert event["event"] == "task.completed" and event["task_id"] == task_id
    assert event["output"] == task["output"]
    assert verified(hook, secret) == event  # and Standard Webhooks', with the account's secret
    assert header(hook, "webhook-timestamp") == header(hook, "X-EggAPI-Timestamp")
    webhook_id = header(hook, "webhook-id")
    assert webhook_id and webhook_id.startswith("msg_")

    assert copy.body == hook.body and header(copy, "webhook-id") == webhook_id
    assert verified(copy, endpoint["signingSecret"]) == event
    assert refused_by(copy, secret)  # the endpoint's own secret signs it
    assert header(copy, "X-EggAPI-Signature") is None

    assert {(d["url"], d["endpoint_id"]) for d in log} == {
        (receiver.url("/egg-url"), None),
        (receiver.url("/egg-endpoint"), endpoint["endpointId"]),
    }
    for logged in log:
        assert (logged["webhook_id"], logged["event"]) == (webhook_id, "task.completed")
        (attempt,) = logged["attempts"]
        assert (attempt["attempt"], attempt["status_code"], attempt["response"]) == (1, 200, "ok")
        assert attempt["error"] is None and attempt["duration_ms"] >= 0


def test_egg_webhooks_without_a_secret_carry_no_signature(
    server: ServerProcess, receiver: LocalHTTPServer
) -> None:
    with server.client(key=server.new_account("egg-unsigned@example.com")) as client:
        submit_egg(client, receiver.url("/egg-unsigned"))
        (hook,) = receiver.wait_for(1, path="/egg-unsigned")
    assert (header(hook, "X-EggAPI-Timestamp") or "").isdigit()
    assert header(hook, "X-EggAPI-Signature") is None
    assert header(hook, "webhook-signature") is None
    assert hook.json()["event"] == "task.completed"


def test_egg_delivery_log_shows_each_attempt_and_redelivery_resigns(
    server: ServerProcess, receiver: LocalHTTPServer
) -> None:
    email = "egg-log@example.com"
    key = server.new_account(email)
    secret = server.cli("webhook-secret", "rotate", email).stdout.strip()
    refusal = b"busy: " + b"x" * 2000
    receiver.respond = in_turn((500, refusal))
    with server.client(key=key) as client:
        task_id = submit_egg(client, receiver.url("/egg-log"))
        first, second = receiver.wait_for(2, path="/egg-log")
        (logged,) = settled(lambda: task_log(client, task_id), delivered)
        assert first.body == second.body
        assert header(first, "webhook-id") == header(second, "webhook-id") == logged["webhook_id"]
        assert logged["url"] == receiver.url("/egg-log") and logged["endpoint_id"] is None
        failed, ok = logged["attempts"]
        assert (failed["attempt"], failed["status_code"], failed["error"]) == (1, 500, "HTTP 500")
        assert refusal.decode().startswith(failed["response"]) and len(failed["response"]) >= 64
        assert (ok["attempt"], ok["status_code"], ok["response"], ok["error"]) == (
            2,
            200,
            "ok",
            None,
        )
        assert all(
            isinstance(a["duration_ms"], int) and a["duration_ms"] >= 0 for a in (failed, ok)
        )
        assert logged["delivered_at"] is not None and logged["next_attempt_at"] is None

        after_this_second(header(second, "webhook-timestamp"))
        path = f"/v1/tasks/{task_id}/webhooks/{logged['id']}/redeliver"
        again = client.post(path)
        assert again.status_code == 202, again.text
        assert again.json()["data"]["id"] == logged["id"]
        third = receiver.wait_for(3, path="/egg-log")[2]
        assert third.body == first.body and header(third, "webhook-id") == logged["webhook_id"]
        assert int(header(third, "webhook-timestamp") or 0) > int(
            header(second, "webhook-timestamp") or 0
        )
        assert egg_verify(third.body, third.headers, secret)["task_id"] == task_id
        assert verified(third, secret)["task_id"] == task_id
        (now,) = settled(
            lambda: task_log(client, task_id), lambda d: delivered(d) and len(d["attempts"]) == 3
        )
        assert [a["status_code"] for a in now["attempts"]] == [500, 200, 200]

        other_task = submit_egg(client, receiver.url("/egg-log-other"))
        wrong = client.post(f"/v1/tasks/{other_task}/webhooks/{logged['id']}/redeliver")
        assert wrong.status_code == 404
    with server.client(key=server.new_account("egg-stranger@example.com")) as stranger:
        assert stranger.get(f"/v1/tasks/{task_id}/webhooks").status_code == 404
        assert stranger.post(path).status_code == 404
    assert len(receiver.wait_for(3, path="/egg-log")) == 3


# ------------------------------------------------------------------------------- the log, tests


def test_the_endpoint_log_shows_a_failed_attempt_then_the_delivery(
    fast: ServerProcess, receiver: LocalHTTPServer
) -> None:
    refusal = b"busy, try later " * 200
    receiver.respond = in_turn((500, refusal))
    with fast.client(key=fast.new_account("endpoint-log@example.com")) as client:
        endpoint = create_endpoint(client, receiver.url("/flaky"), ["tool_execution.succeeded"])
        execution_id = succeeded(client, "generate-image", prompt="flaky")["toolExecutionId"]
        first, second = receiver.wait_for(2, path="/flaky")
        assert header(first, "webhook-id") == header(second, "webhook-id")
        for hook in (first, second):
            assert verified(hook, endpoint["signingSecret"])["toolExecutionId"] == execution_id
        (logged,) = settled(lambda: deliveries(client, toolExecutionId=execution_id), delivered)
        assert logged["webhookId"] == header(first, "webhook-id")
        assert (logged["endpointId"], logged["url"]) == (
            endpoint["endpointId"],
            receiver.url("/flaky"),
        )
        assert (logged["event"], logged["subjectId"]) == ("tool_execution.succeeded", execution_id)
        assert isinstance(logged["deliveredAt"], int) and logged["nextAttemptAt"] is None
        failed, ok = logged["attempts"]
        assert (failed["attempt"], failed["statusCode"], failed["error"]) == (1, 500, "HTTP 500")
        kept = failed["response"]
        assert 64 <= len(kept) < len(refusal) and refusal.decode().startswith(kept)
        assert (ok["attempt"], ok["statusCode"], ok["response"], ok["error"]) == (
            2,
            200,
            "ok",
            None,
        )
        assert all(isinstance(a["durationMs"], int) and a["durationMs"] >= 0 for a in (failed, ok))
        assert failed["attemptedAt"] < ok["attemptedAt"]
        one = client.get(f"/v1/webhooks/deliveries/{logged['deliveryId']}")
        assert one.status_code == 200 and one.json() == logged
        assert deliveries(client, endpointId=endpoint["endpointId"]) == [logged]


def test_a_test_event_is_delivered_signed(server: ServerProcess, receiver: LocalHTTPServer) -> None:
    with server.client(key=server.new_account("test-event@example.com")) as client:
        endpoint = create_endpoint(client, receiver.url("/test-event"), ["tool_execution.failed"])
        sent = client.post(f"/v1/webhooks/endpoints/{endpoint['endpointId']}/test")
        assert sent.status_code == 202, sent.text
        queued = sent.json()
        assert (queued["event"], queued["endpointId"]) == ("webhook.test", endpoint["endpointId"])
        (hook,) = receiver.wait_for(1, path="/test-event")
        event = verified(hook, endpoint["signingSecret"])
        assert event == {
            "event": "webhook.test",
            "endpointId": endpoint["endpointId"],
            "occurredAt": event["occurredAt"],
        }
        assert isinstance(event["occurredAt"], int)
        assert header(hook, "webhook-id") == queued["webhookId"]
        (logged,) = settled(
            lambda: deliveries(client, endpointId=endpoint["endpointId"]), delivered
        )
        assert logged["deliveryId"] == queued["deliveryId"]
        assert [a["statusCode"] for a in logged["attempts"]] == [200]


def test_a_redelivery_asked_for_while_an_attempt_is_in_flight_is_sent(
    server: ServerProcess, receiver: LocalHTTPServer
) -> None:
    """The receiver is still answering the first attempt when the account asks for the message
    again: once that attempt ends (delivered), the redelivery is sent all the same."""
    release = threading.Event()
    calls = itertools.count()

    def respond(path: str, method: str) -> tuple[int, dict[str, str], bytes]:
        if next(calls) == 0:
            release.wait(10)
        return 200, {}, b"ok"

    receiver.respond = respond
    with server.client(key=server.new_account("inflight@example.com")) as client:
        endpoint = create_endpoint(client, receiver.url("/inflight"), ["tool_execution.failed"])
        sent = client.post(f"/v1/webhooks/endpoints/{endpoint['endpointId']}/test")
        assert sent.status_code == 202
        (first,) = receiver.wait_for(1, path="/inflight")  # held: no answer yet
        again = client.post(f"/v1/webhooks/deliveries/{sent.json()['deliveryId']}/redeliver")
        assert again.status_code == 202, again.text
        release.set()
        try:
            second = receiver.wait_for(2, path="/inflight", timeout=10)[1]
        finally:
            release.set()
        assert header(second, "webhook-id") == header(first, "webhook-id")
        assert verified(second, endpoint["signingSecret"])["event"] == "webhook.test"


# ------------------------------------------------------------------------------- disable, delete


def test_an_endpoint_failing_too_long_is_disabled_announced_and_enabled_again(
    fast: ServerProcess, receiver: LocalHTTPServer
) -> None:
    replies = {"/dead": (500, b"down")}
    receiver.respond = by_path(replies)
    with fast.client(key=fast.new_account("disabled@example.com")) as client:
        dead = create_endpoint(client, receiver.url("/dead"), ["tool_execution.succeeded"])
        watcher = create_endpoint(client, receiver.url("/watch"), ["webhook_endpoint.disabled"])
        base = f"/v1/webhooks/endpoints/{dead['endpointId']}"
        sent = client.post(f"{base}/test")
        assert sent.status_code == 202
        (notice,) = receiver.wait_for(1, path="/watch")
        event = verified(notice, watcher["signingSecret"])
        assert event == {
            "event": "webhook_endpoint.disabled",
            "endpointId": dead["endpointId"],
            "occurredAt": event["occurredAt"],
            "url": receiver.url("/dead"),
            "reason": event["reason"],
        }
        assert isinstance(event["occurredAt"], int) and event["reason"]
        shown = client.get(base).json()
        assert shown["status"] == "disabled" and shown["disabledReason"] == event["reason"]
        assert isinstance(shown["disabledAt"], int)
        listed = client.get("/v1/webhooks/endpoints").json()["endpoints"]
        assert [e["status"] for e in listed] == ["disabled", "enabled"]
        (logged,) = settled(
            lambda: [client.get(f"/v1/webhooks/deliveries/{sent.json()['deliveryId']}").json()],
            lambda d: d["status"] != "pending",
        )
        assert logged["status"] == "cancelled"
        assert len(logged["attempts"]) >= 2
        assert {a["statusCode"] for a in logged["attempts"]} == {500}
        attempts = len([r for r in receiver.received if r.path == "/dead"])
        assert attempts == len(logged["attempts"])

        vg_error(client.post(f"{base}/test"), 409, "conflict")
        redeliver = f"/v1/webhooks/deliveries/{logged['deliveryId']}/redeliver"
        vg_error(client.post(redeliver), 409, "conflict")
        execution_id = succeeded(client, "generate-image", prompt="while off")["toolExecutionId"]
        assert deliveries(client, toolExecutionId=execution_id) == []  # none queued for it

        enabled = client.post(f"{base}/enable")
        assert enabled.status_code == 200, enabled.text
        assert (enabled.json()["status"], enabled.json()["disabledAt"]) == ("enabled", None)
        assert enabled.json()["disabledReason"] is None
        assert client.get(base).json()["status"] == "enabled"
        replies["/dead"] = (200, b"back")
        again = client.post(redeliver)
        assert again.status_code == 202, again.text
        execution_id = succeeded(client, "generate-image", prompt="back on")["toolExecutionId"]
        hooks = receiver.wait_for(attempts + 2, path="/dead")[attempts:]
        events = {verified(h, dead["signingSecret"])["event"]: h for h in hooks}
        assert set(events) == {"webhook.test", "tool_execution.succeeded"}
        assert header(events["webhook.test"], "webhook-id") == logged["webhookId"]
        settled(lambda: deliveries(client, toolExecutionId=execution_id), delivered)
        assert client.get(base).json()["status"] == "enabled"


def test_a_redelivered_disabled_notice_still_says_why(
    fast: ServerProcess, receiver: LocalHTTPServer
) -> None:
    """The ``webhook_endpoint.disabled`` message sent again once the endpoint is enabled again:
    the same message, so the same endpoint, url and reason."""
    replies = {"/off": (500, b"down")}
    receiver.respond = by_path(replies)
    with fast.client(key=fast.new_account("notice@example.com")) as client:
        dead = create_endpoint(client, receiver.url("/off"), ["tool_execution.succeeded"])
        watcher = create_endpoint(client, receiver.url("/notice"), ["webhook_endpoint.disabled"])
        base = f"/v1/webhooks/endpoints/{dead['endpointId']}"
        assert client.post(f"{base}/test").status_code == 202
        (notice,) = receiver.wait_for(1, path="/notice")
        first = verified(notice, watcher["signingSecret"])
        assert first["reason"]
        (logged,) = settled(lambda: deliveries(client, endpointId=watcher["endpointId"]), delivered)
        assert client.post(f"{base}/enable").status_code == 200
        after_this_second(header(notice, "webhook-timestamp"))
        again = client.post(f"/v1/webhooks/deliveries/{logged['deliveryId']}/redeliver")
        assert again.status_code == 202, again.text
        repeat = receiver.wait_for(2, path="/notice")[1]
        assert header(repeat, "webhook-id") == header(notice, "webhook-id")
        assert verified(repeat, watcher["signingSecret"]) == first


def test_deleting_an_endpoint_cancels_what_is_queued_for_it(
    fast: ServerProcess, receiver: LocalHTTPServer
) -> None:
    receiver.respond = by_path({"/gone": (500, b"down")})
    with fast.client(key=fast.new_account("deleted@example.com")) as client:
        endpoint = create_endpoint(client, receiver.url("/gone"), ["tool_execution.succeeded"])
        base = f"/v1/webhooks/endpoints/{endpoint['endpointId']}"
        for _ in range(2):
            assert client.post(f"{base}/test").status_code == 202
        receiver.wait_for(2, path="/gone")
        waiting = settled(
            lambda: deliveries(client, endpointId=endpoint["endpointId"]),
            lambda d: d["status"] == "pending" and len(d["attempts"]) == 1,
        )
        assert len(waiting) == 2 and all(d["nextAttemptAt"] for d in waiting)
        assert client.delete(base).status_code == 204
        after = deliveries(client, endpointId=endpoint["endpointId"])
        assert [d["status"] for d in after] == ["cancelled", "cancelled"]
        assert [d["nextAttemptAt"] for d in after] == [None, None]
        redeliver = f"/v1/webhooks/deliveries/{after[0]['deliveryId']}/redeliver"
        vg_error(client.post(redeliver), 404, "not_found")
        vg_error(client.post(f"{base}/test"), 404, "not_found")
        execution_id = succeeded(client, "generate-image", prompt="after")["toolExecutionId"]
        assert deliveries(client, toolExecutionId=execution_id) == []
        # past the retries' time: nothing more came
        time.sleep(max(0.0, max(d["nextAttemptAt"] for d in waiting) + 1.5 - time.time()))
        assert len([r for r in receiver.received if r.path == "/gone"]) == 2
        assert [d["status"] for d in deliveries(client, endpointId=endpoint["endpointId"])] == [
            "cancelled",
            "cancelled",
        ]


def test_ids_and_text_no_database_keeps_are_refused_not_a_fault(server: ServerProcess) -> None:
    """A NUL (which PostgreSQL's text cannot hold) in an id, a name or a filter is the
    dialect's refusal, or matches nothing; never a 500."""
    key = server.new_account("nul@example.com")
    with server.client(key=key) as client:
        task_id = submit_egg(client, "https://127.0.0.1:9/never")
        for method, path in [
            ("GET", "/v1/webhooks/deliveries/whd_%00"),
            ("POST", "/v1/webhooks/deliveries/whd_%00/redeliver"),
        ]:
            vg_error(client.request(method, path), 400, "invalid_id")
        answer = client.post(f"/v1/tasks/{task_id}/webhooks/%00/redeliver")
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "NOT_FOUND"
        for body in [
            {"url": "https://127.0.0.1/h", "events": ["task.failed"], "description": "a\x00b"},
            {"url": "https://127.0.0.1/h", "events": ["task.failed\x00"]},
        ]:
            message = vg_error(
                client.post("/v1/webhooks/endpoints", json=body), 400, "invalid_parameters"
            )
            assert "NUL" in message or "not an event" in message
        message = vg_error(
            client.post("/v1/files/upload", json={"displayName": "a\x00b"}),
            400,
            "invalid_parameters",
        )
        assert "NUL" in message
        listed = client.get("/v1/tasks", params={"model": "nano\x00banana"})
        assert listed.status_code == 200 and listed.json()["data"]["items"] == []
        assert client.get("/v1/tasks").json()["data"]["pagination"]["total"] == 1
