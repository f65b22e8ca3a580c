"""Driven by tests/acceptance/test_videogen_tools_sdk.py: the VideoGen API's official Python SDK
(``videogen`` 0.0.38, unchanged, in its own virtual environment) runs every tool and every
resources endpoint of a Hatchery server, waits with its poll helper and downloads each output.
Prints one JSON object of what it saw on its last line. Arguments: base URL, API key, scratch
directory (which holds ``input.png`` and ``input.mp4``, made by the test; the outputs are written
there too)."""

import json
import os
import sys
import time

from videogen import VideoGenApi
from videogen.core.api_error import ApiError
from videogen.core.pydantic_utilities import parse_obj_as
from videogen.download_file import download_file
from videogen.get_hydrated_file import get_hydrated_file
from videogen.poll_executed_tool import poll_executed_tool
from videogen.types.aspect_ratio import AspectRatio
from videogen.types.executed_tool import ExecutedTool
from videogen.upload_file import upload_file

POLL_MS = 200
TIMEOUT_MS = 240_000
EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/svg+xml": "svg",
    "video/mp4": "mp4",
    "video/webm": "webm",
    "video/quicktime": "mov",
    "audio/mpeg": "mp3",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/ogg": "ogg",
    "audio/mp4": "m4a",
    "audio/aac": "aac",
}


def extra(model, name):
    """A field the server sends beyond the SDK's models (they keep extra keys)."""
    return (getattr(model, "model_extra", None) or {}).get(name)


def failure(call):
    """What the SDK raised: [status, body, exception class]; None when nothing was raised."""
    try:
        call()
    except ApiError as exc:
        return [exc.status_code, exc.body, type(exc).__name__]
    return None


def file_seen(file):
    download = file.download_source
    return {
        "file_id": file.file_id,
        "type": file.type,
        "scope": file.scope,
        "display_name": file.display_name,
        "description": file.description,
        "duration_seconds": file.duration_seconds,
        "source_tool_type": file.source_tool_type,
        "source_tool_execution_id": file.source_tool_execution_id,
        "content_type": extra(file, "contentType"),
        "download_status": download.status if download else None,
        "download_url": bool(download and download.url),
        "width": download.width if download else None,
        "height": download.height if download else None,
        "file_bytes": download.file_bytes if download else None,
    }


def upload(client, path, name):
    with open(path, "rb") as f:
        uploaded = upload_file(client, f, display_name=name, poll_interval_ms=POLL_MS)
    return file_seen(uploaded)


def resources(client, seen):
    voices = client.resources.list_tts_voices().tts_voices
    everything = client.resources.list_tts_voices(include_deprecated_voices=True).tts_voices
    presenters = client.resources.list_avatar_presenters().avatar_presenters
    seen["voices"] = {
        "count": len(voices),
        "count_with_deprecated": len(everything),
        "deprecated_in_default": sum(v.is_deprecated for v in voices),
        "deprecated_in_all": sum(v.is_deprecated for v in everything),
        "ids": [v.voice_id for v in everything],
        "genders": sorted({v.display_gender for v in everything}),
        "direct": sum(v.supports_direct_tool_execution for v in voices),
    }
    seen["presenters"] = [
        {
            "id": p.avatar_presenter_id,
            "gender": p.displayable_gender,
            "image_url": p.image_url,
            "thumbnail_url": p.thumbnail_url,
            "preview_video_url": p.preview_video_url,
        }
        for p in presenters
    ]
    usable = [v for v in voices if v.supports_direct_tool_execution and not v.is_deprecated]
    english = [v for v in usable if v.language_code.lower().startswith("en")]
    return (english or usable)[0].voice_id, presenters[0].avatar_presenter_id


def finished(client, name, execution_id, scratch):
    """Wait for the execution with the SDK's helper, then download each of its results."""
    executed = poll_executed_tool(
        client, execution_id, poll_interval_ms=POLL_MS, timeout_ms=TIMEOUT_MS
    )
    results = []
    for i, result in enumerate(executed.results or []):
        file = result.file
        kind = EXTENSIONS.get(extra(file, "contentType") if file else None, "bin")
        path = os.path.join(scratch, f"out-{name}-{i}.{kind}")
        download_file(client, result.file_id, output_path=path)
        results.append(
            {
                "type": result.type,
                "file_id": result.file_id,
                "path": path,
                "file": file_seen(file) if file else None,
            }
        )
    return {
        "execution_id": executed.tool_execution_id,
        "status": executed.status,
        "tool_type": executed.tool_type,
        "error": executed.error.model_dump(by_alias=True) if executed.error else None,
        "progress": extra(executed, "progressPercentage"),
        "attempt_index": extra(executed, "attemptIndex"),
        "results": results,
    }


def errors(client, image_id):
    tools = client.tools
    seen = {
        "too_many_results": failure(lambda: tools.generate_image(prompt="x", num_results=101)),
        "null_prompt": failure(lambda: tools.generate_image(prompt=None)),
        "empty_prompt": failure(lambda: tools.generate_image(prompt="")),
        "clip_without_input": failure(lambda: tools.generate_video_clip(generate_audio=True)),
        "wrong_prefix_execution": failure(
            lambda: tools.get_tool_execution_info(tool_execution_id="vg_file_abcdefghijklmnop")
        ),
        "wrong_prefix_cancel": failure(
            lambda: tools.cancel_tool_execution(tool_execution_id="nope")
        ),
        "unknown_execution": failure(
            lambda: tools.get_tool_execution_info(tool_execution_id="vg_exec_doesnotexist0000")
        ),
        "unknown_presenter": failure(
            lambda: tools.generate_avatar(
                avatar_presenter_id="vg_pres_doesnotexist", audio_storage_file_id=image_id
            )
        ),
        "image_as_video": failure(lambda: tools.upscale_video(video_storage_file_id=image_id)),
        "unknown_voice": failure(
            lambda: tools.text_to_speech(tts_text="hi", voice_id="vg_voic_doesnotexist")
        ),
    }
    return seen


def cancel(client):
    """An execution far too long to finish first: cancelled, then cancelled again."""
    started = client.tools.generate_sound_effect(
        prompt="rain on a tin roof", duration_seconds=30, num_results=100
    )
    execution_id = started.tool_execution_id
    response = client.tools.with_raw_response.cancel_tool_execution(execution_id)
    executed = poll_executed_tool(
        client, execution_id, poll_interval_ms=POLL_MS, timeout_ms=TIMEOUT_MS
    )
    again = client.tools.cancel_tool_execution(tool_execution_id=execution_id)
    after = client.tools.get_tool_execution_info(tool_execution_id=execution_id)
    return {
        "execution_id": execution_id,
        "cancel_status": response.status_code,
        "cancel_id": response.data.tool_execution_id,
        "status": executed.status,
        "results": executed.results,
        "again_id": again.tool_execution_id,
        "status_after_again": after.status,
    }


def listed(client):
    """``GET /v1/tools/executions`` (G2; the G1 SDK has no method for it), through the SDK's own
    HTTP client (its auth and base URL), each entry parsed as the SDK's ``ExecutedTool``."""
    http = client._client_wrapper.httpx_client
    pages, cursor = [], None
    for _ in range(50):
        params = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        response = http.request("v1/tools/executions", method="GET", params=params)
        body = response.json()
        entries = [parse_obj_as(ExecutedTool, e) for e in body["toolExecutions"]]
        pages.append([[e.tool_execution_id, e.status, e.tool_type] for e in entries])
        if not body["hasMore"]:
            break
        cursor = body["nextCursor"]
    return {"status": response.status_code, "pages": pages}


def main():
    base_url, key, scratch = sys.argv[1:4]
    client = VideoGenApi(base_url=base_url, token=key, timeout=60)
    began = time.monotonic()
    seen = {}
    voice_id, presenter_id = resources(client, seen)
    seen["voice_id"], seen["presenter_id"] = voice_id, presenter_id
    image = upload(client, os.path.join(scratch, "input.png"), "An SDK subject")
    video = upload(client, os.path.join(scratch, "input.mp4"), "An SDK clip")
    seen["uploaded"] = {"image": image, "video": video}
    tools = client.tools
    speech = tools.text_to_speech(
        tts_text="Hatchery speaks this sentence for the avatar to say.",
        voice_id=voice_id,
        speech_language_code="en",
        voice_speed=1.0,
    ).tool_execution_id
    started = {
        "generate-image": tools.generate_image(
            prompt="a lighthouse on a cliff at dusk",
            aspect_ratio=AspectRatio(width=4, height=3),
            num_results=1,
        ),
        "generate-video-clip": tools.generate_video_clip(
            prompt="the scene in watercolour",
            video_file_id=video["file_id"],
            generate_audio=True,
            aspect_ratio=AspectRatio(width=4, height=3),
        ),
        "generate-image-from-reference": tools.generate_image(
            prompt="the same subject as a poster",
            image_file_ids=[image["file_id"]],
            aspect_ratio=AspectRatio(width=1, height=1),
            num_results=2,
        ),
        "generate-video-clip-from-prompt": tools.generate_video_clip(
            prompt="waves rolling onto a beach", generate_audio=True
        ),
        "generate-sound-effect": tools.generate_sound_effect(
            prompt="a door creaking open", duration_seconds=2.0, prompt_influence=0.5
        ),
        "vectorize-image": tools.vectorize_image(image_storage_file_id=image["file_id"]),
        "remove-image-background": tools.remove_image_background(
            image_storage_file_id=image["file_id"]
        ),
        "remove-video-background": tools.remove_video_background(
            video_storage_file_id=video["file_id"]
        ),
        "upscale-image": tools.upscale_image(image_storage_file_id=image["file_id"]),
        "upscale-video": tools.upscale_video(video_storage_file_id=video["file_id"]),
    }
    ids = {name: s.tool_execution_id for name, s in started.items()}
    seen["submitted"] = {"text-to-speech": speech, **ids}
    done = {"text-to-speech": finished(client, "text-to-speech", speech, scratch)}
    audio_id = done["text-to-speech"]["results"][0]["file_id"]
    ids["generate-avatar"] = tools.generate_avatar(
        avatar_presenter_id=presenter_id, audio_storage_file_id=audio_id
    ).tool_execution_id
    seen["submitted"]["generate-avatar"] = ids["generate-avatar"]
    for name, execution_id in ids.items():
        done[name] = finished(client, name, execution_id, scratch)
    seen["tools"] = done
    first = done["generate-image"]["results"][0]["file_id"]
    seen["hydrated"] = file_seen(get_hydrated_file(client, first))
    seen["hydrated_descriptions"] = {
        name: get_hydrated_file(client, run["results"][0]["file_id"]).description
        for name, run in done.items()
        if run["results"]
    }
    seen["errors"] = errors(client, image["file_id"])
    seen["cancel"] = cancel(client)
    seen["list"] = listed(client)
    seen["seconds"] = round(time.monotonic() - began, 1)
    print(json.dumps(seen, default=str))


main()
