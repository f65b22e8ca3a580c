"""The VideoGen tools on real vendors, through the real server: its providers pointed at strict
fakes of ElevenLabs, fal and Replicate on 127.0.0.1. What is routed where, what each vendor
receives (input files inline, as this server's local store cannot be reached from outside), the
outputs copied into our storage, the price of the provider asked first, fallback on an outage
or an exhausted quota, a vendor's refusal failing the execution with its reason and no charge,
and cancel forwarded. The database makes no difference here: the first backend only."""

from __future__ import annotations

import base64
import json
import re
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from hatchery.api.videogen.openapi_tools import VOICE_ID
from hatchery.offline import speech
from tests import fake_upstreams
from tests.fake_elevenlabs import ELEVENLABS_KEY, FakeElevenLabs, voice_entry
from tests.fake_upstreams import FAL_KEY, REPLICATE_TOKEN, FakeFal, FakeReplicate
from tests.files_helpers import png, upload
from tests.helpers import ServerProcess
from tests.integration.test_upstream_providers import FAST_UPSTREAMS
from tests.s3_server import S3Server
from tests.tools_helpers import download, run_tool, succeeded, wait_for_execution

pytestmark = [pytest.mark.any_backend, pytest.mark.usefixtures("fresh_fakes", "fresh_voices")]

ALICE = "Xb7hH8MSUJpSbSDYk0k2"  # an ElevenLabs voice_id
ALICE_ID = f"vg_voic_el_{ALICE}"
REAL_ESRGAN = "42fed1c4974146d4d4414e2be2c5277c7fcf05fde3b22e94cee859b8a4a39d44"


@pytest.fixture(scope="module")
def elevenlabs() -> Iterator[FakeElevenLabs]:
    fake = FakeElevenLabs(voices=[voice_entry(ALICE, "Alice")])
    yield fake
    fake.close()


@pytest.fixture
def fresh_voices(elevenlabs: FakeElevenLabs) -> Iterator[None]:
    elevenlabs.reset()
    yield
    assert elevenlabs.violations == []


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    new_database: Any,
    elevenlabs: FakeElevenLabs,
    fal: FakeFal,
    replicate: FakeReplicate,
) -> Iterator[ServerProcess]:
    url, key = new_database()
    settings = {
        **FAST_UPSTREAMS,
        "HATCHERY_ELEVENLABS_API_KEY": ELEVENLABS_KEY,
        "HATCHERY_ELEVENLABS_BASE_URL": elevenlabs.base,
        "HATCHERY_FAL_KEY": FAL_KEY,
        "HATCHERY_FAL_BASE_URL": fal.base,
        "HATCHERY_REPLICATE_API_TOKEN": REPLICATE_TOKEN,
        "HATCHERY_REPLICATE_BASE_URL": replicate.base_url,
    }
    proc = ServerProcess(
        tmp_path_factory.mktemp("tool-vendors"), settings, database_url=url, key=key
    ).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client(key=server.new_account("vendors@example.com", "100.00")) as c:
        yield c


def balance(client: httpx.Client) -> float:
    return float(client.get("/v1/account").json()["data"]["balance"].lstrip("$"))


def usage_of(server: ServerProcess, execution_id: str) -> dict[str, Any]:
    (raw,) = server.query("SELECT usage FROM tasks WHERE id = :id", id=execution_id)[0]
    return raw if isinstance(raw, dict) else json.loads(raw)  # type: ignore[no-any-return]


def data_uri_bytes(uri: str) -> bytes:
    head, _, data = uri.partition(",")
    assert head.startswith("data:") and head.endswith(";base64"), head
    return base64.b64decode(data)


# -- ElevenLabs ---------------------------------------------------------------------------------


def test_the_voices_are_the_elevenlabs_accounts_and_speech_is_made_by_elevenlabs(
    server: ServerProcess, client: httpx.Client, elevenlabs: FakeElevenLabs, fal: FakeFal
) -> None:
    voices = client.get("/v1/resources/tts-voices").json()["ttsVoices"]
    assert [v["voiceId"] for v in voices] == [ALICE_ID]  # no local voices: local is not listed
    assert voices[0]["displayName"] == "Alice"
    assert re.search(VOICE_ID, ALICE_ID)  # the OpenAPI document's pattern takes it
    text = "The tide comes in at seven."
    before = balance(client)
    execution = succeeded(client, "text-to-speech", ttsText=text, voiceId=ALICE_ID)
    [spoken] = elevenlabs.seen("POST", "/v1/text-to-speech/")
    assert spoken.path == f"/v1/text-to-speech/{ALICE}"
    assert spoken.json()["text"] == text
    audio = download(execution["results"][0])
    assert audio[:3] == b"ID3" or audio[:2] == b"\xff\xfb"
    assert before - balance(client) == pytest.approx(len(text) * 0.0002)
    usage = usage_of(server, execution["toolExecutionId"])
    assert usage["provider"] == "elevenlabs" and usage["characters"] == len(text)
    assert fal.requests == []


def test_speech_is_priced_by_the_text_as_spoken_which_is_what_the_vendor_bills(
    client: httpx.Client, elevenlabs: FakeElevenLabs
) -> None:
    said = [{"original": "AI", "replacement": "artificial intelligence"}]
    before = balance(client)
    succeeded(
        client,
        "text-to-speech",
        ttsText="Call AI now.",
        voiceId=ALICE_ID,
        pronunciationReplacements=said,
    )
    [spoken] = elevenlabs.seen("POST", "/v1/text-to-speech/")
    assert spoken.json()["text"] == "Call artificial intelligence now."
    assert before - balance(client) == pytest.approx(
        len("Call artificial intelligence now.") * 0.0002
    )
    growing = [
        {"original": "a", "replacement": " ".join(["b"] * 99)},
        {"original": "b", "replacement": " ".join(["c"] * 99)},
    ]  # one character becomes about 20,000
    response = client.post(
        "/v1/tools/text-to-speech", json={"ttsText": "a", "pronunciationReplacements": growing}
    )
    assert (response.status_code, response.json()["code"]) == (400, "invalid_parameters")
    assert (
        "pronunciationReplacements: the text with them applied is over 10000"
        in (response.json()["message"])
    )
    assert len(elevenlabs.seen("POST", "/v1/text-to-speech/")) == 1


def test_an_unknown_voice_is_refused_by_elevenlabs_with_its_reason_and_costs_nothing(
    client: httpx.Client, elevenlabs: FakeElevenLabs, fal: FakeFal
) -> None:
    elevenlabs.plan("speech", "voice")
    before = balance(client)
    execution = wait_for_execution(
        client, run_tool(client, "text-to-speech", ttsText="Hello.", voiceId=ALICE_ID)
    )
    assert execution["status"] == "failed"
    assert "voice_not_found" in execution["error"]["message"]
    assert balance(client) == pytest.approx(before)
    assert fal.requests == []  # a refusal is not tried elsewhere


def test_a_local_voice_is_refused_at_submit_when_no_provider_of_the_tool_speaks_it(
    client: httpx.Client, elevenlabs: FakeElevenLabs
) -> None:
    local_voice = speech.voices()[0].voice_id  # eSpeak NG's: local is not in the tool's list
    response = client.post(
        "/v1/tools/text-to-speech", json={"ttsText": "Hello.", "voiceId": local_voice}
    )
    assert (response.status_code, response.json()["code"]) == (400, "invalid_parameters")
    assert f"voice {local_voice} is a local voice" in response.json()["message"]
    assert elevenlabs.requests == []


def test_an_exhausted_elevenlabs_quota_falls_back_to_fals_elevenlabs_model(
    server: ServerProcess, client: httpx.Client, elevenlabs: FakeElevenLabs, fal: FakeFal
) -> None:
    elevenlabs.plan("speech", "quota")  # 401 quota_exceeded: our account, not the request
    execution = succeeded(client, "text-to-speech", ttsText="Out of credit, not of words.")
    assert len(elevenlabs.seen("POST", "/v1/text-to-speech/")) == 1
    [spoken] = fal.seen("POST", "fal-ai/elevenlabs/tts/multilingual-v2")
    assert spoken.json()["text"] == "Out of credit, not of words."
    usage = usage_of(server, execution["toolExecutionId"])
    assert [(a["provider"], a["outcome"]) for a in usage["attempts"]] == [
        ("elevenlabs", "failed"),
        ("fal", "completed"),
    ]
    assert "quota_exceeded" in usage["attempts"][0]["error"]


# -- fal and Replicate --------------------------------------------------------------------------


def test_an_image_tool_runs_on_fal_with_its_input_inline_and_at_fals_price(
    server: ServerProcess, client: httpx.Client, fal: FakeFal, replicate: FakeReplicate
) -> None:
    source = png(96, 64)
    file_id = upload(client, source, "a small photo")["fileId"]
    before = balance(client)
    execution = succeeded(client, "upscale-image", imageStorageFileId=file_id, numResults=2)
    [submitted] = fal.seen("POST", "fal-ai/topaz/upscale/image")  # one request for both results
    sent = submitted.json()
    assert data_uri_bytes(sent["image_url"]) == source  # the bytes: our store is not reachable
    assert sent["upscale_factor"] == 2
    results = execution["results"]
    assert len(results) == 2 and results[0]["fileId"] != results[1]["fileId"]
    made = download(results[0])
    assert made.startswith(b"\x89PNG") and download(results[1]) == made
    assert "fal" in results[0]["file"]["description"]
    assert before - balance(client) == pytest.approx(2 * 0.20)  # fal's price, not local's
    usage = usage_of(server, execution["toolExecutionId"])
    assert usage["provider"] == "fal" and usage["route"] == "fal-ai/topaz/upscale/image"
    assert replicate.requests == []


def test_an_outage_at_fal_falls_back_to_replicate_at_the_quoted_price(
    server: ServerProcess, client: httpx.Client, fal: FakeFal, replicate: FakeReplicate
) -> None:
    file_id = upload(client, png(80, 80), "another photo")["fileId"]
    fal.plan("submit", "503")
    before = balance(client)
    execution = succeeded(client, "upscale-image", imageStorageFileId=file_id)
    [created] = replicate.seen("POST", "/v1/predictions")
    assert (
        created.json()["version"]
        == "42fed1c4974146d4d4414e2be2c5277c7fcf05fde3b22e94cee859b8a4a39d44"
    )
    assert created.json()["input"]["scale"] == 2
    usage = usage_of(server, execution["toolExecutionId"])
    assert [(a["provider"], a["outcome"]) for a in usage["attempts"]] == [
        ("fal", "failed"),
        ("replicate", "completed"),
    ]
    assert before - balance(client) == pytest.approx(0.20)  # quoted for fal, asked first
    assert download(execution["results"][0]).startswith(b"\x89PNG")


def test_a_content_policy_refusal_fails_with_fals_reason_costs_nothing_and_is_not_retried(
    client: httpx.Client, fal: FakeFal, replicate: FakeReplicate
) -> None:
    fal.plan("submit", "policy")
    before = balance(client)
    execution = wait_for_execution(
        client, run_tool(client, "generate-image", prompt="something the checker refuses")
    )
    assert execution["status"] == "failed", execution
    assert "HTTP 422: prompt: The content could not be" in execution["error"]["message"]
    assert balance(client) == pytest.approx(before)
    assert replicate.requests == []
    assert len(fal.seen("POST", "fal-ai/nano-banana")) == 1


def test_cancelling_an_execution_cancels_its_request_at_fal(
    client: httpx.Client, fal: FakeFal
) -> None:
    file_id = upload(client, png(64, 64), "to be cut out")["fileId"]
    fal.hold.set()  # the request stays IN_PROGRESS
    before = balance(client)
    execution_id = run_tool(client, "remove-image-background", imageStorageFileId=file_id)
    fal.wait_for("GET", "/status")  # queued at fal, and polled
    assert client.post(f"/v1/tools/executions/{execution_id}/cancel").status_code == 202
    assert wait_for_execution(client, execution_id)["status"] == "cancelled"
    [cancel] = fal.wait_for("PUT", "/cancel")
    assert cancel.path.startswith("/fal-ai/birefnet/requests/")
    assert balance(client) == pytest.approx(before)


# -- an S3-compatible store: presigned URLs -----------------------------------------------------


@pytest.fixture(scope="module")
def s3_vendor_server(
    tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server, fal: FakeFal
) -> Iterator[ServerProcess]:
    settings = {
        **FAST_UPSTREAMS,
        **s3_server.env(f"tool-vendors-{secrets.token_hex(4)}"),
        "HATCHERY_FAL_KEY": FAL_KEY,
        "HATCHERY_FAL_BASE_URL": fal.base,
        "HATCHERY_VENDOR_INPUT_URL_SECONDS": "600",
    }
    fake_upstreams.OBJECT_STORES.add(s3_server.endpoint)  # the fakes fetch from it, as fal would
    proc = ServerProcess(tmp_path_factory.mktemp("tool-vendors-s3"), settings).start()
    yield proc
    proc.stop()
    fake_upstreams.OBJECT_STORES.discard(s3_server.endpoint)


def test_with_an_s3_store_a_vendor_fetches_the_input_from_a_presigned_url(
    s3_vendor_server: ServerProcess, s3_server: S3Server, fal: FakeFal
) -> None:
    source = png(120, 90)
    fake_upstreams.FETCHED.clear()
    with s3_vendor_server.client() as client:
        file_id = upload(client, source, "an S3 input")["fileId"]
        execution = succeeded(client, "remove-image-background", imageStorageFileId=file_id)
    [submitted] = fal.seen("POST", "fal-ai/birefnet/v2")
    url = submitted.json()["image_url"]
    assert url.startswith(s3_server.endpoint) and "X-Amz-Signature" in url
    assert "X-Amz-Expires=600" in url  # HATCHERY_VENDOR_INPUT_URL_SECONDS
    assert fake_upstreams.FETCHED == [(url, source)]  # fetched with no credentials of ours
    output = execution["results"][0]["file"]["downloadSource"]["url"]
    assert output.startswith(s3_server.endpoint)  # the vendor's output, copied into the store
    assert download(execution["results"][0]).startswith(b"\x89PNG")
