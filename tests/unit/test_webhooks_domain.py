"""Webhook events, ids, secrets, Standard Webhooks signatures (checked against the reference
``standardwebhooks`` library), the receiver URL policy (decisions only: nothing resolves or
connects), and which events an upload's end emits."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from hatchery.domain import webhooks as hooks
from hatchery.domain.files import FileStatus, FileType, Scope, StoredFile
from hatchery.domain.keys import new_webhook_secret
from hatchery.domain.tasks import Task, TaskStatus, TaskType
from hatchery.files.ingest import upload_events
from hatchery.net.guard import URLRefused, check_receiver_url
from hatchery.store.outbox import target_of
from hatchery.webhooks.signing import (
    InvalidSignatureError,
    MissingHeaderError,
    StaleTimestampError,
    standard_headers,
    standard_key,
    verify_standard,
)

NOW = 1_796_000_000
BODY = json.dumps({"event": "tool_execution.succeeded", "toolExecutionId": "vg_exec_x"})


def task(kind: TaskType, status: TaskStatus) -> Task:
    at = datetime(2026, 12, 4, tzinfo=UTC)
    return Task(
        id="gen_x",
        account_id="acct_x",
        model="generate-image" if kind is TaskType.TOOL else "nanobanana",
        type=kind,
        status=status,
        params={},
        webhook_url=None,
        price_micros=0,
        cost_micros=0,
        file_token="t",
        output=None,
        error=None,
        usage=None,
        upstream=None,
        attempt=1,
        lease_owner=None,
        lease_expires_at=None,
        created_at=at,
        started_at=at,
        completed_at=at,
    )


@pytest.mark.parametrize(
    ("kind", "status", "event"),
    [
        (TaskType.IMAGE, TaskStatus.COMPLETED, "task.completed"),
        (TaskType.VIDEO, TaskStatus.FAILED, "task.failed"),
        (TaskType.IMAGE, TaskStatus.CANCELLED, "task.cancelled"),
        (TaskType.TOOL, TaskStatus.COMPLETED, "tool_execution.succeeded"),
        (TaskType.TOOL, TaskStatus.FAILED, "tool_execution.failed"),
        (TaskType.TOOL, TaskStatus.CANCELLED, "tool_execution.cancelled"),
    ],
)
def test_a_tasks_end_names_its_event(kind: TaskType, status: TaskStatus, event: str) -> None:
    assert hooks.task_event(task(kind, status)) == event
    assert event in hooks.SUBSCRIBABLE


def test_the_test_event_is_sent_but_not_subscribable() -> None:
    assert hooks.TEST_EVENT not in hooks.SUBSCRIBABLE
    assert len(set(hooks.SUBSCRIBABLE)) == len(hooks.SUBSCRIBABLE) == 13


def test_ids_and_secrets_have_their_shapes() -> None:
    endpoint_id = hooks.new_endpoint_id()
    assert hooks.is_endpoint_id(endpoint_id) and not hooks.is_endpoint_id("ep_short")
    assert not hooks.is_endpoint_id("vg_file_" + endpoint_id[3:])
    assert hooks.new_message_id().startswith("msg_")
    secret = hooks.new_endpoint_secret()
    assert secret.startswith("whsec_") and "=" not in secret
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 36
    assert secret != hooks.new_endpoint_secret()


def test_an_outline_reads_back() -> None:
    at = datetime(2026, 12, 4, 10, 0, 5, 900000, tzinfo=UTC)
    body = hooks.outline("file.upload.completed", "vg_file_abc", at)
    told = hooks.read_outline(body)
    assert (told.event, told.subject_id) == ("file.upload.completed", "vg_file_abc")
    assert (told.occurred_at, told.details) == (int(at.timestamp()), {})
    kept = hooks.read_outline(hooks.outline("x", "ep_1", at, {"reason": "why", "url": None}))
    assert kept.details == {"reason": "why", "url": None}


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(432000, "5 days"), (1, "1 second"), (86400, "1 day"), (90, "1.5 minutes"), (7200, "2 hours")],
)
def test_a_span_is_said_in_its_largest_unit(seconds: float, said: str) -> None:
    assert hooks.span(seconds) == said


@pytest.mark.parametrize(
    "secret",
    [hooks.new_endpoint_secret(), new_webhook_secret(), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZI"],
    # named, not by their random values: pytest-xdist's workers must collect the same test ids
    ids=["endpoint", "account", "short"],
)
def test_our_signature_is_the_reference_librarys(secret: str) -> None:
    """Endpoint secrets and the Egg accounts' secrets both sign as standardwebhooks reads them."""
    headers = standard_headers("msg_1", NOW, BODY, secret)
    reference = Webhook(secret).sign("msg_1", datetime.fromtimestamp(NOW, UTC), BODY)
    assert headers["webhook-signature"] == reference
    assert (headers["webhook-id"], headers["webhook-timestamp"]) == ("msg_1", str(NOW))
    assert verify_standard(BODY, headers, secret, now=NOW)["toolExecutionId"] == "vg_exec_x"


def test_a_secret_that_is_not_base64_keys_with_its_text() -> None:
    assert standard_key("whsec_not*base64!") == b"not*base64!"
    assert standard_key("plain") == b"plain"
    assert standard_key("abcd") == base64.b64decode("abcd") == Webhook("abcd")._whsecret


def test_without_a_secret_there_is_no_signature() -> None:
    assert "webhook-signature" not in standard_headers("msg_1", NOW, BODY, None)


def test_verify_refuses_tampering_a_wrong_key_and_replays() -> None:
    secret = hooks.new_endpoint_secret()
    headers = standard_headers("msg_1", NOW, BODY, secret)
    with pytest.raises(InvalidSignatureError):
        verify_standard(BODY.replace("vg_exec_x", "vg_exec_y"), headers, secret, now=NOW)
    with pytest.raises(InvalidSignatureError):
        verify_standard(BODY, {**headers, "webhook-id": "msg_2"}, secret, now=NOW)
    with pytest.raises(InvalidSignatureError):
        verify_standard(BODY, headers, hooks.new_endpoint_secret(), now=NOW)
    with pytest.raises(StaleTimestampError):
        verify_standard(BODY, headers, secret, now=NOW + 301)
    with pytest.raises(MissingHeaderError):
        verify_standard(BODY, {k: v for k, v in headers.items() if k != "webhook-id"}, secret)


def test_verify_takes_any_of_several_signatures() -> None:
    """A receiver mid-rotation gets two; one that matches is enough (as the library does)."""
    secret = hooks.new_endpoint_secret()
    headers = standard_headers("msg_1", NOW, BODY, secret)
    both = f"v1,{base64.b64encode(b'x' * 32).decode()} {headers['webhook-signature']}"
    assert verify_standard(BODY, {**headers, "webhook-signature": both}, secret, now=NOW)
    with pytest.raises(InvalidSignatureError):
        verify_standard(BODY, {**headers, "webhook-signature": both.split()[0]}, secret, now=NOW)


def test_the_reference_library_refuses_what_we_refuse() -> None:
    secret = hooks.new_endpoint_secret()
    stale = standard_headers("msg_1", NOW, BODY, secret)  # years ago, by the library's clock
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, stale)


# ------------------------------------------------------------------------ receiver URL policy


def resolving_to(*addresses: str) -> Any:
    async def resolve(host: str, port: int) -> list[str]:
        return list(addresses)

    return resolve


async def test_https_to_a_public_address_is_taken() -> None:
    await check_receiver_url(
        "https://hooks.test/h", allow_private=False, resolver=resolving_to("93.184.216.34")
    )


@pytest.mark.parametrize(
    ("url", "address", "why"),
    [
        ("https://hooks.test/h", "10.0.0.8", "private address"),
        ("https://hooks.test/h", "169.254.169.254", "metadata"),
        ("https://hooks.test/h", "127.0.0.1", "loopback"),
        ("https://localhost/h", "127.0.0.1", "local host name"),
        ("http://hooks.test/h", "93.184.216.34", "must be https"),
        ("http://hooks.test/h", "10.0.0.8", "must be https"),
        ("ftp://hooks.test/h", "93.184.216.34", "only http and https"),
    ],
)
async def test_refused_without_the_private_switch(url: str, address: str, why: str) -> None:
    with pytest.raises(URLRefused, match=why):
        await check_receiver_url(url, allow_private=False, resolver=resolving_to(address))


async def test_with_the_switch_plain_http_goes_only_to_private_addresses() -> None:
    await check_receiver_url(
        "http://hooks.test/h", allow_private=True, resolver=resolving_to("127.0.0.1")
    )
    with pytest.raises(URLRefused, match="only to private addresses"):
        await check_receiver_url(
            "http://hooks.test/h",
            allow_private=True,
            resolver=resolving_to("10.0.0.8", "93.184.216.34"),
        )


def test_a_per_task_urls_receiver_is_its_origin() -> None:
    assert target_of("https://a.example:8443/x/y?z=1") == "https://a.example:8443"
    assert target_of("http://127.0.0.1:9/h") == "http://127.0.0.1:9"


# ------------------------------------------------------------------------ file events


def stored(kind: FileType | None, status: FileStatus, preview: str | None = None) -> StoredFile:
    at = datetime(2026, 12, 4, tzinfo=UTC)
    renditions = {"preview": {"status": preview}} if preview else {}
    return StoredFile(
        id="vg_file_x",
        account_id="acct_x",
        status=status,
        type=kind,
        scope=Scope.GLOBAL,
        display_name="x",
        description=None,
        content_type=None,
        bytes=None,
        width=None,
        height=None,
        duration_seconds=None,
        object_key="files/vg_file_x/original",
        renditions=renditions,
        error=None,
        task_id=None,
        tool_type=None,
        playback_id=None,
        created_at=at,
        updated_at=at + timedelta(seconds=1),
        archived_at=None,
        expires_at=None,
    )


READY = [hooks.FILE_UPLOAD_COMPLETED, hooks.FILE_ANALYSIS_COMPLETED, hooks.FILE_DOWNLOAD_READY]


@pytest.mark.parametrize(
    ("file", "unreadable", "events"),
    [
        (stored(FileType.IMAGE, FileStatus.READY, "ready"), False, READY),
        (
            stored(FileType.VIDEO, FileStatus.READY, "ready"),
            False,
            [*READY, hooks.FILE_PLAYBACK_READY],
        ),
        (
            stored(FileType.AUDIO, FileStatus.READY, "ready"),
            False,
            [*READY, hooks.FILE_PLAYBACK_READY],
        ),
        (stored(FileType.VIDEO, FileStatus.READY, "failed"), False, READY),
        (
            stored(None, FileStatus.FAILED),
            True,
            [hooks.FILE_UPLOAD_FAILED, hooks.FILE_ANALYSIS_FAILED],
        ),
        (stored(None, FileStatus.FAILED), False, [hooks.FILE_UPLOAD_FAILED]),
    ],
)
def test_what_an_uploads_end_tells(file: StoredFile, unreadable: bool, events: list[str]) -> None:
    assert upload_events(file, unreadable) == events
