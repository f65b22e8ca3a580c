"""The VideoGen API's tools and tool executions through hand-written requests, on both databases:
submit, poll, results as files, numResults, the money, the watermark, cancel, the list and its
cursor, the event stream, Idempotency-Key, and every refusal (each with nothing created and
nothing reserved). The outputs are decoded, not taken on trust."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from tests.files_helpers import create_upload, png, upload, wait_for_file
from tests.helpers import ServerProcess
from tests.tools_helpers import (
    audio_samples,
    download,
    image,
    run_tool,
    succeeded,
    wait_for_execution,
)

IMAGE_PRICE = 0.04  # catalog.toml: generate-image, per output
TTS_PRICE = 0.0002  # per character


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client(key=server.new_account("tools@example.com", "100.00")) as c:
        yield c


def balance(client: httpx.Client) -> tuple[float, float]:
    data = client.get("/v1/account").json()["data"]
    return float(data["balance"].lstrip("$")), float(data["reserved"].lstrip("$"))


def test_an_image_execution_succeeds_with_its_file_hydrated(client: httpx.Client) -> None:
    before, _ = balance(client)
    execution = succeeded(
        client,
        "generate-image",
        prompt="a lighthouse at dusk",
        aspectRatio={"width": 4, "height": 3},
        numResults=2,
    )
    assert execution["toolExecutionId"].startswith("vg_exec_")
    assert (execution["toolType"], execution["progressPercentage"]) == ("GENERATE_IMAGE", 100)
    assert execution["error"] is None and execution["attemptIndex"] == 0
    results = execution["results"]
    assert len(results) == 2 and len({r["fileId"] for r in results}) == 2
    for result in results:
        file = result["file"]
        assert result["type"] == file["type"] == "IMAGE" and file["fileId"] == result["fileId"]
        assert file["sourceToolType"] == "GENERATE_IMAGE"
        assert file["sourceToolExecutionId"] == execution["toolExecutionId"]
        assert "not an AI model" in file["description"] and file["scope"] == "GLOBAL"
        picture = image(download(result))
        assert abs(picture.width / picture.height - 4 / 3) < 0.01
    # charged once, for two outputs, and nothing is left reserved
    after, reserved = balance(client)
    assert round(before - after, 4) == 2 * IMAGE_PRICE and reserved == 0
    assert execution["cost"] == f"${2 * IMAGE_PRICE:.4f}"
    again = client.get(f"/v1/tools/executions/{execution['toolExecutionId']}").json()
    assert [r["fileId"] for r in again["results"]] == [r["fileId"] for r in results]
    listed = client.get(f"/v1/files/{results[0]['fileId']}").json()
    assert listed["fileId"] == results[0]["fileId"]


def test_text_to_speech_is_real_audio_billed_by_the_character(client: httpx.Client) -> None:
    text = "Hello from Hatchery. This is eSpeak speaking, not a neural voice."
    voices = client.get("/v1/resources/tts-voices").json()["ttsVoices"]
    english = next(v for v in voices if v["languageCode"].startswith("en"))
    before, _ = balance(client)
    execution = succeeded(client, "text-to-speech", ttsText=text, voiceId=english["voiceId"])
    after, _ = balance(client)
    assert round(before - after, 6) == round(len(text) * TTS_PRICE, 6)
    result = execution["results"][0]
    assert result["type"] == "AUDIO" and result["file"]["contentType"] == "audio/mpeg"
    samples, seconds = audio_samples(download(result))
    assert np.sqrt(np.mean(samples**2)) > 0.01  # not silence
    assert 2.0 < seconds < 12.0
    assert abs(result["file"]["durationSeconds"] - seconds) < 0.3


def test_watermark_modes(server: ServerProcess, client: httpx.Client) -> None:
    body = {"prompt": "a quiet field", "aspectRatio": {"width": 1, "height": 1}}
    refused = client.post("/v1/tools/generate-image", json={**body, "watermarkMode": "NONE"})
    assert refused.status_code == 403, refused.text
    error = refused.json()
    assert error["code"] == "watermark_removal_not_allowed"
    assert error["requirement"]["type"] == "purchase_add_on" and "NONE" in error["message"]

    marked = image(download(succeeded(client, "generate-image", **body)["results"][0]))
    forced = succeeded(client, "generate-image", **body, watermarkMode="VIDEO_GEN")
    assert np.array_equal(np.asarray(marked), np.asarray(image(download(forced["results"][0]))))

    server.change_access("users", "flag", "tools@example.com", "no-watermark")
    unmarked = succeeded(client, "generate-image", **body, watermarkMode="NONE")
    plain = image(download(unmarked["results"][0]))
    auto = image(download(succeeded(client, "generate-image", **body)["results"][0]))
    assert np.array_equal(np.asarray(plain), np.asarray(auto))  # AUTO: the flag means no mark
    differs = np.asarray(plain).astype(int) - np.asarray(marked).astype(int)
    changed = np.argwhere(np.abs(differs).sum(axis=-1) > 30)
    assert len(changed) > 100  # the mark is visible, and only where it is drawn
    assert len(changed) < 0.25 * plain.width * plain.height
    server.change_access("users", "flag", "tools@example.com", "no-watermark", "--off")


def test_refusals_name_the_field_and_create_nothing(
    server: ServerProcess, client: httpx.Client
) -> None:
    listed_before = client.get("/v1/tools/executions?limit=200").json()["toolExecutions"]
    before = balance(client)
    mine = upload(client, png(40, 30), "a reference")["fileId"]
    stranger = server.client(key=server.new_account("stranger@example.com"))
    theirs = upload(stranger, png(40, 30), "not yours")["fileId"]
    waiting = create_upload(client, "still uploading", type="AUDIO")["fileId"]
    cases: list[tuple[str, dict[str, object], int, str, str]] = [
        ("generate-image", {}, 400, "invalid_parameters", "prompt"),
        ("generate-image", {"prompt": 3}, 400, "invalid_parameters", "prompt"),
        ("generate-image", {"prompt": "x", "numResults": 101}, 400, "invalid_parameters",
         "numResults"),
        ("generate-image", {"prompt": "x", "colour": "red"}, 400, "invalid_parameters", "colour"),
        ("generate-image", {"prompt": "x", "imageFileIds": ["file_1"]}, 400, "invalid_id",
         "imageFileIds[0]"),
        ("generate-image", {"prompt": "x", "imageFileIds": [mine, theirs]}, 404, "not_found",
         "imageFileIds[1]"),
        ("generate-video-clip", {"generateAudio": True}, 400, "invalid_parameters",
         "at least one of prompt"),
        ("generate-avatar", {"avatarPresenterId": "vg_pres_nobody00000", "audioStorageFileId":
         mine}, 404, "not_found", "avatarPresenterId"),
        ("generate-avatar", {"avatarPresenterId": "pres_1", "audioStorageFileId": mine}, 400,
         "invalid_id", "avatarPresenterId"),
        ("upscale-video", {"videoStorageFileId": mine}, 400, "invalid_file_type",
         "videoStorageFileId"),
        ("text-to-speech", {"ttsText": "hi", "voiceId": "vg_voic_unknown0000"}, 404, "not_found",
         "voiceId"),
        ("text-to-speech", {"ttsText": "hi", "voiceSpeed": 9}, 400, "invalid_parameters",
         "voiceSpeed"),
        ("remove-image-background", {"imageStorageFileId": waiting}, 409, "file_not_ready",
         "imageStorageFileId"),
        ("make-coffee", {"prompt": "x"}, 404, "not_found", "make-coffee"),
        ("generate-video-clip", {"prompt": "x", "durationSeconds": 15, "numResults": 41}, 400,
         "invalid_parameters", "at most 600 s"),
    ]  # fmt: skip
    for tool, body, status, code, named in cases:
        response = client.post(f"/v1/tools/{tool}", json=body)
        assert (response.status_code, response.json()["code"]) == (status, code), (tool, body)
        assert named in response.json()["message"], response.json()
    not_json = client.post(
        "/v1/tools/generate-image", content=b"{", headers={"content-type": "application/json"}
    )
    assert (not_json.status_code, not_json.json()["code"]) == (400, "invalid_parameters")
    assert balance(client) == before
    listed = client.get("/v1/tools/executions?limit=200").json()["toolExecutions"]
    assert len(listed) == len(listed_before)
    stranger.close()


def test_an_account_without_credit_is_refused_402(server: ServerProcess) -> None:
    with server.client(key=server.new_account("broke@example.com", "0.00")) as broke:
        response = broke.post("/v1/tools/generate-image", json={"prompt": "x"})
        assert response.status_code == 402
        assert response.json()["code"] == "insufficient_credits"


def test_an_execution_id_of_the_wrong_shape_or_owner(
    server: ServerProcess, client: httpx.Client
) -> None:
    bad = client.get("/v1/tools/executions/gen_abcdefabcdefabcd")
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid_id")
    mine = run_tool(client, "generate-image", prompt="mine")
    with server.client(key=server.new_account("other@example.com")) as other:
        assert other.get(f"/v1/tools/executions/{mine}").status_code == 404
        assert other.post(f"/v1/tools/executions/{mine}/cancel").status_code == 404
    # the Egg API does not show executions, nor the VideoGen API Egg tasks
    tasks = client.get("/v1/tasks").json()["data"]["items"]
    assert all(not t["id"].startswith("vg_exec_") for t in tasks)
    assert client.get(f"/v1/tasks/{mine}").status_code == 404
    wait_for_execution(client, mine)


def test_cancel_releases_the_reservation_and_a_second_cancel_changes_nothing(
    server: ServerProcess,
) -> None:
    with server.client(key=server.new_account("cancel@example.com", "50.00")) as client:
        before = balance(client)
        execution_id = run_tool(
            client, "generate-sound-effect", prompt="rain on a tin roof", durationSeconds=30,
            numResults=100,
        )  # fmt: skip
        assert balance(client) == (before[0], 100 * 30 * 0.002)  # reserved at submit
        response = client.post(f"/v1/tools/executions/{execution_id}/cancel")
        assert response.status_code == 202
        assert response.json() == {"toolExecutionId": execution_id}
        execution = wait_for_execution(client, execution_id)
        assert execution["status"] == "cancelled" and execution["results"] is None
        assert balance(client) == before and execution["cost"] == "$0.00"
        again = client.post(f"/v1/tools/executions/{execution_id}/cancel")
        assert again.status_code == 202
        assert client.get(f"/v1/tools/executions/{execution_id}").json()["status"] == "cancelled"


def test_the_list_pages_newest_first_with_a_cursor(client: httpx.Client) -> None:
    made = [run_tool(client, "generate-image", prompt=f"page {i}") for i in range(3)]
    first = client.get("/v1/tools/executions", params={"limit": 2}).json()
    assert [e["toolExecutionId"] for e in first["toolExecutions"]] == made[::-1][:2]
    assert first["hasMore"] is True and first["nextCursor"]
    second = client.get(
        "/v1/tools/executions", params={"limit": 2, "cursor": first["nextCursor"]}
    ).json()
    assert second["toolExecutions"][0]["toolExecutionId"] == made[0]
    bad = client.get("/v1/tools/executions", params={"cursor": "nonsense"})
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid_parameters")
    for execution_id in made:
        wait_for_execution(client, execution_id)


def test_the_event_stream_ends_with_the_whole_execution(client: httpx.Client) -> None:
    execution_id = run_tool(client, "generate-image", prompt="streamed")
    events = []
    with client.stream("GET", f"/v1/tools/executions/{execution_id}/events") as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    assert events[-1]["status"] == "succeeded" and events[-1]["results"]
    assert all(e["toolExecutionId"] == execution_id for e in events)


def test_an_idempotency_key_gives_back_the_first_execution(client: httpx.Client) -> None:
    body = {"prompt": "only once"}
    headers = {"Idempotency-Key": "tools-once-1"}
    first = client.post("/v1/tools/generate-image", json=body, headers=headers)
    second = client.post("/v1/tools/generate-image", json=body, headers=headers)
    assert first.json() == second.json()
    changed = client.post("/v1/tools/generate-image", json={"prompt": "other"}, headers=headers)
    assert (changed.status_code, changed.json()["code"]) == (422, "idempotency_key_reused")
    wait_for_execution(client, first.json()["toolExecutionId"])


def test_temporary_outputs_are_temporary_files(client: httpx.Client) -> None:
    execution = succeeded(client, "generate-image", prompt="for now", isOutputTemporary=True)
    assert execution["results"][0]["file"]["scope"] == "TEMPORARY"


def test_resources_list_voices_and_presenters_with_their_media(client: httpx.Client) -> None:
    voices = client.get("/v1/resources/tts-voices").json()["ttsVoices"]
    everything = client.get(
        "/v1/resources/tts-voices", params={"includeDeprecatedVoices": "true"}
    ).json()["ttsVoices"]
    assert len(everything) > len(voices) >= 20
    assert all(not v["isDeprecated"] for v in voices)
    assert all(v["voiceId"].startswith("vg_voic_") for v in everything)
    assert {v["displayGender"] for v in voices} >= {"MALE", "FEMALE"}
    presenters = client.get("/v1/resources/avatar-presenters").json()["avatarPresenters"]
    assert presenters and all(p["avatarPresenterId"].startswith("vg_pres_") for p in presenters)
    first = presenters[0]
    picture = httpx.get(first["imageUrl"])  # plain URLs: no key
    assert picture.status_code == 200 and image(picture.content).size[0] > 0
    assert httpx.get(first["thumbnailUrl"]).headers["content-type"] == "image/png"
    assert httpx.get(first["previewVideoUrl"]).headers["content-type"] == "video/mp4"


def test_a_hundred_results_in_one_execution(client: httpx.Client) -> None:
    before, _ = balance(client)
    execution = succeeded(
        client, "generate-sound-effect", prompt="a short beep", durationSeconds=0.5, numResults=100
    )
    results = execution["results"]
    assert len(results) == 100 and len({r["fileId"] for r in results}) == 100
    assert all(r["type"] == "AUDIO" and r["file"]["downloadSource"]["url"] for r in results)
    after, reserved = balance(client)
    assert round(before - after, 6) == round(100 * 0.002, 6) and reserved == 0  # a second each
    _, seconds = audio_samples(download(results[99]))
    assert abs(seconds - 0.5) < 0.1


def test_outputs_of_every_kind_become_ready_files_when_read(client: httpx.Client) -> None:
    """An SVG and an MP3 output get their renditions (or are skipped) and stay usable."""
    source = upload(client, png(64, 48), "to trace")["fileId"]
    traced = succeeded(client, "vectorize-image", imageStorageFileId=source)["results"][0]
    spoken = succeeded(client, "text-to-speech", ttsText="Ready.")["results"][0]
    for result in (traced, spoken):
        file = wait_for_file(client, result["fileId"])
        assert file["status"] == "ready", file
        assert file["downloadSource"]["status"] == "ready"
        assert download({"file": file}) == download(result)
    assert wait_for_file(client, traced["fileId"])["contentType"] == "image/svg+xml"


def test_a_deterministic_tool_makes_its_copies_once_and_outputs_stay_off_the_egg_route(
    client: httpx.Client,
) -> None:
    source = upload(client, png(64, 48), "three traces")["fileId"]
    results = succeeded(client, "vectorize-image", imageStorageFileId=source, numResults=3)[
        "results"
    ]
    assert len({r["fileId"] for r in results}) == 3
    assert len({download(r) for r in results}) == 1  # the same tracing, three files
    # an execution's outputs are reached by signed, expiring URLs only
    url = results[0]["file"]["downloadSource"]["url"]
    token, name = url.split("?")[0].split("/outputs/")[1].split("/")
    assert name.startswith("t")
    base = url.split("/storage/")[0]
    assert httpx.get(f"{base}/files/{token}/{name}").status_code == 404
    assert httpx.get(f"{base}/files/{token}/{name[1:]}").status_code == 404
