"""The self-hosted inference adapters against their strict fakes on 127.0.0.1
(``tests/fake_selfhosted.py``): ComfyUI running the workflows of ``examples/comfyui/`` (its
placeholders filled, input files uploaded, outputs read from the history and fetched, resumed by
polling alone, cancelled, refused, unreachable), and the OpenAI images API (generations and
edits, sizes per model, several requests past ten images, refusals terminal, outages retryable).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from hatchery.offline import avatar, sound
from hatchery.providers.base import (
    Job,
    RetryableError,
    Running,
    TerminalError,
    UpstreamUnreachable,
)
from hatchery.providers.comfyui import MISSING_ROUTE, ComfyUIProvider
from hatchery.providers.inputs import InputFiles
from hatchery.providers.openai_images import OpenAIImagesProvider
from tests.adapter_helpers import drive, upstream
from tests.fake_selfhosted import (
    COMFY_TOKEN,
    OPENAI_KEY,
    FakeComfyUI,
    FakeOpenAIImages,
    form,
    png,
)
from tests.fake_upstreams import FakeFiles

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "comfyui"
TEXT_TO_IMAGE = str(EXAMPLES / "sdxl-text-to-image.json")
IMAGE_TO_IMAGE = str(EXAMPLES / "sdxl-image-to-image.json")
REMOVE_BACKGROUND = str(EXAMPLES / "remove-background-rmbg.json")
REFERENCE_URL = "https://example.com/ref.png"

STORE = {
    "inputs/photo.png": png((640, 480), (220, 180, 40)),
    "inputs/sketch.png": png((300, 200), (20, 20, 220)),
    "inputs/voice.mp3": sound.sound_effect("a voice", seconds=2.0, index=0).data,
}
SIGNED: list[str] = []


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cdn() -> Iterator[FakeFiles]:
    fake = FakeFiles()
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def comfy() -> Iterator[FakeComfyUI]:
    fake = FakeComfyUI(COMFY_TOKEN)
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def openai(cdn: FakeFiles) -> Iterator[FakeOpenAIImages]:
    fake = FakeOpenAIImages(OPENAI_KEY, cdn)
    yield fake
    fake.close()


@pytest.fixture(autouse=True)
def fresh(cdn: FakeFiles, comfy: FakeComfyUI, openai: FakeOpenAIImages) -> Iterator[None]:
    """Each test starts with empty fakes and ends with none of them having seen a request that
    breaks its protocol."""
    for fake in (cdn, comfy, openai):
        fake.reset()
    SIGNED.clear()
    yield
    for fake in (cdn, comfy, openai):
        assert fake.violations == []


async def read(key: str) -> bytes:
    return STORE[key]


async def sign(key: str, seconds: int) -> str:
    SIGNED.append(key)
    return f"https://bucket.example.com/{key}?X-Amz-Expires={seconds}"


async def fetch(url: str) -> bytes:
    assert url == REFERENCE_URL  # never fetched for real: handed over here
    return png((512, 512), (0, 128, 255))


def comfyui(
    http: httpx.AsyncClient, comfy: FakeComfyUI, presigned: bool = False
) -> ComfyUIProvider:
    auth = {"authorization": f"Bearer {COMFY_TOKEN}"}
    inputs = InputFiles(read, sign if presigned else None)
    return ComfyUIProvider(upstream(http, "comfyui", comfy.base, auth), inputs, fetch)


def openai_provider(
    http: httpx.AsyncClient, openai: FakeOpenAIImages, key: str = OPENAI_KEY
) -> OpenAIImagesProvider:
    auth = {"authorization": f"Bearer {key}"}
    return OpenAIImagesProvider(
        upstream(http, "openai", openai.base_url, auth), InputFiles(read), fetch
    )


def egg(model: str = "nanobanana", route: tuple[str, str] | None = None, **params: Any) -> Job:
    values = {
        "prompt": "a red fox in the snow",
        "negative_prompt": None,
        "num_outputs": 1,
        "duration": 5,
        "aspect_ratio": "16:9",
        "resolution": "1k",
        "image_urls": [],
        **params,
    }
    routes = dict([route]) if route else {}
    kind = "video" if model == "veo3.1" else "image"
    return Job.from_params("gen_test", model, kind, values, routes)


def stored(name: str) -> dict[str, Any]:
    key = f"inputs/{name}"
    with Image.open(io.BytesIO(STORE[key])) as image:
        width, height = image.size
    return {
        "role": "image",
        "file_id": f"vg_file_{name.split('.')[0]}",
        "key": key,
        "type": "IMAGE",
        "content_type": "image/png",
        "width": width,
        "height": height,
    }


def tool(name: str, route: tuple[str, str] | None = None, *images: str, **params: Any) -> Job:
    values = {
        "tool": name,
        "prompt": params.pop("prompt", ""),
        "num_outputs": params.pop("num_outputs", 1),
        "inputs": [stored(i) for i in images],
        "options": params,
    }
    return Job.from_params("vg_exec_test", name, "tool", values, dict([route]) if route else {})


def pixels(data: bytes) -> tuple[str, tuple[int, int]]:
    with Image.open(io.BytesIO(data)) as image:
        return image.mode, image.size


# -- ComfyUI: jobs -------------------------------------------------------------------------------


async def test_comfyui_egg_text_to_image_fills_every_placeholder_and_reads_the_batch(
    http: httpx.AsyncClient, comfy: FakeComfyUI
) -> None:
    comfy.pending_polls = 2
    work = egg(
        "nanobanana-pro",
        ("comfyui", TEXT_TO_IMAGE),
        num_outputs=2,
        negative_prompt="people",
        aspect_ratio="9:16",
        resolution="2k",
    )
    result, handles = await drive(comfyui(http, comfy), work)
    (prompt,) = comfy.prompts()  # {{num_outputs}}: one prompt makes the whole batch
    assert prompt["5"]["inputs"] == {"width": 1152, "height": 2048, "batch_size": 2}
    assert prompt["6"]["inputs"]["text"] == "a red fox in the snow"
    assert prompt["7"]["inputs"]["text"] == "people"
    assert prompt["3"]["inputs"]["seed"] == result.usage["seeds"][0]
    assert prompt["3"]["inputs"]["model"] == ["4", 0]  # links untouched
    assert len(handles) == 3  # queued, then two polls that found it still running
    assert handles[0] == {
        "prompt_ids": result.usage["upstream_ids"],
        "seeds": result.usage["seeds"],
    }
    assert [(a.extension, a.width, a.height) for a in result.artifacts] == [("png", 1152, 2048)] * 2
    assert result.usage["route"] == "sdxl-text-to-image.json"
    assert result.usage["execution_seconds"] == 4.2
    assert all(r.headers["authorization"] == f"Bearer {COMFY_TOKEN}" for r in comfy.requests)
    body = comfy.seen("POST", "/prompt")[0].json()
    assert set(body) == {"prompt", "client_id"}


async def test_comfyui_folds_the_negative_prompt_in_when_the_workflow_has_no_place_for_it(
    http: httpx.AsyncClient, comfy: FakeComfyUI
) -> None:
    work = egg(
        "nanobanana",
        ("comfyui", IMAGE_TO_IMAGE),
        negative_prompt="people",
        image_urls=[REFERENCE_URL],
    )
    result, _ = await drive(comfyui(http, comfy), work)
    (prompt,) = comfy.prompts()
    assert prompt["6"]["inputs"]["text"] == "a red fox in the snow\n\nAvoid: people"
    assert prompt["10"]["inputs"]["image"] == "hatchery/gen_test-1.png"
    assert pixels(comfy.uploads["hatchery/gen_test-1.png"]) == ("RGB", (512, 512))
    assert [(a.width, a.height) for a in result.artifacts] == [(512, 512)]


async def test_comfyui_generate_image_with_a_reference_uploads_its_bytes_even_with_presigned_urls(
    http: httpx.AsyncClient, comfy: FakeComfyUI
) -> None:
    work = tool(
        "generate-image",
        ("comfyui", IMAGE_TO_IMAGE),
        "photo.png",
        prompt="make it autumn",
        num_outputs=3,
        aspect=[1, 1],
    )
    result, _ = await drive(comfyui(http, comfy, presigned=True), work)
    (upload,) = comfy.seen("POST", "/upload/image")
    fields = {p.name: p for p in form(upload) or []}
    assert fields["image"].filename == "vg_file_photo.png"
    assert fields["image"].data == STORE["inputs/photo.png"]
    assert (fields["type"].text, fields["subfolder"].text) == ("input", "hatchery")
    assert SIGNED == []  # ComfyUI reads its own input folder: no URL is handed out
    (prompt,) = comfy.prompts()
    assert prompt["10"]["inputs"]["image"] == "hatchery/vg_file_photo.png"
    assert prompt["12"]["inputs"]["amount"] == 3
    assert prompt["6"]["inputs"]["text"] == "make it autumn"
    assert [(a.extension, a.width, a.height) for a in result.artifacts] == [("png", 640, 480)] * 3
    assert result.artifacts[0].description == "comfyui sdxl-image-to-image.json"


async def test_comfyui_generate_image_without_references_sizes_the_frame_from_the_aspect_option(
    http: httpx.AsyncClient, comfy: FakeComfyUI
) -> None:
    work = tool("generate-image", ("comfyui", TEXT_TO_IMAGE), prompt="a lighthouse", aspect=[4, 3])
    result, _ = await drive(comfyui(http, comfy), work)
    (prompt,) = comfy.prompts()
    assert prompt["5"]["inputs"] == {"width": 1152, "height": 896, "batch_size": 1}
    assert prompt["7"]["inputs"]["text"] == ""  # a tool has no negative prompt
    assert (result.artifacts[0].width, result.artifacts[0].height) == (1152, 896)
    assert comfy.seen("POST", "/upload/image") == []


async def test_comfyui_remove_background_runs_the_workflow_once_and_repeats_its_output(
    http: httpx.AsyncClient, comfy: FakeComfyUI
) -> None:
    work = tool(
        "remove-image-background", ("comfyui", REMOVE_BACKGROUND), "sketch.png", num_outputs=3
    )
    result, _ = await drive(comfyui(http, comfy), work)
    (prompt,) = comfy.prompts()
    assert prompt["1"]["inputs"]["image"] == "hatchery/vg_file_sketch.png"
    assert prompt["2"]["class_type"] == "RMBG"
    assert len(comfy.viewed()) == 1
    assert len(result.artifacts) == 3 and len({a.data for a in result.artifacts}) == 1
    assert pixels(result.artifacts[0].data) == ("RGBA", (300, 200))
    assert result.artifacts[0].description == "comfyui remove-background-rmbg.json"


async def test_comfyui_image_1_is_the_first_input_image_as_image_is(
    http: httpx.AsyncClient, comfy: FakeComfyUI, tmp_path: Path
) -> None:
    workflow = tmp_path / "numbered.json"
    workflow.write_text(Path(IMAGE_TO_IMAGE).read_text().replace("{{image}}", "{{image_1}}"))
    work = tool("generate-image", ("comfyui", str(workflow)), "photo.png", prompt="autumn")
    await drive(comfyui(http, comfy), work)
    (prompt,) = comfy.prompts()
    assert prompt["10"]["inputs"]["image"] == "hatchery/vg_file_photo.png"


async def test_comfyui_avatar_workflow_gets_the_presenters_picture_and_the_audio(
    http: httpx.AsyncClient, comfy: FakeComfyUI, tmp_path: Path
) -> None:
    nodes = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "{{image}}"}},
        "2": {"class_type": "LoadAudio", "inputs": {"audio": "{{audio}}"}},
        "3": {"class_type": "SaveVideo", "inputs": {"filename_prefix": "talk", "video": ["1", 0]}},
    }
    workflow = tmp_path / "avatar.json"
    workflow.write_text(json.dumps(nodes))
    presenter = avatar.presenters()[0]
    audio = {
        "role": "audio",
        "file_id": "vg_file_voice",
        "key": "inputs/voice.mp3",
        "type": "AUDIO",
        "content_type": "audio/mpeg",
        "seconds": 2.0,
    }
    values = {
        "tool": "generate-avatar",
        "duration": 2,
        "inputs": [audio],
        "options": {"presenter_id": presenter.presenter_id},
    }
    work = Job.from_params(
        "vg_exec_talk", "generate-avatar", "tool", values, {"comfyui": str(workflow)}
    )
    assert comfyui(http, comfy).unsupported(work) is None
    result, _ = await drive(comfyui(http, comfy), work)
    sent = [p for u in comfy.seen("POST", "/upload/image") for p in form(u) or []]
    names = sorted(part.filename for part in sent if part.filename)
    assert names == sorted([f"{presenter.presenter_id}.png", "vg_file_voice.mp3"])
    (prompt,) = comfy.prompts()
    assert prompt["1"]["inputs"]["image"] == f"hatchery/{presenter.presenter_id}.png"
    assert prompt["2"]["inputs"]["audio"] == "hatchery/vg_file_voice.mp3"
    assert result.artifacts[0].extension == "mp4"


async def test_comfyui_without_a_batch_placeholder_queues_one_prompt_per_output_files_in_node_order(
    http: httpx.AsyncClient, comfy: FakeComfyUI, tmp_path: Path
) -> None:
    nodes = json.loads(Path(TEXT_TO_IMAGE).read_text())
    nodes["5"]["inputs"]["batch_size"] = 1
    nodes["10"] = {
        "class_type": "SaveImage",
        "inputs": {"filename_prefix": "second", "images": ["8", 0]},
    }
    nodes["9"]["inputs"]["filename_prefix"] = "first"
    nodes["2"] = {"class_type": "PreviewImage", "inputs": {"images": ["8", 0]}}
    workflow = tmp_path / "two-saves.json"
    workflow.write_text(json.dumps(nodes))
    result, _ = await drive(
        comfyui(http, comfy), egg(route=("comfyui", str(workflow)), num_outputs=2)
    )
    prompts = comfy.prompts()
    assert len(prompts) == 2
    seeds = [p["3"]["inputs"]["seed"] for p in prompts]
    assert seeds == result.usage["seeds"] and seeds[0] != seeds[1]
    # node 9 before node 10 (numbers, not strings), PreviewImage's temporary file skipped
    assert [name.split("_")[0] for name in comfy.viewed()] == ["first", "second"]
    assert len(result.artifacts) == 2


async def test_comfyui_makes_an_egg_video_model_from_a_video_workflow(
    http: httpx.AsyncClient, comfy: FakeComfyUI, tmp_path: Path
) -> None:
    nodes = json.loads(Path(TEXT_TO_IMAGE).read_text())
    nodes["9"] = {
        "class_type": "SaveVideo",
        "inputs": {"filename_prefix": "clip", "video": ["8", 0]},
    }
    workflow = tmp_path / "video.json"
    workflow.write_text(json.dumps(nodes))
    work = egg("veo3.1", ("comfyui", str(workflow)), duration=8, aspect_ratio="9:16")
    result, _ = await drive(comfyui(http, comfy), work)
    (prompt,) = comfy.prompts()
    assert (prompt["5"]["inputs"]["width"], prompt["5"]["inputs"]["height"]) == (720, 1280)
    (video,) = result.artifacts
    assert (video.extension, video.width, video.height, video.seconds) == ("mp4", 720, 1280, 8.0)


async def test_comfyui_resumes_a_stored_handle_by_polling_alone(
    http: httpx.AsyncClient, comfy: FakeComfyUI
) -> None:
    comfy.pending_polls = 1
    work = egg(route=("comfyui", TEXT_TO_IMAGE))
    first = await comfyui(http, comfy).submit(work)
    assert isinstance(first, Running)
    handle = json.loads(json.dumps(first.upstream))  # as stored on the task
    restarted = comfyui(http, comfy)  # a worker that crashed and came back
    step = await restarted.poll(work, handle)
    while isinstance(step, Running):
        step = await restarted.poll(work, step.upstream)
    assert len(comfy.seen("POST", "/prompt")) == 1 and len(step.artifacts) == 1
    assert comfy.seen("POST", "/upload/image") == []


async def test_comfyui_cancel_deletes_the_queued_prompts_and_interrupts_only_the_running_one(
    http: httpx.AsyncClient, comfy: FakeComfyUI, tmp_path: Path
) -> None:
    nodes = json.loads(Path(TEXT_TO_IMAGE).read_text())
    nodes["5"]["inputs"]["batch_size"] = 1  # one prompt per output
    workflow = tmp_path / "single.json"
    workflow.write_text(json.dumps(nodes))
    comfy.pending_polls = 50
    work = egg(route=("comfyui", str(workflow)), num_outputs=2)
    provider = comfyui(http, comfy)
    step = await provider.submit(work)
    assert isinstance(step, Running)
    running, pending = step.upstream["prompt_ids"]
    await provider.cancel(work, step.upstream)
    assert comfy.deleted == [running, pending]
    assert comfy.interrupted == [running]
    with pytest.raises(RetryableError, match="was interrupted"):
        await provider.poll(work, step.upstream)


# -- ComfyUI: failures ---------------------------------------------------------------------------


async def test_comfyui_a_workflow_that_does_not_validate_on_the_server_is_worth_another_provider(
    http: httpx.AsyncClient, comfy: FakeComfyUI
) -> None:
    comfy.plan("prompt", "invalid")  # the checkpoint is not installed there
    with pytest.raises(RetryableError) as caught:
        await comfyui(http, comfy).submit(egg(route=("comfyui", TEXT_TO_IMAGE)))
    assert type(caught.value) is RetryableError
    assert "sdxl-text-to-image.json does not validate: node 4 ckpt_name: Value not in list" in str(
        caught.value
    )


async def test_comfyui_a_node_refusing_the_requests_own_value_is_terminal(
    http: httpx.AsyncClient, comfy: FakeComfyUI
) -> None:
    work = tool(
        "generate-image", ("comfyui", IMAGE_TO_IMAGE), "photo.png", prompt="x", num_outputs=65
    )  # RepeatLatentBatch takes at most 64
    with pytest.raises(
        TerminalError,
        match=r"comfyui refused the request's num_outputs: "
        r"Value 65 bigger than max of 64",
    ):
        await comfyui(http, comfy).submit(work)


@pytest.mark.parametrize(
    ("mode", "error", "message"),
    [
        (
            "error",
            RetryableError,
            "failed in node 3 \\(KSampler\\): torch.OutOfMemoryError: CUDA out of memory",
        ),
        ("lost", RetryableError, "neither queued nor in the history"),
        ("fewer", RetryableError, "made 1 of 2 output file\\(s\\)"),
        ("notimage", RetryableError, "an output is not a readable image"),
    ],
)
async def test_comfyui_what_goes_wrong_after_queueing_is_retryable(
    http: httpx.AsyncClient, comfy: FakeComfyUI, mode: str, error: type[Exception], message: str
) -> None:
    comfy.plan("prompt", mode)
    with pytest.raises(error, match=message) as caught:
        await drive(comfyui(http, comfy), egg(route=("comfyui", TEXT_TO_IMAGE), num_outputs=2))
    assert type(caught.value) is error


@pytest.mark.parametrize(
    ("kind", "mode", "message"),
    [
        ("prompt", "500", "POST prompt answered HTTP 500"),
        ("prompt", "429", "POST prompt answered HTTP 429"),
        ("prompt", "hang", "POST prompt did not answer within 1.5s"),
        ("prompt", "drop", "POST prompt failed \\(RemoteProtocolError"),
        ("history", "503", "GET history/.* answered HTTP 503"),
    ],
)
async def test_comfyui_outages_are_unreachable(
    http: httpx.AsyncClient, comfy: FakeComfyUI, kind: str, mode: str, message: str
) -> None:
    comfy.plan(kind, mode)
    with pytest.raises(UpstreamUnreachable, match=message):
        await drive(comfyui(http, comfy), egg(route=("comfyui", TEXT_TO_IMAGE)))


async def test_comfyui_a_failed_queueing_cancels_the_prompts_already_queued(
    http: httpx.AsyncClient, comfy: FakeComfyUI, tmp_path: Path
) -> None:
    nodes = json.loads(Path(TEXT_TO_IMAGE).read_text())
    nodes["5"]["inputs"]["batch_size"] = 1
    workflow = tmp_path / "single.json"
    workflow.write_text(json.dumps(nodes))
    comfy.pending_polls = 50
    comfy.plan("prompt", "ok", "503")
    with pytest.raises(UpstreamUnreachable):
        await comfyui(http, comfy).submit(egg(route=("comfyui", str(workflow)), num_outputs=3))
    (queued,) = comfy.order
    assert comfy.deleted == [queued]


async def test_comfyui_a_wrong_token_is_retryable(
    http: httpx.AsyncClient, comfy: FakeComfyUI
) -> None:
    provider = ComfyUIProvider(
        upstream(http, "comfyui", comfy.base, {"authorization": "Bearer wrong"}), InputFiles(read)
    )
    with pytest.raises(RetryableError, match="HTTP 401"):
        await provider.submit(egg(route=("comfyui", TEXT_TO_IMAGE)))


# -- ComfyUI: routes and what it serves ----------------------------------------------------------


def test_comfyui_route_problems_name_what_is_wrong(tmp_path: Path) -> None:
    provider = ComfyUIProvider(None, InputFiles(read))  # type: ignore[arg-type]

    def write(name: str, content: Any) -> str:
        path = tmp_path / name
        path.write_text(content if isinstance(content, str) else json.dumps(content))
        return str(path)

    no_prompt = json.loads(Path(TEXT_TO_IMAGE).read_text())
    no_prompt["6"]["inputs"]["text"] = "a fixed prompt"
    assert provider.route_problem("nanobanana", None) == MISSING_ROUTE
    assert (
        MISSING_ROUTE == 'comfyui needs a workflow file: upstream = {comfyui = "workflows/x.json"}'
    )
    assert provider.route_problem("nanobanana", "sdxl") == (
        "comfyui runs workflow files (a .json file), not 'sdxl'"
    )
    missing = str(tmp_path / "missing.json")
    assert provider.route_problem("nanobanana", missing) == (
        f"cannot read the workflow {missing}: No such file or directory"
    )
    assert "is not JSON" in (provider.route_problem("nanobanana", write("bad.json", "{")) or "")
    assert "UI format; save it with Export (API)" in (
        provider.route_problem("nanobanana", write("ui.json", {"nodes": [], "links": []})) or ""
    )
    assert "node 3 needs a class_type and inputs" in (
        provider.route_problem("nanobanana", write("odd.json", {"3": {"inputs": {}}})) or ""
    )
    path = write("fixed.json", no_prompt)
    assert provider.route_problem("generate-image", path) == (
        f"the workflow {path} must take {{{{prompt}}}} for generate-image"
    )
    assert provider.route_problem("remove-image-background", TEXT_TO_IMAGE) == (
        f"the workflow {TEXT_TO_IMAGE} must take {{{{image}}}} for remove-image-background"
    )
    colour = {"1": {"class_type": "X", "inputs": {"a": "{{colour}}"}}}
    assert "unknown placeholders: {{colour}}" in (
        provider.route_problem("nanobanana", write("u.json", colour)) or ""
    )
    inside = {"1": {"class_type": "X", "inputs": {"text": "a {{prompt}} here"}}}
    assert "placeholder inside a longer string" in (
        provider.route_problem("nanobanana", write("p.json", inside)) or ""
    )
    assert provider.route_problem("nanobanana", TEXT_TO_IMAGE) is None
    assert provider.route_problem("generate-image", IMAGE_TO_IMAGE) is None
    assert provider.route_problem("remove-image-background", REMOVE_BACKGROUND) is None
    assert provider.serves("veo3.1") and provider.serves("upscale-video")
    assert provider.image_sizes("nanobanana") == {"1k", "2k", "4k"}


def test_comfyui_skips_jobs_whose_input_files_do_not_fit_the_workflow() -> None:
    provider = ComfyUIProvider(None, InputFiles(read))  # type: ignore[arg-type]
    text = tool("generate-image", ("comfyui", TEXT_TO_IMAGE), "photo.png", prompt="x")
    assert (
        provider.unsupported(text) == "its workflow sdxl-text-to-image.json takes no input images"
    )
    bare = tool("generate-image", ("comfyui", IMAGE_TO_IMAGE), prompt="x")
    assert (
        provider.unsupported(bare) == "its workflow sdxl-image-to-image.json takes 1 input image(s)"
    )
    assert provider.unsupported(tool("generate-image", None, prompt="x")) == MISSING_ROUTE
    referenced = egg(route=("comfyui", IMAGE_TO_IMAGE), image_urls=[REFERENCE_URL])
    assert (
        provider.unsupported(referenced) == "it cannot fetch image_urls here"
    )  # built without fetch
    with_fetch = ComfyUIProvider(None, InputFiles(read), fetch)  # type: ignore[arg-type]
    assert with_fetch.unsupported(referenced) is None


# -- OpenAI images -------------------------------------------------------------------------------


async def test_openai_generates_egg_images_with_gpt_image_1_by_default(
    http: httpx.AsyncClient, openai: FakeOpenAIImages
) -> None:
    result, handles = await drive(
        openai_provider(http, openai), egg(num_outputs=2, negative_prompt="people")
    )
    assert handles == []  # synchronous
    (call,) = openai.seen("POST", "/v1/images/generations")
    assert call.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert call.json() == {
        "model": "gpt-image-1",
        "prompt": "a red fox in the snow\n\nAvoid: people",
        "n": 2,
        "size": "1536x1024",  # 16:9 -> the nearest of its three sizes
    }  # no response_format: the GPT image models refuse it
    assert [(a.extension, a.width, a.height) for a in result.artifacts] == [("png", 1536, 1024)] * 2
    assert result.usage["tokens"] == {"input": 50, "output": 8320, "total": 8370}
    assert result.usage["route"] == "gpt-image-1"
    assert len(result.usage["upstream_ids"]) == 1 and result.usage["upstream_ids"][0].startswith(
        "req_"
    )


async def test_openai_splits_more_than_ten_images_into_several_requests(
    http: httpx.AsyncClient, openai: FakeOpenAIImages
) -> None:
    result, _ = await drive(openai_provider(http, openai), egg(num_outputs=12, aspect_ratio="9:16"))
    calls = openai.seen("POST", "/v1/images/generations")
    assert sorted(c.json()["n"] for c in calls) == [2, 10]
    assert {c.json()["size"] for c in calls} == {"1024x1536"}
    assert len(result.artifacts) == 12 and result.usage["requests"] == 2


async def test_openai_dall_e_3_makes_one_image_per_request_at_its_own_sizes(
    http: httpx.AsyncClient, openai: FakeOpenAIImages
) -> None:
    work = egg(route=("openai", "dall-e-3"), num_outputs=2)
    result, _ = await drive(openai_provider(http, openai), work)
    calls = openai.seen("POST", "/v1/images/generations")
    assert [c.json()["n"] for c in calls] == [1, 1]
    assert {(c.json()["size"], c.json()["response_format"]) for c in calls} == {
        ("1792x1024", "b64_json")
    }
    assert len(result.artifacts) == 2 and "tokens" not in result.usage


async def test_openai_a_self_hosted_model_gets_its_own_size_and_answers_urls(
    http: httpx.AsyncClient, openai: FakeOpenAIImages, cdn: FakeFiles
) -> None:
    openai.plan("generate", "url")
    work = egg(route=("openai", "flux-schnell"), num_outputs=2)
    result, _ = await drive(openai_provider(http, openai), work)
    (call,) = openai.seen("POST", "/v1/images/generations")
    assert call.json()["size"] == "1344x768"  # 16:9 at about a megapixel, multiples of 64
    assert call.json()["response_format"] == "b64_json"
    assert len(cdn.seen("GET", "/files/openai-")) == 2  # downloaded, without the key
    assert [(a.width, a.height) for a in result.artifacts] == [(64, 36)] * 2


@pytest.mark.parametrize(
    ("images", "field"), [(("photo.png",), "image"), (("photo.png", "sketch.png"), "image[]")]
)
async def test_openai_generate_image_with_references_sends_them_to_the_edits_endpoint(
    http: httpx.AsyncClient, openai: FakeOpenAIImages, images: tuple[str, ...], field: str
) -> None:
    work = tool(
        "generate-image", None, *images, prompt="in watercolour", num_outputs=2, aspect=[1, 1]
    )
    result, _ = await drive(openai_provider(http, openai), work)
    (call,) = openai.seen("POST", "/v1/images/edits")
    parts = form(call) or []
    files = [p for p in parts if p.filename]
    assert [p.name for p in files] == [field] * len(images)
    assert [p.data for p in files] == [STORE[f"inputs/{i}"] for i in images]
    fields = {p.name: p.text for p in parts if not p.filename}
    assert fields == {
        "model": "gpt-image-1",
        "prompt": "in watercolour",
        "n": "2",
        "size": "1024x1024",
    }
    assert [a.description for a in result.artifacts] == ["openai gpt-image-1"] * 2
    assert openai.seen("POST", "/v1/images/generations") == []


async def test_openai_egg_image_urls_are_fetched_and_sent_as_an_edit(
    http: httpx.AsyncClient, openai: FakeOpenAIImages
) -> None:
    await drive(openai_provider(http, openai), egg(image_urls=[REFERENCE_URL]))
    (call,) = openai.seen("POST", "/v1/images/edits")
    (image,) = [p for p in form(call) or [] if p.filename]
    assert (image.name, image.content_type) == ("image", "image/png")
    assert pixels(image.data) == ("RGB", (512, 512))


@pytest.mark.parametrize(
    ("mode", "error", "message"),
    [
        ("moderation", TerminalError, "HTTP 400: Your request was rejected by the safety system"),
        ("invalid", TerminalError, "HTTP 400: Invalid 'prompt': string too long"),
        ("fewer", RetryableError, "gpt-image-1 answered 1 of 2 image\\(s\\)"),
        ("billing", RetryableError, "HTTP 400: Billing hard limit has been reached"),
        ("429", UpstreamUnreachable, "HTTP 429"),
        ("500", UpstreamUnreachable, "HTTP 500"),
        ("hang", UpstreamUnreachable, "did not answer within 1.5s"),
    ],
)
async def test_openai_refusals_are_terminal_and_outages_retryable(
    http: httpx.AsyncClient,
    openai: FakeOpenAIImages,
    mode: str,
    error: type[Exception],
    message: str,
) -> None:
    openai.plan("generate", mode)
    with pytest.raises(error, match=message) as caught:
        await openai_provider(http, openai).submit(egg(num_outputs=2))
    assert type(caught.value) is error


async def test_openai_a_wrong_key_is_retryable(
    http: httpx.AsyncClient, openai: FakeOpenAIImages
) -> None:
    with pytest.raises(RetryableError, match="HTTP 401: Incorrect API key provided") as caught:
        await openai_provider(http, openai, key="sk-wrong").submit(egg())
    assert type(caught.value) is RetryableError


def test_openai_says_what_it_serves_and_which_routes_it_takes() -> None:
    provider = OpenAIImagesProvider(None, InputFiles(read), fetch)  # type: ignore[arg-type]
    assert provider.serves("nanobanana") and provider.serves("nanobanana-pro")
    assert provider.serves("my-own-image-model") and provider.serves("generate-image")
    assert not provider.serves("veo3.1") and not provider.serves("remove-image-background")
    assert provider.route_problem("nanobanana", None) is None
    assert provider.route_problem("nanobanana", "flux-dev") is None
    assert provider.route_problem("nanobanana", "/srv/catalog/x.json") == (
        "openai takes the name of an image model (like gpt-image-1), not '/srv/catalog/x.json'"
    )
    assert provider.image_sizes("nanobanana") == {"1k"}
    assert provider.unsupported(egg("veo3.1")) == "it makes images only"
    refs = egg(route=("openai", "dall-e-3"), image_urls=[REFERENCE_URL])
    assert provider.unsupported(refs) == "dall-e-3 takes no reference images"
    two = egg(route=("openai", "dall-e-2"), image_urls=[REFERENCE_URL] * 2)
    assert provider.unsupported(two) == "dall-e-2 takes at most 1 reference image(s)"
    many = tool("generate-image", None, *(["photo.png"] * 17), prompt="x")
    assert provider.unsupported(many) == "gpt-image-1 takes at most 16 reference image(s)"
    assert provider.unsupported(egg(image_urls=[REFERENCE_URL] * 16)) is None
