"""The playground: try one of the server's models (the Egg API's ``POST /v1/generate``) or tools
(the VideoGen API's ``POST /v1/tools/{name}``) from a form made from its request schema, then
watch it run and see what it made.

::

    GET /dashboard/playground                   the first model's form (else the first tool's)
    GET /dashboard/playground?model=NAME        a model's form (an unknown one: 404 page)
    GET /dashboard/playground?tool=NAME         a tool's form (an unknown one: 404 page)
    GET /dashboard/playground?pick=model:NAME   the picker's answer (a GET form, so it works
                                                without JavaScript): 303 to ?model=NAME (or tool)

The schemas are those of the OpenAPI document the server publishes (``api.openapi``), built once
per app and kept, so the form says what the API takes; ``api.dashboard.schema_form`` makes its
fields. The page is rendered whole on the server; ``static/playground.js`` submits the form as the
API call (the session's cookie and CSRF header authorise it), follows the task's event stream
and shows the outputs. Without JavaScript the page still shows the form and says it needs it.

Fields left out of a model's form: ``model`` (the page's choice, sent as a hidden field),
``webhook_url`` (the page itself follows the task, and a webhook is the integration's, set up
with its secret on the Webhooks page) and, for an image model, ``duration`` (image models ignore
it). A tool's form has every field of its body. Fields naming a file, a voice or a presenter
suggest the account's ready files of that type, the voices and the presenters (a datalist).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from hatchery.api.context import services_of
from hatchery.api.dashboard import schema_form
from hatchery.api.dashboard.pages import account_page, redirect, render
from hatchery.api.openapi import price_rules, served_document
from hatchery.api.videogen.resources import speaking_voices
from hatchery.domain.catalog import Model
from hatchery.domain.files import USABLE, FileType
from hatchery.domain.money import format_cost
from hatchery.domain.tasks import TaskType
from hatchery.domain.tools import TOOLS
from hatchery.errors import BadRequest, NotFound, ServiceUnavailable
from hatchery.offline import avatar
from hatchery.services import Services
from hatchery.store import files as file_store

router = APIRouter()

Doc = dict[str, Any]
JSON = "application/json"
MODEL_SKIP = frozenset({"model", "webhook_url"})
IMAGE_MODEL_SKIP = MODEL_SKIP | {"duration"}
TOOL_LATE = ("numResults", "isOutputTemporary", "watermarkMode")  # every tool's: after its own
FILE_FIELD = re.compile(r"^(image|video|audio)(Storage)?FileId$")
SUGGESTED_FILES = 100


@dataclass(frozen=True)
class Choice:
    """What the page tries: a model or a tool, how to call it and what its form holds."""

    kind: str  # "model" or "tool"
    name: str
    endpoint: str  # where the form is POSTed
    task_path: str  # the task (or execution) is read at task_path + id, streamed at + "/events"
    output: str  # "image", "video" or "audio"
    title: str
    about: tuple[tuple[str, bool], ...]
    price: str
    fields: list[schema_form.Field]
    suggestions: dict[str, list[tuple[str, str]]] = field(default_factory=dict)


def document(request: Request) -> Doc:
    """The server's OpenAPI document, built on first use and kept (as ``GET /openapi.json``'s)."""
    services = services_of(request)
    return served_document(request.app.state, services.catalog, services.settings)


def _body(operation: Doc) -> tuple[Doc, Doc]:
    """An operation's JSON body schema and an example body (its examples merged, first first)."""
    media = operation["requestBody"]["content"][JSON]
    example: Doc = {}
    for named in reversed(list(media.get("examples", {}).values())):
        example |= named.get("value") or {}
    return media["schema"], example


def _price(model: Model) -> str:
    """Its price, and the catalog's rules that price some requests differently (as the OpenAPI
    document words them)."""
    return f"{format_cost(model.unit_price_micros)} per {model.unit}{price_rules(model)}"


def _first_sentence(text: str) -> str:
    found = re.match(r"(.+?\.)(\s|$)", text, re.DOTALL)
    return found.group(1) if found else text


def model_choice(doc: Doc, model: Model) -> Choice:
    schema, example = _body(doc["paths"]["/v1/generate"]["post"])
    video = model.type is TaskType.VIDEO
    fields = schema_form.form_fields(
        schema,
        doc["components"]["schemas"],
        skip=MODEL_SKIP if video else IMAGE_MODEL_SKIP,
        example=example,
    )
    kind = "video" if video else "image"
    return Choice(
        kind="model",
        name=model.name,
        endpoint="/v1/generate",
        task_path="/v1/tasks/",
        output=kind,
        title=model.name,
        about=(
            (f"{'A video' if video else 'An image'} model of the Egg API: ", False),
            ("POST /v1/generate", True),
            (".", False),
        ),
        price=_price(model),
        fields=fields,
    )


def tool_choice(doc: Doc, tool: Model) -> Choice:
    operation = doc["paths"][f"/v1/tools/{tool.name}"]["post"]
    schema, example = _body(operation)
    fields = schema_form.form_fields(
        schema, doc["components"]["schemas"], late=TOOL_LATE, example=example
    )
    return Choice(
        kind="tool",
        name=tool.name,
        endpoint=f"/v1/tools/{tool.name}",
        task_path="/v1/tools/executions/",
        output=TOOLS[tool.name].output.value,
        title=f"{operation['summary']} ({tool.name})",
        about=schema_form.hint_parts(_first_sentence(operation.get("description", ""))),
        price=_price(tool),
        fields=fields,
    )


def offered_tools(services: Services) -> list[Model]:
    """The catalog's tools, in the order the VideoGen API lists them."""
    return [services.catalog.tools[name] for name in TOOLS if name in services.catalog.tools]


def picker(services: Services, doc: Doc) -> list[tuple[str, list[tuple[str, str]]]]:
    """The picker's groups: (label, [(value, option text)])."""
    models = [(f"model:{m.name}", m.name) for m in services.catalog.models.values()]
    paths = doc["paths"]
    tools = [
        (f"tool:{t.name}", f"{paths[f'/v1/tools/{t.name}']['post']['summary']} ({t.name})")
        for t in offered_tools(services)
    ]
    return [
        (label, options) for label, options in (("Models", models), ("Tools", tools)) if options
    ]


def choose(services: Services, doc: Doc, model: str | None, tool: str | None) -> Choice | None:
    """The choice the query asks for (the first model, else tool, when it asks for none)."""
    if model and tool:
        raise BadRequest("Pick a model or a tool, not both")
    if tool:
        found = services.catalog.tools.get(tool)
        if found is None or tool not in TOOLS:
            raise NotFound(f"No such tool on this server: {tool}")
        return tool_choice(doc, found)
    if model:
        chosen = services.catalog.models.get(model)
        if chosen is None:
            raise NotFound(f"No such model on this server: {model}")
        return model_choice(doc, chosen)
    if services.catalog.models:
        return model_choice(doc, next(iter(services.catalog.models.values())))
    tools = offered_tools(services)
    return tool_choice(doc, tools[0]) if tools else None


async def _files(services: Services, account_id: str) -> dict[str, list[tuple[str, str]]]:
    """The account's ready files of each type, not archived (the latest first): (id, name)."""
    by_type: dict[str, list[tuple[str, str]]] = {}
    async with services.db.read() as conn:
        for kind in FileType:
            found, _ = await file_store.listing(conn, account_id, kind, False, SUGGESTED_FILES, 0)
            by_type[kind.value] = [(f.id, f.display_name) for f in found if f.status in USABLE]
    return by_type


async def _voices(services: Services) -> list[tuple[str, str]]:
    """The voices ``GET /v1/resources/tts-voices`` lists (none when they cannot be listed now:
    the field takes an id all the same)."""
    speech = services.catalog.tools.get("text-to-speech")
    speakers = speech.providers if speech else ("local",)
    try:
        listed = await speaking_voices(speakers, services.providers)
    except ServiceUnavailable:
        return []
    return [(v.voice_id, v.display_name) for v in listed if not v.is_deprecated]


async def suggestions(
    services: Services, account_id: str, fields: list[schema_form.Field]
) -> dict[str, list[tuple[str, str]]]:
    """What each field that names a file, a voice or a presenter may be: (value, label)."""
    names = {f.name for f in fields if f.control == "text"}
    found: dict[str, list[tuple[str, str]]] = {}
    file_fields = {n: m.group(1).upper() for n in names if (m := FILE_FIELD.match(n))}
    if file_fields:
        files = await _files(services, account_id)
        found |= {name: files[kind] for name, kind in file_fields.items()}
    if "voiceId" in names:
        found["voiceId"] = await _voices(services)
    if "avatarPresenterId" in names:
        found["avatarPresenterId"] = [(p.presenter_id, p.name) for p in avatar.presenters()]
    return {name: options for name, options in found.items() if options}


def _pick(value: str) -> Response:
    kind, _, name = value.partition(":")
    if kind not in ("model", "tool") or not name:
        raise BadRequest("pick must be model:NAME or tool:NAME")
    return redirect("/playground", **{kind: name})


@router.get("/playground")
async def playground(
    request: Request, model: str | None = None, tool: str | None = None, pick: str | None = None
) -> Response:
    services, signed = await account_page(request)
    if pick:
        return _pick(pick)
    doc = document(request)
    chosen = choose(services, doc, model, tool)
    if chosen is not None and chosen.kind == "tool":
        extra = await suggestions(services, signed.account.id, chosen.fields)
        chosen = replace(chosen, suggestions=extra)
    return render(
        request,
        "playground.html",
        signed,
        choice=chosen,
        groups=picker(services, doc),
        picked=f"{chosen.kind}:{chosen.name}" if chosen else "",
    )
