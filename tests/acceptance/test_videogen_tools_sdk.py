"""The VideoGen API's official Python SDK (``videogen==0.0.38``, unchanged, in its own virtual
environment: ``tests/sdk/videogen_tools.py``) drives every tools and resources endpoint of one
Hatchery server: the voice and presenter lists, uploads, all ten tools waited for with its poll
helper and downloaded with its download helper, its errors, cancel, hydration, and the executions
list. Every output is then decoded here and checked for what its tool promises."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest
from PIL import Image, ImageDraw

from tests.files_helpers import mp4
from tests.helpers import ServerProcess, run_videogen_sdk

NOT_AI = "not an AI model"
IMAGE_SIZE = (64, 48)
VIDEO_SIZE = (160, 120)
VIDEO_SECONDS = 1.0
VIDEO_FPS = 12
TOOL_TYPES = {
    "generate-image": ("GENERATE_IMAGE", "IMAGE"),
    "generate-video-clip": ("GENERATE_VIDEO_CLIP", "VIDEO"),
    "text-to-speech": ("TEXT_TO_SPEECH", "AUDIO"),
    "generate-sound-effect": ("GENERATE_SOUND_EFFECT", "AUDIO"),
    "generate-avatar": ("GENERATE_AVATAR", "VIDEO"),
    "vectorize-image": ("VECTORIZE_IMAGE", "IMAGE"),
    "remove-image-background": ("REMOVE_IMAGE_BACKGROUND", "IMAGE"),
    "remove-video-background": ("REMOVE_VIDEO_BACKGROUND", "VIDEO"),
    "upscale-image": ("UPSCALE_IMAGE", "IMAGE"),
    "upscale-video": ("UPSCALE_VIDEO", "VIDEO"),
}
# runs of a tool beyond its first, by their names in the script
VARIANTS = {
    "generate-image-from-reference": "generate-image",
    "generate-video-clip-from-prompt": "generate-video-clip",
}
# submitted in this order by the script (the avatar once the speech it says is made)
SUBMIT_ORDER = [
    "text-to-speech",
    "generate-image",
    "generate-video-clip",
    "generate-image-from-reference",
    "generate-video-clip-from-prompt",
    "generate-sound-effect",
    "vectorize-image",
    "remove-image-background",
    "remove-video-background",
    "upscale-image",
    "upscale-video",
    "generate-avatar",
]

pytestmark = [pytest.mark.slow, pytest.mark.any_backend]


# ------------------------------------------------------------------------------- the inputs


def subject_png() -> bytes:
    """A red disc on a pale, lightly textured background: something to cut out and trace."""
    width, height = IMAGE_SIZE
    rng = np.random.default_rng(7)
    pixels = np.full((height, width, 3), (225, 230, 235), dtype=np.int16)
    pixels += rng.integers(-6, 7, size=pixels.shape, dtype=np.int16)
    picture = Image.fromarray(pixels.clip(0, 255).astype(np.uint8))
    ImageDraw.Draw(picture).ellipse((18, 10, 46, 38), fill=(200, 30, 30))
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


def subject_mp4(path: Path) -> None:
    """An H.264 clip of a red disc crossing a pale background, with an AAC tone."""

    def picture(i: int) -> Image.Image:
        drawn = Image.new("RGB", VIDEO_SIZE, (220, 225, 230))
        x = 30 + i * 6
        ImageDraw.Draw(drawn).ellipse((x, 30, x + 60, 90), fill=(200, 30, 30))
        return drawn

    mp4(path, VIDEO_SECONDS, VIDEO_SIZE, VIDEO_FPS, picture)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sdk-tools-scratch")


@pytest.fixture(scope="module")
def seen(server: ServerProcess, scratch: Path) -> dict[str, Any]:
    """What the SDK saw, running everything once for the module."""
    (scratch / "input.png").write_bytes(subject_png())
    subject_mp4(scratch / "input.mp4")
    key = server.new_account("sdk-tools@example.com", "100.00")
    return run_videogen_sdk("videogen_tools.py", server.url, key, str(scratch), timeout=300)


def outputs(seen: dict[str, Any], run_name: str, count: int = 1) -> list[dict[str, Any]]:
    """The run's results, after checking the execution around them."""
    run = seen["tools"][run_name]
    tool_type, kind = TOOL_TYPES[VARIANTS.get(run_name, run_name)]
    assert run["status"] == "succeeded", run
    assert run["tool_type"] == tool_type
    assert run["execution_id"] == seen["submitted"][run_name]
    assert run["error"] is None and run["progress"] == 100 and run["attempt_index"] == 0
    assert len(run["results"]) == count
    assert len({r["file_id"] for r in run["results"]}) == count
    for result in run["results"]:
        assert result["type"] == kind and result["file_id"].startswith("vg_file_")
        file = result["file"]
        assert file["file_id"] == result["file_id"] and file["type"] == kind
        assert file["scope"] == "GLOBAL"
        assert file["source_tool_type"] == tool_type
        assert file["source_tool_execution_id"] == run["execution_id"]
        assert file["download_status"] == "ready" and file["download_url"]
        assert NOT_AI in (file["description"] or ""), file["description"]
        assert Path(result["path"]).stat().st_size == file["file_bytes"] > 0
    assert NOT_AI in (seen["hydrated_descriptions"][run_name] or "")
    results: list[dict[str, Any]] = run["results"]
    return results


def output(seen: dict[str, Any], run_name: str) -> dict[str, Any]:
    """The run's one result."""
    return outputs(seen, run_name)[0]


# ---------------------------------------------------------------------------------- decoding


def audio_of(path: str) -> tuple[np.ndarray, float]:
    """Mono float samples and their length in seconds."""
    with av.open(path) as container:
        stream = container.streams.audio[0]
        chunks = [f.to_ndarray().astype(np.float64) for f in container.decode(stream)]
        rate = stream.rate
    samples = np.concatenate([c.mean(axis=0) if c.ndim == 2 else c for c in chunks])
    if np.issubdtype(samples.dtype, np.integer):
        samples = samples / 32768.0
    return samples, len(samples) / rate


def video_of(path: str) -> dict[str, Any]:
    """Frame count, frame size, pixel format and audio length of a video file."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
    found: dict[str, Any] = {
        "frames": len(frames),
        "size": (frames[0].width, frames[0].height),
        "pix_fmt": frames[0].format.name,
        "audio_seconds": None,
    }
    with av.open(path) as container:
        if container.streams.audio:
            found["audio_seconds"] = audio_of(path)[1]
    return found


def alpha_frames(path: str) -> list[np.ndarray]:
    """Each frame's alpha plane (0-255). VP9 keeps alpha beside the picture (Matroska
    BlockAdditional), which only libvpx's decoder reads; ProRes 4444 and others carry it in the
    frame."""
    planes = []
    with av.open(path) as container:
        stream = container.streams.video[0]
        name = stream.codec_context.name
        if name in ("vp8", "vp9"):
            decoder = av.CodecContext.create(f"libvpx-{name}", "r")
            # demux ends with an empty packet, which flushes the decoder
            frames = [f for packet in container.demux(stream) for f in decoder.decode(packet)]
        else:
            frames = list(container.decode(stream))
    for frame in frames:
        assert "a" in frame.format.name.replace("yuv", "").replace("gray", ""), frame.format.name
        planes.append(frame.to_ndarray(format="rgba")[:, :, 3])
    return planes


# ------------------------------------------------------------------------------------- tests


def test_resources_list_voices_and_presenters(seen: dict[str, Any]) -> None:
    voices = seen["voices"]
    assert voices["count"] >= 1 and voices["count_with_deprecated"] >= voices["count"]
    assert voices["deprecated_in_default"] == 0
    assert voices["deprecated_in_all"] == voices["count_with_deprecated"] - voices["count"]
    assert all(v.startswith("vg_voic_") for v in voices["ids"])
    assert {"MALE", "FEMALE"} <= set(voices["genders"])
    assert voices["direct"] >= 1
    assert seen["voice_id"] in voices["ids"]
    presenters = seen["presenters"]
    assert presenters and all(p["id"].startswith("vg_pres_") for p in presenters)
    assert all(p["gender"] in ("MALE", "FEMALE", "NEUTRAL") for p in presenters)
    first = presenters[0]
    picture = httpx.get(first["image_url"], timeout=30)  # plain URLs: no key
    assert picture.status_code == 200 and Image.open(io.BytesIO(picture.content)).size[0] > 0
    assert httpx.get(first["thumbnail_url"], timeout=30).status_code == 200
    preview = httpx.get(first["preview_video_url"], timeout=60)
    assert preview.status_code == 200 and preview.headers["content-type"] == "video/mp4"


def test_uploads_are_ready_files_of_the_right_type(seen: dict[str, Any]) -> None:
    image, video = seen["uploaded"]["image"], seen["uploaded"]["video"]
    assert image["type"] == "IMAGE" and image["download_status"] == "ready"
    assert (image["width"], image["height"]) == IMAGE_SIZE
    assert video["type"] == "VIDEO" and video["download_status"] == "ready"
    assert (video["width"], video["height"]) == VIDEO_SIZE
    assert video["duration_seconds"] == pytest.approx(VIDEO_SECONDS, abs=0.2)


def test_generate_image_is_a_png_of_the_asked_aspect_ratio(seen: dict[str, Any]) -> None:
    result = output(seen, "generate-image")
    with Image.open(result["path"]) as picture:
        assert picture.format == "PNG"
        width, height = picture.size
    assert width / height == pytest.approx(4 / 3, rel=0.02)
    assert (result["file"]["width"], result["file"]["height"]) == (width, height)


def test_generate_image_from_a_reference_makes_each_result_asked(seen: dict[str, Any]) -> None:
    for result in outputs(seen, "generate-image-from-reference", count=2):
        with Image.open(result["path"]) as picture:
            assert picture.format == "PNG"
            assert picture.size[0] == picture.size[1]  # 1:1


def test_a_video_clip_has_frames_and_the_audio_asked_for(seen: dict[str, Any]) -> None:
    result = output(seen, "generate-video-clip")
    video = video_of(result["path"])
    assert video["frames"] > 1
    width, height = video["size"]
    assert width / height == pytest.approx(4 / 3, rel=0.05)
    assert video["audio_seconds"] is not None and video["audio_seconds"] > 0.5
    assert result["file"]["duration_seconds"] == pytest.approx(VIDEO_SECONDS, abs=0.3)


def test_a_clip_from_a_prompt_alone_is_16_9_by_default(seen: dict[str, Any]) -> None:
    result = output(seen, "generate-video-clip-from-prompt")
    video = video_of(result["path"])
    width, height = video["size"]
    assert width / height == pytest.approx(16 / 9, rel=0.05)
    seconds = result["file"]["duration_seconds"]
    assert seconds >= 1 and video["frames"] > 1
    assert video["audio_seconds"] == pytest.approx(seconds, abs=0.3)


def test_text_to_speech_is_audible_and_as_long_as_it_says(seen: dict[str, Any]) -> None:
    result = output(seen, "text-to-speech")
    samples, seconds = audio_of(result["path"])
    assert seconds > 1.0
    assert seconds == pytest.approx(result["file"]["duration_seconds"], abs=0.3)
    assert np.sqrt(np.mean(samples**2)) > 0.01  # not silence
    assert np.abs(samples).max() > 0.1


def test_a_sound_effect_lasts_the_asked_time(seen: dict[str, Any]) -> None:
    result = output(seen, "generate-sound-effect")
    samples, seconds = audio_of(result["path"])
    assert seconds == pytest.approx(2.0, abs=0.3)
    assert result["file"]["duration_seconds"] == pytest.approx(2.0, abs=0.3)
    assert np.sqrt(np.mean(samples**2)) > 0.005


def test_an_avatar_says_the_speech_it_was_given(seen: dict[str, Any]) -> None:
    result = output(seen, "generate-avatar")
    speech = seen["tools"]["text-to-speech"]["results"][0]["file"]["duration_seconds"]
    video = video_of(result["path"])
    assert video["frames"] > 1
    assert video["audio_seconds"] == pytest.approx(speech, abs=0.3)
    assert result["file"]["duration_seconds"] == pytest.approx(speech, abs=0.3)


def test_vectorize_gives_an_svg_of_paths(seen: dict[str, Any]) -> None:
    result = output(seen, "vectorize-image")
    root = ET.parse(result["path"]).getroot()
    assert root.tag in ("svg", "{http://www.w3.org/2000/svg}svg")
    paths = [e for e in root.iter() if e.tag.rsplit("}", 1)[-1] == "path"]
    assert paths and all(p.get("d") for p in paths)


def test_remove_image_background_leaves_the_subject_opaque(seen: dict[str, Any]) -> None:
    result = output(seen, "remove-image-background")
    with Image.open(result["path"]) as picture:
        assert picture.format == "PNG" and picture.size == IMAGE_SIZE
        assert "A" in picture.getbands(), picture.mode
        alpha = np.asarray(picture.convert("RGBA"))[:, :, 3]
    assert (alpha == 0).any() and (alpha == 255).any()
    assert alpha[24, 32] == 255  # the disc's middle
    assert alpha[2, 2] == 0  # a corner of the background


def test_remove_video_background_has_an_alpha_plane(seen: dict[str, Any]) -> None:
    result = output(seen, "remove-video-background")
    planes = alpha_frames(result["path"])
    assert len(planes) == int(VIDEO_SECONDS * VIDEO_FPS)
    assert planes[0].shape == (VIDEO_SIZE[1], VIDEO_SIZE[0])
    assert all((p < 32).any() and (p > 223).any() for p in planes)
    assert video_of(result["path"])["audio_seconds"] == pytest.approx(VIDEO_SECONDS, abs=0.2)


def test_upscale_image_doubles_the_size(seen: dict[str, Any]) -> None:
    result = output(seen, "upscale-image")
    with Image.open(result["path"]) as picture:
        assert picture.size == (IMAGE_SIZE[0] * 2, IMAGE_SIZE[1] * 2)


def test_upscale_video_doubles_the_frame_size(seen: dict[str, Any]) -> None:
    result = output(seen, "upscale-video")
    video = video_of(result["path"])
    assert video["size"] == (VIDEO_SIZE[0] * 2, VIDEO_SIZE[1] * 2)
    assert video["frames"] == int(VIDEO_SECONDS * VIDEO_FPS)  # every frame of the input
    assert video["audio_seconds"] == pytest.approx(VIDEO_SECONDS, abs=0.2)  # its sound kept


def test_get_hydrated_file_on_a_result(seen: dict[str, Any]) -> None:
    hydrated = seen["hydrated"]
    image = seen["tools"]["generate-image"]
    assert hydrated["file_id"] == image["results"][0]["file_id"]
    assert hydrated["download_status"] == "ready" and hydrated["download_url"]
    assert hydrated["source_tool_type"] == "GENERATE_IMAGE"
    assert hydrated["source_tool_execution_id"] == image["execution_id"]
    assert NOT_AI in hydrated["description"]


def test_the_sdk_raises_api_errors_with_the_contract_codes(seen: dict[str, Any]) -> None:
    errors = seen["errors"]
    for case in ("too_many_results", "null_prompt", "empty_prompt", "clip_without_input"):
        status, body, kind = errors[case]
        assert (status, body["code"], kind) == (400, "invalid_parameters", "ApiError"), case
        assert body["message"]
    for case in ("wrong_prefix_execution", "wrong_prefix_cancel"):
        status, body, _ = errors[case]
        assert (status, body["code"]) == (400, "invalid_id"), case
    status, body, _ = errors["unknown_execution"]
    assert (status, body["code"]) == (404, "not_found")
    for case in ("unknown_presenter", "unknown_voice"):
        status, body, _ = errors[case]
        assert (status, body["code"]) == (404, "not_found"), case
    status, body, _ = errors["image_as_video"]
    assert (status, body["code"]) == (400, "invalid_file_type")
    assert "videoStorageFileId" in body["message"]


def test_cancel_through_the_sdk(seen: dict[str, Any]) -> None:
    cancel = seen["cancel"]
    assert cancel["cancel_status"] == 202
    assert cancel["cancel_id"] == cancel["again_id"] == cancel["execution_id"]
    assert cancel["status"] == "cancelled" and cancel["results"] is None
    assert cancel["status_after_again"] == "cancelled"


def test_the_executions_list_pages_newest_first(seen: dict[str, Any]) -> None:
    listed = seen["list"]
    assert listed["status"] == 200
    pages = listed["pages"]
    assert all(len(page) == 4 for page in pages[:-1]) and pages[-1]
    entries = [entry for page in pages for entry in page]
    expected = [seen["cancel"]["execution_id"]] + [
        seen["submitted"][tool] for tool in reversed(SUBMIT_ORDER)
    ]  # the refused requests made none
    assert [e[0] for e in entries] == expected
    assert entries[0][1:] == ["cancelled", "GENERATE_SOUND_EFFECT"]
    assert all(e[1] == "succeeded" for e in entries[1:])
