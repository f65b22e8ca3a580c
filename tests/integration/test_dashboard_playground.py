"""The dashboard's playground over HTTP, on both databases: the picker lists the server's models
and tools, each one's form is made from its request schema (labels, selects with the schema's
options, defaults, limits), unknown ones are a 404 page, and the calls the page's script makes
work with the session alone: the submit (with the CSRF header), the event stream and the read
of the ended task."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest

from tests.dashboard_helpers import Dashboard, new_signed_in_account
from tests.helpers import ServerProcess

PAGE = "/dashboard/playground"


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: str = ""
    parents: list[Element] = field(default_factory=list)


class Page(HTMLParser):
    """A page's elements, each with its attributes, its own text and its ancestors."""

    VOID = frozenset({"input", "meta", "link", "br", "img", "hr", "source"})

    def __init__(self, html: str) -> None:
        super().__init__()
        self.elements: list[Element] = []
        self.open: list[Element] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs}, parents=list(self.open))
        self.elements.append(element)
        if tag not in self.VOID:
            self.open.append(element)

    def handle_endtag(self, tag: str) -> None:
        while self.open and self.open.pop().tag != tag:
            pass

    def handle_data(self, data: str) -> None:
        for element in self.open:
            element.text += data

    def find(self, tag: str = "", **attrs: str) -> list[Element]:
        return [
            e
            for e in self.elements
            if (not tag or e.tag == tag) and all(e.attrs.get(k) == v for k, v in attrs.items())
        ]

    def one(self, tag: str = "", **attrs: str) -> Element:
        found = self.find(tag, **attrs)
        assert len(found) == 1, (tag, attrs, found)
        return found[0]

    def field(self, name: str) -> Element:
        """The form's control named ``name``; it must have a label."""
        control = next(
            e
            for e in self.elements
            if e.attrs.get("name") == name
            and any(p.attrs.get("id") == "playground-form" for p in e.parents)
        )
        assert control.attrs.get("id"), control
        assert self.find("label", **{"for": control.attrs["id"]}), f"no label for {name}"
        return control

    def label(self, control: Element) -> str:
        return " ".join(self.one("label", **{"for": control.attrs["id"]}).text.split())

    def options(self, select: Element) -> list[str]:
        return [
            e.attrs["value"] for e in self.elements if e.tag == "option" and select in e.parents
        ]

    def selected(self, select: Element) -> list[str]:
        return [
            e.attrs["value"]
            for e in self.elements
            if e.tag == "option" and select in e.parents and "selected" in e.attrs
        ]

    def names(self) -> list[str]:
        form = self.one("form", id="playground-form")
        return [e.attrs["name"] for e in self.elements if form in e.parents and "name" in e.attrs]


@pytest.fixture(scope="module")
def dash(server: ServerProcess) -> Iterator[Dashboard]:
    dash = new_signed_in_account(server, "playground@example.com", "50.00")
    yield dash
    dash.close()


def page(dash: Dashboard, **query: str) -> Page:
    response = dash.get(PAGE, **query)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    return Page(response.text)


def events(dash: Dashboard, path: str) -> list[tuple[str, dict[str, Any]]]:
    """The events of a stream until it ends, read with the session's cookie alone."""
    found: list[tuple[str, dict[str, Any]]] = []
    with dash.http.stream("GET", path, timeout=60) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        name = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                found.append((name, json.loads(line.removeprefix("data: "))))
    return found


def test_the_picker_lists_every_model_and_tool_in_groups(dash: Dashboard) -> None:
    shown = page(dash)
    pick = shown.one("select", id="pick")
    assert shown.label(pick) == "Model or tool"
    groups = {g.attrs["label"]: g for g in shown.find("optgroup")}
    assert set(groups) == {"Models", "Tools"}
    models = [o.attrs["value"] for o in shown.find("option") if groups["Models"] in o.parents]
    tools = [o.attrs["value"] for o in shown.find("option") if groups["Tools"] in o.parents]
    assert models == ["model:nanobanana", "model:nanobanana-pro", "model:veo3.1"]
    assert "tool:generate-image" in tools and "tool:text-to-speech" in tools and len(tools) == 10
    form = shown.one("form", id="playground-pick")
    assert form in pick.parents and form.attrs["method"] == "get"
    assert form.attrs["action"] == PAGE
    # no choice yet: the first model's form, chosen in the picker
    assert shown.selected(pick) == ["model:nanobanana"]
    assert shown.one("form", id="playground-form").attrs["data-endpoint"] == "/v1/generate"


def test_the_picker_answer_goes_to_the_choice(dash: Dashboard) -> None:
    response = dash.get(PAGE, pick="tool:upscale-image")
    assert response.status_code == 303
    assert response.headers["location"] == PAGE + "?tool=upscale-image"
    response = dash.get(PAGE, pick="model:veo3.1")
    assert response.headers["location"] == PAGE + "?model=veo3.1"
    assert dash.get(PAGE, pick="nonsense").status_code == 400


def test_a_models_form_is_made_from_its_schema(dash: Dashboard) -> None:
    shown = page(dash, model="nanobanana")
    form = shown.one("form", id="playground-form")
    assert (form.attrs["data-endpoint"], form.attrs["data-task-path"]) == (
        "/v1/generate",
        "/v1/tasks/",
    )
    hidden = shown.one("input", name="model")
    assert (hidden.attrs["type"], hidden.attrs["value"]) == ("hidden", "nanobanana")
    prompt = shown.field("prompt")
    assert prompt.tag == "textarea" and "required" in prompt.attrs
    assert shown.label(prompt) == "Prompt"
    assert prompt.attrs["maxlength"] == "2000"
    hint = shown.one(id=prompt.attrs["aria-describedby"])
    assert "1 to 2000 characters" in hint.text
    for name, options, default in (
        ("aspect_ratio", ["16:9", "9:16"], "16:9"),
        ("resolution", ["1k", "2k", "4k"], "1k"),
    ):
        select = shown.field(name)
        assert select.tag == "select"
        assert shown.options(select) == options and shown.selected(select) == [default]
    outputs = shown.field("num_outputs")
    assert (outputs.attrs["type"], outputs.attrs["min"], outputs.attrs["max"]) == (
        "number",
        "1",
        "4",
    )
    assert (outputs.attrs["value"], outputs.attrs["data-kind"]) == ("1", "integer")
    urls = shown.field("image_urls")
    assert urls.tag == "textarea" and urls.attrs["data-kind"] == "lines"
    # the page follows the task itself; image models ignore a duration
    assert "webhook_url" not in shown.names() and "duration" not in shown.names()
    run = shown.one("button", id="playground-run")
    assert run.text.strip() == "Run" and run.attrs["type"] == "submit"
    assert shown.find(id="playground-status")[0].attrs["role"] == "status"
    assert shown.find(id="playground-error")[0].attrs["role"] == "alert"
    assert shown.find(id="playground-output")
    assert "needs JavaScript" in shown.one("noscript").text
    assert shown.one("script", src="/dashboard/static/playground.js")
    assert not [s for s in shown.find("script") if "src" not in s.attrs], "no inline script"


def test_a_video_model_takes_a_duration(dash: Dashboard) -> None:
    shown = page(dash, model="veo3.1")
    duration = shown.field("duration")
    assert (duration.attrs["min"], duration.attrs["max"], duration.attrs["value"]) == (
        "1",
        "60",
        "5",
    )
    assert shown.one("form", id="playground-form").attrs["data-output"] == "video"


def test_a_tools_form_has_its_fields(dash: Dashboard) -> None:
    shown = page(dash, tool="text-to-speech")
    form = shown.one("form", id="playground-form")
    assert form.attrs["data-endpoint"] == "/v1/tools/text-to-speech"
    assert form.attrs["data-task-path"] == "/v1/tools/executions/"
    assert form.attrs["data-output"] == "audio"
    text = shown.field("ttsText")
    assert text.tag == "textarea" and "required" in text.attrs
    speed = shown.field("voiceSpeed")
    assert (speed.attrs["type"], speed.attrs["data-kind"], speed.attrs["step"]) == (
        "number",
        "number",
        "any",
    )
    assert float(speed.attrs["min"]) == 0.5 and float(speed.attrs["max"]) == 4
    expand = shown.field("autoExpandPronunciationReplacements")
    assert expand.attrs["type"] == "checkbox" and "checked" not in expand.attrs
    replacements = shown.field("pronunciationReplacements")
    assert replacements.tag == "textarea" and replacements.attrs["data-kind"] == "json"
    voice = shown.field("voiceId")
    voices = shown.options(shown.one("datalist", id=voice.attrs["list"]))
    assert "vg_voic_8ybhriiygfv" in voices  # Ava, the first local voice
    assert shown.names()[0] == "ttsText" and "numResults" in shown.names()
    assert "model" not in shown.names()

    image = page(dash, tool="generate-image")
    watermark = image.field("watermarkMode")
    assert image.options(watermark) == ["NONE", "VIDEO_GEN", "AUTO"]
    assert image.selected(watermark) == ["AUTO"]
    assert image.field("aspectRatio").attrs["data-kind"] == "json"
    assert image.field("imageFileIds").attrs["data-kind"] == "lines"


def test_an_unknown_model_or_tool_is_a_404_page(dash: Dashboard) -> None:
    for query in ({"model": "dall-e"}, {"tool": "make-coffee"}):
        response = dash.get(PAGE, **query)
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("text/html")
        assert next(iter(query.values())) in response.text
    assert dash.get(PAGE, model="nanobanana", tool="generate-image").status_code == 400


def test_signed_out_the_page_sends_to_sign_in(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url) as anonymous:
        response = anonymous.get(PAGE, params={"model": "nanobanana"})
    assert response.status_code == 303
    assert response.headers["location"].startswith("/dashboard/sign-in?next=")


def test_the_scripts_model_call_streams_and_reads_with_the_session(dash: Dashboard) -> None:
    page(dash, model="nanobanana")  # the CSRF token, as the page gives it to its script
    body = {"model": "nanobanana", "prompt": "a red fox", "num_outputs": 2, "aspect_ratio": "9:16"}
    assert dash.http.post("/v1/generate", json=body).status_code == 403  # no CSRF header
    response = dash.api("POST", "/v1/generate", json=body)
    assert response.status_code == 202, response.text
    task_id = response.json()["data"]["id"]
    seen = events(dash, f"/v1/tasks/{task_id}/events")
    names = [name for name, _ in seen]
    assert names[-1] == "completed" and set(names) <= {"pending", "processing", "completed"}
    assert seen[-1][1]["id"] == task_id
    task = dash.api("GET", f"/v1/tasks/{task_id}").json()["data"]
    assert task["status"] == "completed" and len(task["output"]["urls"]) == 2
    image = httpx.get(task["output"]["urls"][0], timeout=30)
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"


def test_the_scripts_refused_call_has_a_message(dash: Dashboard) -> None:
    page(dash, model="nanobanana")
    response = dash.api("POST", "/v1/generate", json={"model": "nanobanana", "prompt": ""})
    assert response.status_code == 400
    assert "prompt" in response.json()["error"]["message"]
    response = dash.api("POST", "/v1/tools/generate-image", json={"prompt": "x", "numResults": 0})
    assert response.status_code == 400 and "numResults" in response.json()["message"]


def test_the_scripts_tool_call_streams_and_its_file_is_then_suggested(dash: Dashboard) -> None:
    page(dash, tool="generate-image")
    response = dash.api("POST", "/v1/tools/generate-image", json={"prompt": "a blue kite"})
    assert response.status_code == 202, response.text
    execution_id = response.json()["toolExecutionId"]
    seen = events(dash, f"/v1/tools/executions/{execution_id}/events")
    assert seen[-1][0] == "succeeded" and seen[-1][1]["toolExecutionId"] == execution_id
    execution = dash.api("GET", f"/v1/tools/executions/{execution_id}").json()
    result = execution["results"][0]
    assert result["file"]["downloadSource"]["url"]
    # the made image is one the image tools' forms suggest
    shown = page(dash, tool="upscale-image")
    field = shown.field("imageStorageFileId")
    assert result["fileId"] in shown.options(shown.one("datalist", id=field.attrs["list"]))
    assert "list" not in page(dash, tool="upscale-video").field("videoStorageFileId").attrs
