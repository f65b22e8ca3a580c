"""The OpenAPI document (``GET /openapi.json``, ``api.openapi`` and ``api.videogen.openapi``): it
documents every route and nothing else, each dialect's errors as its own body with the codes its
routes answer, the patterns in it take exactly what the server takes, and Schemathesis finds no
request on which a real server and the document disagree (every phase, every check)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import jsonschema_rs
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from pydantic import TypeAdapter, ValidationError

from hatchery.api import cursor, watch
from hatchery.api import openapi as openapi_module
from hatchery.api import openapi_schemas as wire
from hatchery.api.app import create_app
from hatchery.api.openapi import openapi_document
from hatchery.api.videogen import files as videogen_files
from hatchery.api.videogen import openapi as videogen
from hatchery.api.videogen import openapi_tools as videogen_tools
from hatchery.api.videogen import openapi_webhooks as videogen_hooks
from hatchery.api.videogen import playback, resources
from hatchery.api.videogen import tools as videogen_tool_routes
from hatchery.api.videogen import webhooks as videogen_webhook_routes
from hatchery.api.videogen.auth import LIMITS, Group
from hatchery.api.videogen.errors import ANSWERS, MISSING_KEY
from hatchery.api.videogen.present import EXECUTION_STATUS
from hatchery.api.videogen.schemas import (
    TOOL_BODIES,
    CreateFileUpload,
    CreateWebhookEndpoint,
    TextToSpeech,
)
from hatchery.domain.catalog import TOOL_PRICES, Catalog
from hatchery.domain.files import (
    FileStatus,
    FileType,
    Scope,
    SourceStatus,
    is_file_id,
    is_playback_id,
)
from hatchery.domain.keys import new_id
from hatchery.domain.tasks import EGG_TYPES, TaskStatus
from hatchery.domain.tools import TOOLS, is_execution_id
from hatchery.domain.webhooks import (
    SUBSCRIBABLE,
    TASK_EVENTS,
    TEST_EVENT,
    is_endpoint_id,
    new_endpoint_id,
    new_endpoint_secret,
    new_message_id,
)
from hatchery.errors import BadRequest, HatcheryError, NotAllowed
from hatchery.net.guard import URLRefused, check_url_syntax
from hatchery.offline import avatar, speech
from hatchery.services import Services
from hatchery.settings import Settings
from hatchery.storage.local import check_key
from hatchery.store import endpoints as endpoint_store
from hatchery.store import outbox
from tests.files_helpers import create_upload, mp4, png, wait_for_file
from tests.helpers import (
    LocalHTTPServer,
    ServerProcess,
    create_account,
    free_port,
    wait_for_task,
)
from tests.tools_helpers import wait_for_execution

# Hypothesis keeps caches (Unicode tables; constants of the local modules, read when the tests are
# collected, before any fixture) in its home directory: here one under the system's temp dir, not
# the checkout's .hypothesis/. The fuzz run's Schemathesis uses it too.
HYPOTHESIS_HOME = Path(tempfile.gettempdir()) / "hatchery-tests-hypothesis"
set_hypothesis_home_dir(HYPOTHESIS_HOME)

ROOT = Path(__file__).resolve().parents[2]
ST = str(Path(sys.executable).with_name("st"))  # Schemathesis's command, installed beside us
CONFIG = str(ROOT / "tests" / "schemathesis.toml")
DOC_ROUTES = {"/openapi.json", "/docs"}
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
V1_ERRORS = {"401", "403", "429", "500", "503"}
examples = settings(max_examples=300, database=None, deadline=None, derandomize=True)

# The object URLs: their errors are the VideoGen API's body (api.storage, api.videogen.playback).
OBJECT_URLS = ("/storage/", "/public/", "/hls/", "/embed/")
# The status of each code of the VideoGen API: its error table (api.videogen.errors), but
# NotAllowed's, which answers with its reason instead, and the two codes it writes itself:
# missing_api_key, and internal_error for an error the table leaves out.
VIDEOGEN_STATUS = {
    code: status for kind, (status, code) in ANSWERS.items() if kind is not NotAllowed
} | {
    MISSING_KEY: 401,
    "internal_error": 500,
    "watermark_removal_not_allowed": 403,
}
# What the object URLs answer, as api.storage and api.videogen.playback write it out.
OBJECT_STATUS = {
    "invalid_signature": 403,
    "not_found": 404,
    "upload_already_received": 409,
    "file_too_large": 413,
    "upload_incomplete": 400,
    "service_unavailable": 503,
}
# The contract's rate-limit group of each VideoGen operation that takes a key (api.videogen's
# routes call `caller` with these; the answers' X-RateLimit-Limit is checked against them below).
TOOL_OPERATIONS = {tool.operation_id: tool.name for tool in videogen_tools.TOOL_DOCS}
GROUPS = {
    "listFiles": Group.FILES_READ,
    "getStorageFile": Group.FILES_READ,
    "hydrateFile": Group.FILES_HYDRATE,
    "createFileUpload": Group.FILES_UPLOAD,
    "searchFiles": Group.FILES_SEARCH,
    "archiveFile": Group.FILES_CHANGE,
    "enablePublicPreview": Group.FILES_CHANGE,
    "disablePublicPreview": Group.FILES_CHANGE,
    **dict.fromkeys(TOOL_OPERATIONS, Group.TOOLS),
    "listToolExecutions": Group.EXECUTION,
    "getToolExecution": Group.EXECUTION,
    "streamToolExecutionEvents": Group.EXECUTION,
    "cancelToolExecution": Group.CANCEL,
    "listTtsVoices": Group.RESOURCES,
    "listAvatarPresenters": Group.RESOURCES,
    "createWebhookEndpoint": Group.WEBHOOKS_CHANGE,
    "listWebhookEndpoints": Group.WEBHOOKS_READ,
    "getWebhookEndpoint": Group.WEBHOOKS_READ,
    "deleteWebhookEndpoint": Group.WEBHOOKS_CHANGE,
    "enableWebhookEndpoint": Group.WEBHOOKS_CHANGE,
    "testWebhookEndpoint": Group.WEBHOOKS_SEND,
    "listWebhookDeliveries": Group.WEBHOOKS_READ,
    "getWebhookDelivery": Group.WEBHOOKS_READ,
    "redeliverWebhookDelivery": Group.WEBHOOKS_SEND,
}
# The VideoGen API's routes that take no key (the presenters' pictures and previews).
PUBLIC_VIDEOGEN = {"getAvatarPresenterAsset"}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    """The app in this process (no lifespan: nothing here touches the database)."""
    data_dir = tmp_path_factory.mktemp("openapi")
    services = Services.build(Settings(data_dir=data_dir, rate_limit="off", rate_limit_ip="off"))
    yield create_app(services, run_workers=False)
    asyncio.run(services.close())


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return openapi_document(Catalog.load(), Settings())


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            yield path, method.upper(), operation


def dialect(path: str, operation: dict[str, Any]) -> str:
    """``videogen`` for the VideoGen API's operations, ``objects`` for the object URLs (both
    answer errors as ``{"message", "code"}``), ``egg`` for the Egg API's (the envelope)."""
    if set(videogen.DIALECT_TAGS) & set(operation["tags"]):
        return "videogen"
    return "objects" if path.startswith(OBJECT_URLS) else "egg"


def of_dialect(doc: dict[str, Any], name: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [(p, m, op) for p, m, op in operations(doc) if dialect(p, op) == name]


def resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        _, kind, name = node["$ref"].removeprefix("#/").split("/")
        node = doc["components"][kind][name]
    return node


def validator(doc: dict[str, Any], schema: dict[str, Any]) -> Any:
    """A JSON Schema validator for a schema of the document (its $refs resolved in it)."""
    return jsonschema_rs.validator_for({"allOf": [schema], "components": doc["components"]})


# --------------------------------------------------------------------------- routes and serving


async def test_the_document_and_its_page_are_served_without_a_key(
    client: httpx.AsyncClient,
) -> None:
    served = await client.get("/openapi.json")
    assert served.status_code == 200
    assert served.headers["content-type"] == "application/json"
    assert served.json()["openapi"] == "3.1.0"
    assert served.headers["x-request-id"]
    page = await client.get("/docs")  # the browser loads Swagger UI's assets; the test does not
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "/openapi.json" in page.text


async def test_the_document_is_built_once_per_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[object] = []

    def build(*args: Any) -> dict[str, Any]:
        built.append(args)
        return openapi_document(*args)

    monkeypatch.setattr(openapi_module, "openapi_document", build)
    services = Services.build(Settings(data_dir=tmp_path))
    transport = httpx.ASGITransport(app=create_app(services, run_workers=False))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answers = [await client.get("/openapi.json") for _ in range(3)]
    finally:
        await services.close()
    assert len(built) == 1
    assert answers[0].content == answers[2].content


def test_every_route_is_documented_with_its_methods_and_nothing_else(
    app: FastAPI, doc: dict[str, Any]
) -> None:
    served = {
        (route.path_format, method)  # /storage/{key:path} is /storage/{key}
        for route in iter_route_contexts(app.routes)
        if route.path not in DOC_ROUTES
        and not route.path.startswith("/dashboard")  # the dashboard's pages: HTML, not the API
        for method in route.methods or ()
    }
    assert {(f"/v1/tools/{tool}", "POST") for tool in TOOLS} <= served
    documented = {(path, method) for path, method, _ in operations(doc)}
    assert served == documented


SESSION_OR_KEY = [{"bearerAuth": []}, {"dashboardSession": []}]


def test_v1_operations_take_the_bearer_key_and_list_the_common_errors(
    doc: dict[str, Any],
) -> None:
    session = doc["components"]["securitySchemes"]["dashboardSession"]
    assert (session["type"], session["in"], session["name"]) == (
        "apiKey",
        "cookie",
        "hatchery_session",
    )
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "hk_ followed by 40 letters and digits",
        "description": doc["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    for path, method, operation in operations(doc):
        api = path.startswith(("/v1/", "/admin/v1/"))
        if api and operation["operationId"] not in PUBLIC_VIDEOGEN:
            assert operation["security"] == SESSION_OR_KEY, (method, path)
            assert set(operation["responses"]) >= V1_ERRORS, (method, path)
        else:
            assert operation["security"] == [], (method, path)
        if api:  # the client IP's limit counts every /v1 and /admin/v1 request
            retry = operation["responses"]["429"]["headers"]["Retry-After"]
            assert retry["required"] is True


def test_the_dialects_are_told_apart(doc: dict[str, Any]) -> None:
    egg = {path for path, _, _ in of_dialect(doc, "egg")}
    assert {"/v1/generate", "/v1/tasks/{task_id}", "/files/{token}/{name}", "/healthz"} <= egg
    assert not any(path.startswith(("/v1/files", *OBJECT_URLS)) for path in egg)
    videogen_ids = {op["operationId"] for _, _, op in of_dialect(doc, "videogen")}
    assert videogen_ids == set(GROUPS) | PUBLIC_VIDEOGEN
    assert {(path, method) for path, method, _ in of_dialect(doc, "objects")} == {
        ("/storage/{key}", "GET"),
        ("/storage/{key}", "HEAD"),
        ("/storage/uploads/{file_id}", "PUT"),
        ("/public/{playbackId}/index.m3u8", "GET"),
        ("/public/{playbackId}/{segment}", "GET"),
        ("/hls/{fileId}/index.m3u8", "GET"),
        ("/embed/{playbackId}", "GET"),
        ("/embed/player/hls.min.js", "GET"),
    }


def test_every_egg_error_answer_is_the_envelope_with_its_codes(doc: dict[str, Any]) -> None:
    codes = set(resolve(doc, {"$ref": "#/components/schemas/Error"})["properties"]["code"]["enum"])
    for path, method, operation in of_dialect(doc, "egg"):
        for status, answer in operation["responses"].items():
            if int(status) < 400:
                continue
            media = answer["content"]["application/json"]
            assert media["schema"]["allOf"] == [{"$ref": "#/components/schemas/ErrorResponse"}]
            enum = media["schema"]["properties"]["error"]["properties"]["code"]["enum"]
            assert enum and set(enum) <= codes, (method, path, status)
            assert all(f"`{code}`" in answer["description"] for code in enum)
            assert "X-Request-ID" in answer["headers"]
            validator(doc, media["schema"]).validate(media["example"])


# Errors answered as plain text by the HTTP layer (Starlette's range handling), not by a route.
PLAIN_ERRORS = {("/storage/{key}", "GET", "400"), ("/storage/{key}", "GET", "416")}


def test_every_videogen_error_answer_is_its_body_with_codes_the_server_answers(
    doc: dict[str, Any],
) -> None:
    schema = resolve(doc, {"$ref": "#/components/schemas/VideoGenError"})
    assert schema["required"] == ["message", "code"]
    assert set(schema["properties"]["code"]["enum"]) == set(VIDEOGEN_STATUS) | set(OBJECT_STATUS)
    seen: set[tuple[str, str]] = set()
    for path, method, operation in operations(doc):
        kind = dialect(path, operation)
        if kind == "egg":
            continue
        table = VIDEOGEN_STATUS if kind == "videogen" else OBJECT_STATUS
        for status, answer in operation["responses"].items():
            if int(status) < 400:
                continue
            assert "X-Request-ID" in answer["headers"], (method, path, status)
            if method == "HEAD" or (path, method, status) in PLAIN_ERRORS:
                assert "application/json" not in answer.get("content", {}), (method, path)
                continue
            assert set(answer["content"]) == {"application/json"}, (method, path, status)
            media = answer["content"]["application/json"]
            assert media["schema"]["allOf"] == [{"$ref": "#/components/schemas/VideoGenError"}]
            enum = media["schema"]["properties"]["code"]["enum"]
            assert enum, (method, path, status)
            for code in enum:  # a code the server answers, with this status
                assert table.get(code) == int(status), (method, path, status, code)
                assert f"`{code}`" in answer["description"]
                seen.add((kind, code))
            validator(doc, media["schema"]).validate(media["example"])
            assert media["example"]["code"] in enum
    assert {code for kind, code in seen if kind == "objects"} == set(OBJECT_STATUS)
    assert {code for kind, code in seen if kind == "videogen"} == set(VIDEOGEN_STATUS)


def test_videogen_operations_take_the_bearer_key_and_say_their_hourly_limits(
    doc: dict[str, Any],
) -> None:
    headers = {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"}
    tags = {"/v1/files": "VideoGen: Files", "/v1/tools": "VideoGen: Tools"}
    tags["/v1/resources"] = "VideoGen: Resources"
    tags["/v1/webhooks"] = "VideoGen: Webhooks"
    for path, method, operation in of_dialect(doc, "videogen"):
        assert operation["tags"] == [tags["/".join(path.split("/")[:3])]], (method, path)
        if operation["operationId"] in PUBLIC_VIDEOGEN:
            continue
        assert operation["security"] == SESSION_OR_KEY, (method, path)
        group = GROUPS[operation["operationId"]]
        amount = int(LIMITS[group].removesuffix("/hour"))
        assert (
            f"{amount:,} requests per hour per API key (group `{group}`"
            in (operation["description"])
        )
        for status, answer in operation["responses"].items():
            assert headers <= set(answer["headers"]), (method, path, status)
            for name in headers:
                assert answer["headers"][name] == {"$ref": f"#/components/headers/{name}"}
        retry = operation["responses"]["429"]["headers"]["Retry-After"]
        assert retry["required"] is True
    for path, method, operation in of_dialect(doc, "objects"):
        assert operation["security"] == [] and operation["tags"] == ["Files"], (method, path)


def test_the_contract_error_codes_per_operation(doc: dict[str, Any]) -> None:
    def codes(path: str, method: str, status: str) -> list[str]:
        answer = doc["paths"][path][method]["responses"][status]
        schema = answer["content"]["application/json"]["schema"]
        enum: list[str] = schema["properties"]["error"]["properties"]["code"]["enum"]
        return enum

    assert codes("/v1/generate", "post", "400") == ["VALIDATION_ERROR", "BAD_REQUEST"]
    assert codes("/v1/generate", "post", "403") == ["FORBIDDEN", "INSUFFICIENT_BALANCE"]
    assert codes("/v1/generate", "post", "409") == ["CONFLICT"]
    assert codes("/v1/generate", "post", "422") == ["IDEMPOTENCY_MISMATCH"]
    for status in ("408", "413"):
        assert codes("/v1/generate", "post", status) == ["BAD_REQUEST"]
    assert codes("/v1/tasks/{task_id}/cancel", "post", "409") == ["CONFLICT"]
    hooks = "/v1/tasks/{task_id}/webhooks"
    assert codes(hooks, "get", "404") == ["NOT_FOUND"]
    assert codes(f"{hooks}/{{delivery_id}}/redeliver", "post", "404") == ["NOT_FOUND"]
    assert codes(f"{hooks}/{{delivery_id}}/redeliver", "post", "409") == ["CONFLICT"]
    for path in ("/v1/usage", "/v1/usage/summary", "/v1/account"):
        assert codes(path, "get", "404") == ["NOT_FOUND"]


def test_the_videogen_error_codes_per_operation(doc: dict[str, Any]) -> None:
    places = {op["operationId"]: (p, m.lower()) for p, m, op in of_dialect(doc, "videogen")}
    places["putFileUpload"] = ("/storage/uploads/{file_id}", "put")
    places["getSignedObject"] = ("/storage/{key}", "get")
    places["getPrivatePlaylist"] = ("/hls/{fileId}/index.m3u8", "get")

    def codes(operation_id: str, status: str) -> list[str] | None:
        path, method = places[operation_id]
        answer = doc["paths"][path][method]["responses"].get(status)
        if answer is None:
            return None
        schema = answer["content"]["application/json"]["schema"]
        enum: list[str] = schema["properties"]["code"]["enum"]
        return enum

    by_id = {"getStorageFile", "hydrateFile", "archiveFile", "disablePublicPreview"}
    changes = {"archiveFile", "enablePublicPreview", "disablePublicPreview"}
    for operation_id in GROUPS:
        assert codes(operation_id, "401") == ["missing_api_key", "invalid_api_key"]
        assert codes(operation_id, "429") == ["rate_limited"]
        assert codes(operation_id, "500") == ["internal_error"]
        assert codes(operation_id, "503") == ["service_unavailable"]
    for operation_id in (op for op, group in GROUPS.items() if group.startswith("files")):
        assert codes(operation_id, "403") == ["forbidden"]  # the tools': see their own test
        assert codes(operation_id, "409") == (["conflict"] if operation_id in changes else None)
        if operation_id in by_id:
            assert codes(operation_id, "400") == ["invalid_id"]
            assert codes(operation_id, "404") == ["not_found"]
        elif operation_id != "enablePublicPreview":  # no file named in the request
            assert codes(operation_id, "400") == ["invalid_parameters"]
            assert codes(operation_id, "404") is None
    assert codes("enablePublicPreview", "400") == ["invalid_id", "invalid_parameters"]
    assert codes("enablePublicPreview", "404") == ["not_found"]
    assert codes("putFileUpload", "400") == ["upload_incomplete"]
    assert codes("putFileUpload", "409") == ["upload_already_received"]
    assert codes("putFileUpload", "413") == ["file_too_large"]
    for operation_id in ("putFileUpload", "getSignedObject", "getPrivatePlaylist"):
        assert codes(operation_id, "403") == ["invalid_signature"]


# What each webhook operation answers besides the errors of every VideoGen operation: its success
# and the codes of its 400, 404 and 409 (api.videogen.webhooks).
WEBHOOK_CODES: dict[str, tuple[str, list[str] | None, list[str] | None, list[str] | None]] = {
    "createWebhookEndpoint": ("201", ["invalid_parameters"], None, None),
    "listWebhookEndpoints": ("200", None, None, None),
    "getWebhookEndpoint": ("200", ["invalid_id"], ["not_found"], None),
    "deleteWebhookEndpoint": ("204", ["invalid_id"], ["not_found"], None),
    "enableWebhookEndpoint": ("200", ["invalid_id"], ["not_found"], None),
    "testWebhookEndpoint": ("202", ["invalid_id"], ["not_found"], ["conflict"]),
    "listWebhookDeliveries": ("200", ["invalid_parameters", "invalid_id"], None, None),
    "getWebhookDelivery": ("200", ["invalid_id"], ["not_found"], None),
    "redeliverWebhookDelivery": ("202", ["invalid_id"], ["not_found"], ["conflict"]),
}


def error_codes(responses: dict[str, Any], status: str) -> list[str] | None:
    """The codes of a VideoGen operation's error answer of ``status``; None if it has none."""
    answer = responses.get(status)
    if answer is None:
        return None
    enum: list[str] = answer["content"]["application/json"]["schema"]["properties"]["code"]["enum"]
    return enum


def test_the_webhook_error_codes_per_operation(doc: dict[str, Any]) -> None:
    places = {op["operationId"]: op for _, _, op in of_dialect(doc, "videogen")}
    assert set(WEBHOOK_CODES) == {op for op, group in GROUPS.items() if "webhooks" in group}
    for operation_id, (success, bad, missing, conflict) in WEBHOOK_CODES.items():
        responses = places[operation_id]["responses"]
        expected = {success, "400", "404", "409"} - {
            status
            for status, codes_of in (("400", bad), ("404", missing), ("409", conflict))
            if codes_of is None
        }
        assert set(responses) == expected | V1_ERRORS, operation_id
        found = {status: error_codes(responses, status) for status in ("400", "404", "409")}
        assert found == {"400": bad, "404": missing, "409": conflict}, operation_id
        assert error_codes(responses, "403") == ["forbidden"]
        assert error_codes(responses, "503") == ["service_unavailable"]
        assert ("content" in responses[success]) == (success != "204"), operation_id


def test_the_tool_error_codes_per_operation(doc: dict[str, Any]) -> None:
    """Each tool's codes, as what its body names makes them (read from the server's models)."""

    def codes(path: str, method: str, status: str) -> list[str] | None:
        answer = doc["paths"][path][method]["responses"].get(status)
        if answer is None:
            return None
        enum: list[str] = answer["content"]["application/json"]["schema"]["properties"]["code"][
            "enum"
        ]
        return enum

    for tool, model in TOOL_BODIES.items():
        path, fields = f"/v1/tools/{tool}", set(model.model_fields)
        files = any(re.search("File(Id|Ids)$", name) for name in fields)
        named_ids = files or bool({"voiceId", "avatarPresenterId"} & fields)
        assert (
            codes(path, "post", "400")
            == ["invalid_parameters"] + ["invalid_id"] * named_ids + ["invalid_file_type"] * files
        ), tool
        assert codes(path, "post", "402") == ["insufficient_credits"]
        marked = "watermarkMode" in fields
        assert (
            codes(path, "post", "403") == ["forbidden"] + ["watermark_removal_not_allowed"] * marked
        )
        assert codes(path, "post", "404") == ["not_found"]
        assert codes(path, "post", "408") == ["request_timeout"]
        assert codes(path, "post", "409") == ["file_not_ready"] * files + ["conflict"], tool
        assert codes(path, "post", "413") == ["file_too_large"]
        assert codes(path, "post", "422") == ["idempotency_key_reused"]
        assert set(doc["paths"][path]["post"]["responses"]) == {
            "202", "400", "401", "402", "403", "404", "408", "409", "413", "422", "429", "500",
            "503",
        }  # fmt: skip
    one = "/v1/tools/executions/{toolExecutionId}"
    for path, method in ((one, "get"), (f"{one}/cancel", "post")):
        assert codes(path, method, "400") == ["invalid_id"]
        assert codes(path, method, "404") == ["not_found"]
    assert codes(f"{one}/events", "get", "400") == ["invalid_id", "invalid_parameters"]
    assert codes("/v1/tools/executions", "get", "400") == ["invalid_parameters"]
    assert codes("/v1/tools/executions", "get", "404") is None
    assert codes("/v1/resources/tts-voices", "get", "400") == ["invalid_parameters"]
    assert codes("/v1/resources/avatar-presenters", "get", "400") is None
    asset = doc["paths"]["/v1/resources/avatar-presenters/{presenterId}/{asset}"]["get"]
    assert set(asset["responses"]) == {"200", "304", "404", "429", "500"}


def test_the_enums_are_the_servers(doc: dict[str, Any]) -> None:
    def subclasses(kind: type[HatcheryError]) -> set[type[HatcheryError]]:
        return {kind}.union(*(subclasses(sub) for sub in kind.__subclasses__()))

    def enum(schema: str, field: str) -> set[str]:
        return set(doc["components"]["schemas"][schema]["properties"][field]["enum"])

    assert enum("Error", "code") == {kind.code for kind in subclasses(HatcheryError)}
    assert enum("Task", "status") == {status.value for status in TaskStatus}
    assert enum("Task", "type") == {kind.value for kind in EGG_TYPES}  # no tool executions
    tool_units = set(TOOL_PRICES.values())  # a tool execution's usage is the account's too
    assert enum("UsageRecord", "unit") == {kind.unit for kind in EGG_TYPES} | tool_units
    statuses = resolve(doc, {"$ref": "#/components/parameters/Status"})["schema"]["enum"]
    assert set(statuses) == {status.value for status in TaskStatus}

    def nullable(schema: str, field: str) -> set[str]:
        prop = doc["components"]["schemas"][schema]["properties"][field]
        return set(next(s for s in prop["anyOf"] if s.get("type") == "string")["enum"])

    shown = set(FileStatus) - {FileStatus.STORED}  # shown as processing (files.library.read)
    assert enum("StorageFile", "status") == {status.value for status in shown}
    assert enum("StorageFile", "scope") == {scope.value for scope in Scope}
    assert nullable("StorageFile", "type") == {kind.value for kind in FileType}
    assert nullable("CreateFileUploadRequest", "type") == {kind.value for kind in FileType}
    assert enum("FileSource", "status") == {status.value for status in SourceStatus}
    assert enum("ExecutedTool", "status") == set(EXECUTION_STATUS.values())
    assert enum("ExecutedTool", "toolType") == {tool.tool_type for tool in TOOLS.values()}
    assert enum("ToolSuccessResult", "type") == {kind.value for kind in FileType}
    assert enum("TtsVoice", "displayGender") >= {voice.gender for voice in speech.voices()}
    genders = {presenter.gender for presenter in avatar.presenters()}
    assert enum("AvatarPresenter", "displayableGender") >= genders
    webhook_enums_are_the_servers(doc)
    assets = doc["paths"]["/v1/resources/avatar-presenters/{presenterId}/{asset}"]["get"]
    asset = next(p for p in assets["parameters"] if p["name"] == "asset")
    assert asset["schema"]["enum"] == list(resources.ASSETS)
    assert set(assets["responses"]["200"]["content"]) == {t for t, _ in resources.ASSETS.values()}


def webhook_enums_are_the_servers(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]

    def enum(schema: str, field: str) -> list[str]:
        prop = schemas[schema]["properties"][field]
        found: list[str] = (prop.get("items") or prop)["enum"]
        return found

    statuses = {outbox.PENDING, outbox.DELIVERED, outbox.FAILED, outbox.CANCELLED}
    for name in ("WebhookEndpoint", "NewWebhookEndpoint"):
        assert enum(name, "events") == list(SUBSCRIBABLE)
        assert set(enum(name, "status")) == {endpoint_store.ENABLED, endpoint_store.DISABLED}
    assert enum("CreateWebhookEndpointRequest", "events") == list(SUBSCRIBABLE)
    assert TEST_EVENT not in SUBSCRIBABLE
    assert set(enum("WebhookDelivery", "event")) == {*SUBSCRIBABLE, TEST_EVENT}
    assert set(enum("WebhookDelivery", "status")) == statuses
    assert set(enum("TaskWebhook", "event")) == set(TASK_EVENTS)
    assert set(enum("TaskWebhook", "status")) == statuses


def test_a_submit_links_to_the_task_operations(doc: dict[str, Any]) -> None:
    operation_ids = {op["operationId"] for _, _, op in operations(doc)}
    for status in ("200", "202"):
        links = doc["paths"]["/v1/generate"]["post"]["responses"][status]["links"]
        targets = {link["operationId"] for link in links.values()}
        assert (
            targets
            == {
                "getTask",
                "cancelTask",
                "streamTaskEvents",
                "listTaskWebhooks",
            }
            <= operation_ids
        )
        for link in links.values():
            assert link["parameters"] == {"task_id": "$response.body#/data/id"}


def test_the_documented_examples_fit_their_schemas(doc: dict[str, Any]) -> None:
    seen = 0
    for _, _, operation in operations(doc):
        bodies = operation.get("requestBody", {}).get("content", {}).values()
        answers = (
            m for a in operation["responses"].values() for m in a.get("content", {}).values()
        )
        for media in (*bodies, *answers):
            check = validator(doc, media["schema"])
            values = [e["value"] for e in media.get("examples", {}).values()]
            for value in [*values, *([media["example"]] if "example" in media else [])]:
                if isinstance(value, str):  # the event stream's, a playlist
                    continue
                check.validate(value)
                seen += 1
        for parameter in map(lambda p: resolve(doc, p), operation.get("parameters", [])):
            if "example" in parameter:
                validator(doc, parameter["schema"]).validate(parameter["example"])
                seen += 1
    assert seen > 60


def test_the_document_follows_the_catalog_and_the_settings(tmp_path: Path) -> None:
    catalog_file = tmp_path / "catalog.toml"
    catalog_file.write_text(
        '[models.pixel]\ntype = "image"\nprice_per_output = "0.5"\nproviders = ["local"]\n'
        '[[models.pixel.prices]]\nwhen = { resolution = "4k" }\nprice_per_output = "2"\n'
    )
    custom = Settings(
        data_dir=tmp_path,
        max_body_bytes=1000,
        rate_limit="5/second",
        rate_limit_ip="off",
        webhook_max_retries=2,
        webhook_backoff_base=30,
        webhook_timeout=12,
    )
    doc = openapi_document(Catalog.load(catalog_file), custom)
    request = doc["components"]["schemas"]["GenerateRequest"]
    assert request["properties"]["model"]["enum"] == ["pixel"]
    generate = doc["paths"]["/v1/generate"]["post"]
    assert (
        "| `pixel` | image_generate | $0.5000 per output image; $2.0000 when resolution = 4k |"
        in (generate["description"])
    )
    assert "1000 bytes" in generate["responses"]["413"]["description"]
    assert "per API key (5/second" in doc["info"]["description"]
    hooks = doc["paths"]["/v1/tasks/{task_id}/webhooks"]["get"]["description"]
    assert "within 12 s" in hooks and "retried 2 times, 30 s and 2 min after" in hooks


def test_the_videogen_part_follows_the_catalog_and_the_settings(tmp_path: Path) -> None:
    """Each tool's price from the catalog (when ``api.openapi`` passes it), each group's limit
    from HATCHERY_VIDEOGEN_RATE_LIMITS, the body limit and the temporary files' hours."""
    catalog_file = tmp_path / "catalog.toml"
    catalog_file.write_text(
        '[models.pixel]\ntype = "image"\nprice_per_output = "0.5"\n'
        '[tools.text-to-speech]\nprice_per_character = "0.001"\n'
    )
    custom = Settings(
        data_dir=tmp_path,
        max_body_bytes=1000,
        temporary_file_hours=48,
        videogen_rate_limits="tools=10/minute,execution=off",
        webhook_endpoint_schedule="1m, 90s,2h",
        webhook_endpoint_timeout=7,
        allow_private_urls=True,
    )
    part = videogen.document(custom, Catalog.load(catalog_file))
    speak = part["paths"]["/v1/tools/text-to-speech"]["post"]
    assert "$0.0010 per character (providers, in order: local)" in speak["description"]
    assert "10 requests per minute per API key (group `tools`" in speak["description"]
    assert "1000 bytes" in speak["requestBody"]["description"]
    assert "1000 bytes" in speak["responses"]["413"]["description"]
    image = part["paths"]["/v1/tools/generate-image"]["post"]
    assert "does not offer it" in image["description"]
    listed = part["paths"]["/v1/tools/executions"]["get"]["description"]
    assert "none per API key for this group (`execution`" in listed
    cancel = part["paths"]["/v1/tools/executions/{toolExecutionId}/cancel"]["post"]
    assert "250 requests per hour per API key (group `cancel`)," in cancel["description"]
    temporary = part["components"]["schemas"]["ImageAssetRequest"]["properties"]
    assert "48 hours" in temporary["isOutputTemporary"]["description"]
    create = part["paths"]["/v1/webhooks/endpoints"]["post"]["description"]
    assert "within 7 s" in create and "retried 3 times, 1 min, 90 s and 2 h after" in create
    url = part["components"]["schemas"]["CreateWebhookEndpointRequest"]["properties"]["url"]
    assert ecma(url["pattern"]).search("http://10.0.0.1/hook")  # where private URLs are allowed


def test_the_examples_name_real_voices_and_presenters(doc: dict[str, Any]) -> None:
    voices = {voice.voice_id for voice in speech.voices()}
    presenters = {presenter.presenter_id for presenter in avatar.presenters()}
    assert videogen_tools.VOICE_EXAMPLE in voices
    assert videogen_tools.PRESENTER_EXAMPLE in presenters
    for voice_id in voices:
        assert ecma(videogen_tools.VOICE_ID).search(voice_id), voice_id
    for presenter_id in presenters:
        assert ecma(videogen_tools.PRESENTER_ID).search(presenter_id), presenter_id


def conforms(doc: dict[str, Any], path: str, response: httpx.Response) -> None:
    """``response`` is one the document describes for the operation at ``path``: a documented
    status and media type, a body of its schema, every required header, headers of their
    schemas."""
    method = response.request.method.lower()
    answer = doc["paths"][path][method]["responses"].get(str(response.status_code))
    assert answer is not None, f"{method} {path}: {response.status_code} is not documented"
    if "content" not in answer:  # HEAD, a redirect, an upload's 200
        assert not response.content, (method, path, response.status_code)
    else:
        media_type = response.headers["content-type"].split(";")[0]
        documented = media_type if media_type in answer["content"] else "*/*"
        assert documented in answer["content"], (path, response.status_code, media_type)
        if media_type == "application/json":
            validator(doc, answer["content"][media_type]["schema"]).validate(response.json())
    for name, header in answer["headers"].items():
        header = resolve(doc, header)
        if name.lower() not in response.headers:
            assert not header.get("required"), f"{path} {response.status_code}: no {name}"
            continue
        value: Any = response.headers[name]
        if header["schema"].get("type") == "integer":
            value = int(value)
        validator(doc, header["schema"]).validate(value)


async def test_rate_limited_answers_fit_the_document(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, rate_limit="off", rate_limit_ip="2/minute")
    services = Services.build(settings)
    doc = openapi_document(services.catalog, settings)
    transport = httpx.ASGITransport(app=create_app(services, run_workers=False))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answers = [await client.get("/v1/tasks") for _ in range(3)]
    finally:
        await services.close()
    assert [a.status_code for a in answers] == [401, 401, 429]
    for answer in answers:
        assert {"ratelimit-limit", "x-ratelimit-reset"} <= set(answer.headers)
        conforms(doc, "/v1/tasks", answer)


# --------------------------------------------------------------------------- 405


CONCRETE = {  # a value of each path parameter
    "{task_id}": "gen_abc123def456",
    "{token}": "abcdefghijklmnopqrst",
    "{name}": "0.png",
    "{fileId}": "vg_file_obLD1OX2eJCrEs0071Z4kA",
    "{file_id}": "vg_file_obLD1OX2eJCrEs0071Z4kA",
    "{playbackId}": "vg_play_Zm9vYmFyYmF6cXV4",
    "{segment}": "segment000.ts",
    "{key}": "outputs/abcdefghijklmnopqrst/0.png",
    "{toolExecutionId}": "vg_exec_Hk2LmP0qRsT5uVwXyZ1aBc",
    "{presenterId}": videogen_tools.PRESENTER_EXAMPLE,
    "{asset}": "image.png",
    "{endpointId}": videogen_hooks.ENDPOINT_EXAMPLE,
    "{deliveryId}": videogen_hooks.DELIVERY_EXAMPLE,
    "{delivery_id}": videogen_hooks.DELIVERY_EXAMPLE,
}


def concrete(path: str) -> str:
    for parameter, value in CONCRETE.items():
        path = path.replace(parameter, value)
    return path


def allowed_at(doc: dict[str, Any], url: str) -> list[str]:
    """The methods of every documented path that ``url`` matches: ``/v1/files/search`` is also
    ``/v1/files/{fileId}``, ``/storage/uploads/...`` also ``/storage/{key}`` (any depth)."""
    methods: set[str] = set()
    for path, item in doc["paths"].items():
        parts = re.split(r"(\{[^}]+\})", path)
        pattern = "".join(
            (".+" if part == "{key}" else "[^/]+") if part.startswith("{") else re.escape(part)
            for part in parts
        )
        if re.fullmatch(pattern, url):
            methods |= {method.upper() for method in item}
    return sorted(methods)


async def test_a_method_a_path_does_not_take_is_405_with_allow_and_the_envelope(
    client: httpx.AsyncClient, doc: dict[str, Any]
) -> None:
    """On every path; the Egg API's answer it in its envelope (the VideoGen API's: see the known
    server bugs below)."""
    for path, item in doc["paths"].items():
        url = concrete(path)
        allowed = allowed_at(doc, url)
        assert set(allowed) >= {method.upper() for method in item}
        for method in set(METHODS) - set(allowed):
            response = await client.request(method, url)
            assert response.status_code == 405, (method, path, response.text)
            assert response.headers["allow"] == ", ".join(allowed), (method, path)
            if method == "HEAD" or dialect(path, next(iter(item.values()))) != "egg":
                continue
            message = f"Method {method} is not allowed on {url}; use {' or '.join(allowed)}"
            assert response.json() == {
                "data": None,
                "error": {"code": "BAD_REQUEST", "message": message},
            }


# --------------------------------------------------------------------------- patterns
# Each pattern of the document against the server's own code for it, on generated values.


def ecma(pattern: str) -> re.Pattern[str]:
    """``pattern`` as JSON Schema reads it: its closing ``$`` is the end of the string."""
    return re.compile(pattern[:-1] + r"\Z" if pattern.endswith("$") else pattern)


def server_takes_url(url: str) -> bool:
    try:
        check_url_syntax(url)
    except (URLRefused, ValueError):
        return False
    return True


HOSTS = st.one_of(
    st.text(alphabet="abXY019.-_", max_size=10),
    st.lists(st.integers(0, 300).map(str), min_size=1, max_size=5).map(".".join),
    st.text(alphabet="0123456789abcdef:.", max_size=16).map(lambda s: f"[{s}]"),
    st.sampled_from(["[::1]", "[::ffff:1.2.3.4]", "[fe80::1%25en0]", "a b", "a%41", "a\\b"]),
    st.sampled_from(["01.1.1.1", "1.2.3.4.", "0x7f.1", "[v1.x]", "xn--9ca", "a:b"]),
)  # internationalised names (which the server takes, IDNA-encoded) are not in the pattern
PORTS = st.one_of(
    st.just(""),
    st.integers(-1, 70000).map(lambda n: f":{n}"),
    st.text(alphabet="0123456789a:", max_size=6).map(lambda s: f":{s}"),
)
TAILS = st.one_of(
    st.just(""),
    st.tuples(st.sampled_from("/?#\\"), st.text(max_size=8)).map("".join),
)
URL_LIKE = st.builds(
    lambda scheme, sep, userinfo, host, port, tail: f"{scheme}{sep}{userinfo}{host}{port}{tail}",
    st.sampled_from(["http", "https", "HTTP", "hTtPs", "ftp", ""]),
    st.sampled_from(["://", "://", "://", ":/", ":"]),
    st.sampled_from(["", "", "", "@", "u@", ":@"]),
    HOSTS,
    PORTS,
    TAILS,
)


@examples
@given(URL_LIKE)
def test_the_url_pattern_is_the_servers_syntax_check(url: str) -> None:
    assert (ecma(wire.URL).search(url) is not None) == server_takes_url(url)


@pytest.mark.parametrize("port", ["+80", " 80", "80 ", "8_0", "\uff18\uff10", "\u0668\u0660"])
def test_the_server_takes_only_ascii_digits_as_a_port(port: str) -> None:
    assert not server_takes_url(f"http://example.com:{port}/")


@examples
@given(st.from_regex(ecma(wire.URL)))
def test_every_url_the_pattern_takes_the_server_takes(url: str) -> None:
    assert server_takes_url(url)


def server_takes_prefer(value: str) -> bool:
    try:
        watch.requested_wait(SimpleNamespace(headers={"prefer": value}))  # type: ignore[arg-type]
    except BadRequest:
        return False
    return True


PREFERENCE = st.builds(
    lambda pad, name, eq, quote, number, rest: f"{pad}{name}{eq}{quote}{number}{quote}{rest}",
    st.sampled_from(["", " ", "\t", "\xa0"]),
    st.sampled_from(["wait", "WAIT", "Wait", "respond-async", "waiting", "wait x", "handling"]),
    st.sampled_from(["=", " = ", "", "=="]),
    st.sampled_from(["", '"', '""']),
    st.one_of(st.integers(0, 100).map(str), st.sampled_from(["", "007", "060", "61", "x", " 5"])),
    st.sampled_from(["", ";x", "; q=1", " ", "=1"]),
)


@examples
@given(
    st.one_of(
        st.lists(PREFERENCE, min_size=1, max_size=3).map(",".join),
        st.text(alphabet=st.sampled_from('waitWAIT=;, "\t\xa0\x850123456789x'), max_size=20),
    )
)
def test_the_prefer_pattern_is_the_servers_reading(value: str) -> None:
    assert (ecma(wire.PREFER).search(value) is not None) == server_takes_prefer(value)


@examples
@given(st.integers(0, 10**cursor.MAX_DIGITS - 1))  # a billion billion tasks
def test_the_cursor_pattern_takes_every_cursor_the_server_gives_out(position: int) -> None:
    given_out = cursor.encode(position)
    assert ecma(wire.CURSOR).search(given_out)
    assert cursor.decode(given_out) == position


@examples
@given(st.from_regex(ecma(wire.CURSOR)))
def test_every_cursor_the_pattern_takes_the_server_takes(value: str) -> None:
    cursor.decode(value)  # no BadRequest


@examples
@given(st.text(alphabet="az09 ~\x7f\x1fé", max_size=260))
def test_the_idempotency_key_pattern_is_the_servers(key: str) -> None:
    server = 1 <= len(key) <= 255 and all(" " <= c <= "~" for c in key)
    assert (ecma(wire.IDEMPOTENCY_KEY).search(key) is not None) == server


ID_TAILS = st.one_of(
    st.text(alphabet="aZ09_-./ \té", max_size=44),
    st.sampled_from(["a" * 7, "a" * 8, "a" * 40, "a" * 41, "aaaa/bbbb", "abc%41defg"]),
)


@examples
@given(st.sampled_from(["vg_file_", "vg_play_", "vg_file", "VG_FILE_", "x", ""]), ID_TAILS)
def test_the_id_patterns_are_the_servers(prefix: str, tail: str) -> None:
    value = prefix + tail
    assert (ecma(videogen.FILE_ID).search(value) is not None) == is_file_id(value)
    assert (ecma(videogen.PLAYBACK_ID).search(value) is not None) == is_playback_id(value)


@examples
@given(
    st.builds(
        lambda name, extension: name + extension,
        st.one_of(st.text(alphabet="aZ09_-./ é", max_size=8), st.just("a" * 65)),
        st.sampled_from([".ts", ".m4s", ".mp4", ".aac", ".m3u8", ".TS", "", ".ts.x"]),
    )
)
def test_the_segment_pattern_is_the_servers(name: str) -> None:
    server = playback.SEGMENT.match(name) is not None
    assert (ecma(videogen.SEGMENT).search(name) is not None) == server


def server_takes_key(key: str) -> bool:
    try:
        check_key(key)
    except ValueError:
        return False
    return True


@examples
@given(
    st.builds(
        lambda head, parts: "/".join([head, *parts]),
        st.sampled_from(["outputs", "files", "uploads", "tmp", "", "Files"]),
        st.lists(
            st.one_of(st.text(alphabet="aZ09_.-é ", max_size=6), st.just("a" * 128)),
            max_size=6,
        ),
    )
)
def test_the_object_key_pattern_is_the_servers(key: str) -> None:
    assert (ecma(videogen.OBJECT_KEY).search(key) is not None) == server_takes_key(key)


@examples
@given(st.integers(10**15, 10**16 - 1), st.integers(0, 10**18 - 1))
def test_the_files_cursor_pattern_takes_every_cursor_the_server_gives_out(
    micros: int, seq: int
) -> None:
    """The micros of a file's update time have 16 digits from 2001 to 2286."""
    given_out = cursor.pack(videogen_files.CURSOR, micros, seq)
    assert ecma(videogen.FILES_CURSOR).search(given_out)
    assert cursor.unpack(videogen_files.CURSOR, given_out, 2) == (micros, seq)


@examples
@given(st.from_regex(ecma(videogen.FILES_CURSOR)))
def test_every_files_cursor_the_pattern_takes_the_server_takes(value: str) -> None:
    videogen_files._after(value)  # no BadRequest, and a time Python can hold


@examples
@given(
    st.sampled_from(["vg_exec_", "vg_exec", "VG_EXEC_", "vg_file_", ""]),
    st.one_of(
        st.text(alphabet="aZ09_-./ \t\né", max_size=70),
        st.sampled_from(["a" * 7, "a" * 8, "a" * 64, "a" * 65, "a" * 64 + "\n"]),
    ),
)
def test_the_execution_id_pattern_is_the_servers(prefix: str, tail: str) -> None:
    value = prefix + tail
    assert (ecma(videogen_tools.EXECUTION_ID).search(value) is not None) == is_execution_id(value)


@examples
@given(st.integers(0, 10**cursor.MAX_DIGITS - 1))
def test_the_executions_cursor_pattern_takes_every_cursor_the_server_gives_out(
    position: int,
) -> None:
    given_out = cursor.pack(videogen_tool_routes.CURSOR, position)
    assert ecma(videogen_tools.EXECUTIONS_CURSOR).search(given_out)
    assert videogen_tool_routes._position(given_out) == position


@examples
@given(st.from_regex(ecma(videogen_tools.EXECUTIONS_CURSOR)))
def test_every_executions_cursor_the_pattern_takes_the_server_takes(value: str) -> None:
    videogen_tool_routes._position(value)  # no BadRequest


@examples
@given(
    st.sampled_from(["ep_", "ep", "EP_", "vg_file_", ""]),
    st.one_of(
        st.text(alphabet="aZ09_-./ \t\né", max_size=44),
        st.sampled_from(["a" * 7, "a" * 8, "a" * 40, "a" * 41, "a" * 40 + "\n"]),
    ),
)
def test_the_endpoint_id_pattern_is_the_servers(prefix: str, tail: str) -> None:
    value = prefix + tail
    assert (ecma(videogen_hooks.ENDPOINT_ID).search(value) is not None) == is_endpoint_id(value)


def test_the_webhook_ids_and_secrets_given_out_fit_their_patterns() -> None:
    """Endpoints', messages' (the ``webhook-id``) and deliveries' ids, and signing secrets; a
    delivery id is a message's too (the messages queued before the registry have their
    delivery's)."""
    for _ in range(500):
        assert ecma(videogen_hooks.ENDPOINT_ID).search(new_endpoint_id())
        assert ecma(wire.MESSAGE_ID).search(new_message_id())
        assert ecma(videogen_hooks.SECRET).search(new_endpoint_secret())
        delivery = new_id("whd_")
        assert ecma(wire.DELIVERY_ID).search(delivery) and ecma(wire.MESSAGE_ID).search(delivery)
        assert videogen_webhook_routes._delivery_id(delivery) == delivery  # no invalid_id


@examples
@given(st.integers(0, 10**cursor.MAX_DIGITS - 1))
def test_the_deliveries_cursor_pattern_takes_every_cursor_the_server_gives_out(
    position: int,
) -> None:
    given_out = cursor.pack(videogen_webhook_routes.CURSOR, position)
    assert ecma(videogen_hooks.DELIVERIES_CURSOR).search(given_out)
    assert videogen_webhook_routes._before(given_out) == position


@examples
@given(st.from_regex(ecma(videogen_hooks.DELIVERIES_CURSOR)))
def test_every_deliveries_cursor_the_pattern_takes_the_server_takes(value: str) -> None:
    videogen_webhook_routes._before(value)  # no BadRequest


def server_takes_receiver(url: str, allow_private: bool) -> bool:
    """Whether the server takes the syntax of a webhook endpoint's ``url``: the body's model
    strips it, then ``net.guard.check_receiver_url`` wants https (or, where private addresses are
    allowed, http too)."""
    try:
        body = CreateWebhookEndpoint.model_validate({"url": url, "events": ["task.failed"]})
        parsed = check_url_syntax(body.url, max_length=2048)
    except (ValidationError, URLRefused, ValueError):
        return False
    return allow_private or parsed.scheme == "https"


PADDING = st.text(alphabet="\t\n \xa0\u200b\u3000\x1c", max_size=2)


@examples
@given(PADDING, URL_LIKE, PADDING, st.booleans())
def test_the_receiver_url_pattern_is_the_servers(
    before: str, url: str, after: str, allow_private: bool
) -> None:
    value = before + url + after
    pattern = ecma(videogen_hooks.receiver_url(allow_private))
    assert (pattern.search(value) is not None) == server_takes_receiver(value, allow_private)


@examples
@given(PADDING, st.integers(2030, 2060), PADDING)
def test_the_receiver_url_pattern_counts_the_length_as_the_server_does(
    before: str, length: int, after: str
) -> None:
    """At most 2048 characters, once the white space around it is stripped."""
    value = before + "https://1.1.1.1/".ljust(length, "a") + after
    pattern = ecma(videogen_hooks.receiver_url(False))
    assert (pattern.search(value) is not None) == server_takes_receiver(value, False)


@examples
@given(PADDING, st.integers(1015, 1030), PADDING)
def test_the_endpoint_description_pattern_is_the_servers(
    before: str, length: int, after: str
) -> None:
    value = before + "a" * length + after
    schema = videogen_hooks.request_schemas(Settings())["CreateWebhookEndpointRequest"]
    string = schema["properties"]["description"]["anyOf"][0]
    assert "maxLength" not in string
    body = {"url": "https://1.1.1.1/", "events": ["task.failed"], "description": value}
    try:
        CreateWebhookEndpoint.model_validate(body)
    except ValidationError:
        server = False
    else:
        server = True
    assert (re.search(string["pattern"], value) is not None) == server


@examples
@given(st.from_regex(ecma(videogen_hooks.receiver_url(False))))
def test_every_receiver_url_the_pattern_takes_the_server_takes(url: str) -> None:
    assert server_takes_receiver(url, allow_private=False)


def server_takes_boolean(value: str) -> bool:
    try:
        TypeAdapter(bool).validate_python(value)  # what FastAPI makes of a query's text
    except ValidationError:
        return False
    return True


@examples
@given(
    st.one_of(
        st.sampled_from(["true", "False", "YES", "n", "0", "1", "2", "", "tru", "off ", "nO"]),
        st.text(alphabet="tTrRuUeEfFaAlLsSyYnNoO01 ", max_size=6),
    )
)
def test_the_boolean_pattern_is_the_servers(value: str) -> None:
    assert (ecma(videogen_tools.BOOLEAN).search(value) is not None) == server_takes_boolean(value)


@examples
@given(
    st.builds(
        lambda pad, code, tail: pad + code + tail,
        st.text(alphabet="\t\n \xa0\u200b\u3000", max_size=2),
        st.text(alphabet="enUSzh-_1é", max_size=7),
        st.text(alphabet="\t\n \xa0\u200b\u3000", max_size=2),
    )
)
def test_the_language_pattern_is_the_servers(value: str) -> None:
    try:
        TextToSpeech.model_validate({"ttsText": "hello", "speechLanguageCode": value})
    except ValidationError:
        server = False
    else:
        server = True
    assert (ecma(videogen_tools.LANGUAGE).search(value) is not None) == server


# Rust's char::is_whitespace, what Pydantic's str_strip_whitespace strips, and its neighbours.
SPACES = (
    "\t\n\x0b\x0c\r \x1c\x1f\x85\xa0\u1680\u180e\u2000\u200a\u200b\u2028\u2029\u202f"
    "\u205f\u3000\ufeff"
)


@examples
@given(st.text(alphabet=SPACES + "a\x00", max_size=6))
def test_the_text_pattern_is_the_servers_stripping_and_nul_check(value: str) -> None:
    try:
        CreateFileUpload.model_validate({"displayName": value})
    except ValidationError:
        server = False
    else:
        server = True
    assert (ecma(videogen.TEXT).search(value) is not None) == server


# --------------------------------------------------------------------------- a real server

# The server of the fuzz run may not resolve any host name: this, put on its PYTHONPATH, records
# every name it tries to resolve and refuses it. (uvloop resolves by itself: it is kept out.)
DNS_GUARD = """
import ipaddress, os, socket, sys

sys.modules["uvloop"] = None
_getaddrinfo = socket.getaddrinfo


def _literal(host):
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def getaddrinfo(host, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else host
    if name is not None and name != "localhost" and not _literal(name):
        with open(os.environ["FUZZ_DNS_LOG"], "a") as log:
            log.write(name + "\\n")
        raise socket.gaierror(socket.EAI_NONAME, "no DNS in this test")
    return _getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = getaddrinfo
"""


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """An API-only server (no task ever runs, so no webhook or image URL is ever fetched, and a
    tool request the fuzz run makes valid only queues an execution), rate limits off (but the
    VideoGen API's groups, which cannot be: the two the fuzz run would exhaust are raised), the
    real outbound URL policy, and an account with a large balance (so a valid tool request is
    queued, not refused 402: its price is only reserved)."""
    guard = tmp_path_factory.mktemp("dns-guard")
    (guard / "sitecustomize.py").write_text(DNS_GUARD)
    settings = {
        "HATCHERY_WORKERS": "0",
        "HATCHERY_RATE_LIMIT": "off",
        "HATCHERY_RATE_LIMIT_IP": "off",
        "HATCHERY_ALLOW_PRIVATE_URLS": "0",
        # The fuzz run sends a few thousand tool requests, hundreds of cancels and of webhook
        # reads, changes and sends: the contract's 500, 250, 500 and 10 an hour (and our 500)
        # would answer most of them 429, leaving their logic untested.
        "HATCHERY_VIDEOGEN_RATE_LIMITS": "tools=100000/hour,cancel=100000/hour,"
        "webhooks-read=100000/hour,webhooks-change=100000/hour,webhooks-send=100000/hour",
        # before the caller's own PYTHONPATH (a checkout's src/ put first, say), not instead
        "PYTHONPATH": os.pathsep.join(p for p in (str(guard), os.environ.get("PYTHONPATH")) if p),
        "FUZZ_DNS_LOG": str(guard / "lookups.log"),
    }
    server = ServerProcess(tmp_path_factory.mktemp("fuzz"), settings).start()
    server.key = create_account(server.db_url, "fuzz@example.com", "10000000.00")
    yield server
    server.stop()


SENTINEL = "dns-guard-check.invalid"


def dns_lookups(server: ServerProcess) -> list[str]:
    """The host names the server tried to resolve, but the one the guard's own test sends."""
    log = Path(server.settings["FUZZ_DNS_LOG"])
    names = log.read_text().split() if log.exists() else []
    return [name for name in names if name != SENTINEL]


def test_the_fuzzed_server_resolves_no_host_name(fuzz_server: ServerProcess) -> None:
    body = {"model": "nanobanana", "prompt": "p", "webhook_url": f"https://{SENTINEL}/hook"}
    with fuzz_server.client() as client:
        refused = client.post("/v1/generate", json=body)
    assert refused.status_code == 400
    assert "no DNS in this test" in refused.json()["error"]["message"]
    assert SENTINEL in Path(fuzz_server.settings["FUZZ_DNS_LOG"]).read_text()


def schemathesis(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HATCHERY_FUZZ_KEY": server.key or "",
        "SCHEMATHESIS_HOOKS": str(ROOT / "tests" / "schemathesis_hooks.py"),
        "HYPOTHESIS_STORAGE_DIRECTORY": str(HYPOTHESIS_HOME),
    }
    return subprocess.run(
        [
            ST,
            "--config-file",
            "tests/schemathesis.toml",
            "run",
            f"{server.url}/openapi.json",
            *args,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        # A guard against a hung run, not a measure: the first run takes about 145 s alone, and
        # `make test` runs two pytest-xdist workers on the machine's two cores beside it.
        timeout=420,
    )


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_schemathesis_finds_no_failure(fuzz_server: ServerProcess) -> None:
    """Every phase and check against the document: no 5xx, no answer off the document, no valid
    request refused, no invalid one taken, 405 with Allow for undocumented methods. FUZZ_SEED
    and FUZZ_EXAMPLES change the run (a failure prints the seed to run it again with).

    Two runs: the tools (their executions too) get FUZZ_TOOL_EXAMPLES examples an operation in
    the generated phases (30), everything else FUZZ_EXAMPLES (200). Ten tools of one request
    each, with the same errors, and bodies costly to generate, would double the run at 200."""
    seed = os.environ.get("FUZZ_SEED", "20260508")
    started = time.monotonic()
    reports = []
    for select, examples in (
        ("--exclude-tag=VideoGen: Tools", os.environ.get("FUZZ_EXAMPLES", "200")),
        ("--include-tag=VideoGen: Tools", os.environ.get("FUZZ_TOOL_EXAMPLES", "30")),
    ):
        run = schemathesis(
            fuzz_server,
            "--phases=examples,coverage,fuzzing,stateful",
            "--checks=all",
            select,
            # The event stream of a task (or an execution) that never runs never ends; their
            # own tests are above and below.
            "--exclude-operation-id=streamTaskEvents",
            "--exclude-operation-id=streamToolExecutionEvents",
            f"--max-examples={examples}",
            f"--seed={seed}",
            # One worker: with two threads, Hypothesis's source parsing trips over CPython
            # 3.11's `ast` ("AST constructor recursion depth mismatch").
            "--workers=1",
            "--request-timeout=20",
            "--no-color",
        )
        output = "\n".join(line[:400] for line in (run.stdout + run.stderr).splitlines())
        reports.append((select, run.returncode, output[-15000:]))
    report = f"seed {seed}, {time.monotonic() - started:.0f} s:\n" + "\n".join(
        f"{select}:\n{output}" for select, code, output in reports if code
    )
    assert all(code == 0 for _, code, _ in reports), report
    assert dns_lookups(fuzz_server) == []


def test_answers_about_ended_tasks_fit_the_document(tmp_path: Path, doc: dict[str, Any]) -> None:
    """What the fuzz run never sees (no task runs there): completed image and video tasks, a
    failed one, their usage, the account's usage, an output file."""
    server = ServerProcess(tmp_path, {"HATCHERY_WORKERS": "2"}).start()
    try:
        with server.client() as client:
            submitted = [
                client.post("/v1/generate", json=body).json()["data"]["id"]
                for body in (
                    {"model": "nanobanana", "prompt": "a kite", "num_outputs": 2},
                    {"model": "veo3.1", "prompt": "waves", "duration": 1},
                    {"model": "nanobanana", "prompt": "like this", "image_urls": [DEAD_URL]},
                )
            ]
            ended = [wait_for_task(client, task_id) for task_id in submitted]
            assert [t["status"] for t in ended] == ["completed", "completed", "failed"]
            for task_id in submitted:
                conforms(doc, "/v1/tasks/{task_id}", client.get(f"/v1/tasks/{task_id}"))
            conforms(doc, "/v1/tasks", client.get("/v1/tasks", params={"per_page": 1}))
            conforms(doc, "/v1/usage", client.get("/v1/usage"))
            conforms(doc, "/v1/usage/summary", client.get("/v1/usage/summary"))
            prefix = (server.key or "")[:13]
            conforms(doc, "/v1/account", client.get("/v1/account", params={"api_key": prefix}))
            assert client.get("/v1/usage").json()["data"]["pagination"]["total"] == 2
            file = client.get(ended[0]["output"]["urls"][1])
            assert file.status_code == 200
            conforms(doc, "/files/{token}/{name}", file)
            conforms(doc, "/healthz", client.get("/healthz"))
    finally:
        server.stop()


def served_group_limits(server: ServerProcess) -> dict[Group, str]:
    """Each group's hourly limit per key, as the server's own document says it."""
    served = httpx.get(f"{server.url}/openapi.json").json()
    limits = {}
    for _, _, operation in of_dialect(served, "videogen"):
        said = re.search(
            r"\*\*Rate limit:\*\* ([0-9,]+) requests per hour per API key \(group `([a-z-]+)`",
            operation["description"],
        )
        if said:
            limits[Group(said[2])] = said[1].replace(",", "")
    return limits


NOBODYS_FILE = CONCRETE["{fileId}"]
NOBODYS_RUN = CONCRETE["{toolExecutionId}"]
# A webhook endpoint the fuzz server takes without resolving a name (and never sends to).
HOOK_BODY = {
    "url": "https://1.1.1.1/hook",
    "events": ["task.cancelled", "webhook_endpoint.disabled"],
}


def expected_status(operation_id: str, path: str, body: dict[str, Any] | None) -> int:
    """What an operation answers a new account: no file, execution, webhook endpoint or
    delivery is its (404), a tool that names none is queued (202), an endpoint is made (201), a
    list is answered (200)."""
    if "{" in path or any("FileId" in name for name in body or {}):
        return 404
    if operation_id == "createWebhookEndpoint":
        return 201
    return 202 if operation_id in TOOL_OPERATIONS else 200


def test_videogen_answers_fit_the_document_and_carry_their_group_limit(
    fuzz_server: ServerProcess, doc: dict[str, Any]
) -> None:
    """Each VideoGen operation that takes a key, on a real server, with a key and without: the
    answers fit the document, and X-RateLimit-Limit is the operation's hourly group limit as the
    server's own document says it (the contract's, but those the fuzz server raises; the
    server's other limits are off)."""
    limits = served_group_limits(fuzz_server)
    assert {group: limits[group] for group in (Group.FILES_READ, Group.RESOURCES)} == {
        group: LIMITS[group].removesuffix("/hour") for group in (Group.FILES_READ, Group.RESOURCES)
    }
    assert limits[Group.TOOLS] == "100000"
    places = {
        op["operationId"]: (p, m)
        for p, m, op in of_dialect(doc, "videogen")
        if op["operationId"] in GROUPS
    }
    bodies = {
        "searchFiles": {"query": "fox"},
        "createFileUpload": {"displayName": "a fox"},
        "createWebhookEndpoint": HOOK_BODY,
    }
    for operation_id in TOOL_OPERATIONS:  # the document's example of each tool
        path, method = places[operation_id]
        media = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        bodies[operation_id] = next(iter(media["examples"].values()))["value"]
    key = fuzz_server.new_account("videogen-limits@example.com", "100.00")
    with fuzz_server.client(key=key) as client, httpx.Client(base_url=fuzz_server.url) as nobody:
        for operation_id, (path, method) in places.items():
            url, body = concrete(path), bodies.get(operation_id)
            answer = client.request(method, url, json=body)
            assert answer.status_code == expected_status(operation_id, path, body), answer.text
            conforms(doc, path, answer)
            limit = limits[GROUPS[operation_id]]
            assert answer.headers["x-ratelimit-limit"] == limit, operation_id
            missing = nobody.request(method, url, json=body)
            assert (missing.status_code, missing.json()["code"]) == (401, MISSING_KEY)
            conforms(doc, path, missing)
            wrong = nobody.request(method, url, json=body, headers={"Authorization": "Bearer x"})
            assert (wrong.status_code, wrong.json()["code"]) == (401, "invalid_api_key")
            conforms(doc, path, wrong)
        for path, answer in (
            ("/v1/files/{fileId}", client.get("/v1/files/not-a-file")),
            ("/v1/files", client.get("/v1/files", params={"cursor": "bm9wZQ"})),
            ("/v1/files", client.get("/v1/files", params={"limit": 201})),
            ("/v1/files/upload", client.post("/v1/files/upload", json={"type": "PDF"})),
            ("/v1/files/search", client.post("/v1/files/search", json={"query": " "})),
        ):
            assert answer.status_code == 400, answer.text
            conforms(doc, path, answer)


TOOL = "/v1/tools/generate-image"
EXECUTION = "/v1/tools/executions/{toolExecutionId}"
ASSET = "/v1/resources/avatar-presenters/{presenterId}/{asset}"


def refused(doc: dict[str, Any], path: str, answer: httpx.Response, status: int, code: str) -> None:
    assert (answer.status_code, answer.json().get("code")) == (status, code), answer.text
    conforms(doc, path, answer)


def refusals(waiting: str) -> list[tuple[str, dict[str, Any], int, str]]:
    """Tool requests refused before anything is queued: path, body, status, code."""
    speak, avatar_clip = "/v1/tools/text-to-speech", "/v1/tools/generate-avatar"
    unknown_voice = {"ttsText": "hi", "voiceId": "vg_voic_aaaaaaaaaaa"}
    unknown_presenter = {"avatarPresenterId": "vg_pres_aaaaaaaaaaa", "audioStorageFileId": "x"}
    return [
        (TOOL, {"prompt": "a kite", "watermarkMode": "NONE"}, 403, "watermark_removal_not_allowed"),
        (TOOL, {"prompt": "a kite", "imageFileIds": ["x"]}, 400, "invalid_id"),
        (TOOL, {"prompt": "a kite", "imageFileIds": [NOBODYS_FILE]}, 404, "not_found"),
        (TOOL, {"prompt": " "}, 400, "invalid_parameters"),
        (speak, {"ttsText": "hi", "voiceId": "x"}, 400, "invalid_id"),
        (speak, unknown_voice, 404, "not_found"),
        (avatar_clip, unknown_presenter, 404, "not_found"),
        ("/v1/tools/upscale-image", {"imageStorageFileId": waiting}, 409, "file_not_ready"),
    ]


def test_tool_refusals_fit_the_document(fuzz_server: ServerProcess, doc: dict[str, Any]) -> None:
    """Refusals the fuzz run cannot reach, each as documented: a watermark the account may not
    remove, ids of the wrong kind or of nothing, a file not processed yet, a body too large, a
    balance too small, a repeated Idempotency-Key."""
    key = fuzz_server.new_account("tools-refusals@example.com", "100.00")
    with fuzz_server.client(key=key) as client:
        waiting = create_upload(client, "a photo", type="IMAGE")["fileId"]  # never processed here
        for path, body, status, code in refusals(waiting):
            refused(doc, path, client.post(path, json=body), status, code)
        too_large = client.post(TOOL, content=b" " * (Settings().max_body_bytes + 1))
        refused(doc, TOOL, too_large, 413, "file_too_large")
        bad_key = client.post(
            TOOL, json={"prompt": "a kite"}, headers={"Idempotency-Key": "x" * 256}
        )
        refused(doc, TOOL, bad_key, 400, "invalid_parameters")
        once = {"Idempotency-Key": "tools-refusals-1"}
        answers = [
            client.post(TOOL, json={"prompt": "a kite"}, headers=once),
            client.post(TOOL, json={"prompt": "a kite"}, headers=once),
        ]
        assert [a.status_code for a in answers] == [202, 202]
        assert answers[0].json() == answers[1].json()
        for answer in answers:
            conforms(doc, TOOL, answer)
        other = client.post(TOOL, json={"prompt": "a boat"}, headers=once)
        refused(doc, TOOL, other, 422, "idempotency_key_reused")
    broke = fuzz_server.new_account("tools-broke@example.com", "0.00")
    with fuzz_server.client(key=broke) as client:
        refused(
            doc, TOOL, client.post(TOOL, json={"prompt": "a kite"}), 402, "insufficient_credits"
        )


def server_sent_events(text: str) -> list[dict[str, str]]:
    """A stream's events, each as its fields (``id``, ``event``, ``data``)."""
    found = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            found.append(fields)
    return found


def test_executions_and_resources_fit_the_document(
    fuzz_server: ServerProcess, doc: dict[str, Any]
) -> None:
    """An execution through its life on a server that runs none (pending, cancelled, its event
    stream, a cancel that changes nothing), the list by cursor, and the resources: the voices,
    the presenters and their pictures (a 304 too)."""
    key = fuzz_server.new_account("tools-executions@example.com", "100.00")
    with fuzz_server.client(key=key) as client:
        ids = [client.post(TOOL, json={"prompt": p}).json()["toolExecutionId"] for p in "ab"]
        one = f"/v1/tools/executions/{ids[0]}"
        pending = client.get(one)
        assert pending.json()["status"] == "pending"
        cancels = [client.post(f"{one}/cancel"), client.post(f"{one}/cancel")]
        assert [c.status_code for c in cancels] == [202, 202]
        for path, answer in (
            (EXECUTION, pending),
            (f"{EXECUTION}/cancel", cancels[0]),
            (f"{EXECUTION}/cancel", cancels[1]),
            (EXECUTION, client.get(one)),
            (f"{EXECUTION}/events", client.get(f"{one}/events")),
        ):
            assert answer.status_code < 300, answer.text
            conforms(doc, path, answer)
        events = server_sent_events(client.get(f"{one}/events").text)
        assert [e["event"] for e in events] == ["cancelled"]
        execution = resolve(doc, {"$ref": "#/components/schemas/ExecutedTool"})
        validator(doc, execution).validate(json.loads(events[0]["data"]))
        bad = client.get(f"{one}/events", headers={"Last-Event-ID": "x"})
        refused(doc, f"{EXECUTION}/events", bad, 400, "invalid_parameters")
        refused(doc, EXECUTION, client.get("/v1/tools/executions/x"), 400, "invalid_id")
        first = client.get("/v1/tools/executions", params={"limit": 1})
        assert first.json()["toolExecutions"][0]["toolExecutionId"] == ids[1]
        after = {"limit": 1, "cursor": first.json()["nextCursor"]}
        for answer in (first, client.get("/v1/tools/executions", params=after)):
            conforms(doc, "/v1/tools/executions", answer)
        wrong = client.get("/v1/tools/executions", params={"cursor": "dmdmMS4x"})
        refused(doc, "/v1/tools/executions", wrong, 400, "invalid_parameters")
        resources_fit(doc, client)


def resources_fit(doc: dict[str, Any], client: httpx.Client) -> None:
    voices = "/v1/resources/tts-voices"
    every = client.get(voices, params={"includeDeprecatedVoices": "TRUE"})
    assert any(voice["isDeprecated"] for voice in every.json()["ttsVoices"])
    conforms(doc, voices, every)
    conforms(doc, voices, client.get(voices))
    maybe = client.get(voices, params={"includeDeprecatedVoices": "maybe"})
    refused(doc, voices, maybe, 400, "invalid_parameters")
    presenters = client.get("/v1/resources/avatar-presenters")
    conforms(doc, "/v1/resources/avatar-presenters", presenters)
    thumbnail = presenters.json()["avatarPresenters"][0]["thumbnailUrl"]
    picture = httpx.get(thumbnail)  # no key
    again = httpx.get(thumbnail, headers={"If-None-Match": picture.headers["etag"]})
    assert [picture.status_code, again.status_code] == [200, 304]
    for answer in (picture, again):
        conforms(doc, ASSET, answer)
    refused(doc, ASSET, httpx.get(thumbnail.replace(".png", ".jpg")), 404, "not_found")


HOOKS = "/v1/webhooks/endpoints"
HOOK = f"{HOOKS}/{{endpointId}}"
DELIVERIES = "/v1/webhooks/deliveries"
DELIVERY = f"{DELIVERIES}/{{deliveryId}}"
TASK_HOOKS = "/v1/tasks/{task_id}/webhooks"
REDELIVER_TASK_HOOK = f"{TASK_HOOKS}/{{delivery_id}}/redeliver"


def disable(server: ServerProcess, endpoint_id: str) -> None:
    """What the server does to an endpoint whose attempts failed for days (none are made here)."""
    server.query(
        "UPDATE webhook_endpoints SET status = 'disabled', disabled_reason = :why WHERE id = :id",
        id=endpoint_id,
        why="every attempt failed for 5 days",
    )


def fits(doc: dict[str, Any], answers: list[tuple[str, httpx.Response, int]]) -> None:
    for path, answer, status in answers:
        assert answer.status_code == status, (path, answer.text)
        conforms(doc, path, answer)


def test_webhook_endpoints_and_deliveries_fit_the_document(
    fuzz_server: ServerProcess, doc: dict[str, Any]
) -> None:
    """An endpoint through its life on a server that sends nothing (made, listed, tested, its
    test message listed by page and redelivered, disabled, enabled, deleted), and what the fuzz
    run cannot reach: a disabled endpoint's test and redelivery, an account's 51st endpoint."""
    key = fuzz_server.new_account("webhooks@example.com")
    with fuzz_server.client(key=key) as client:
        created = client.post(HOOKS, json=HOOK_BODY | {"description": "ours"})
        one = f"{HOOKS}/{created.json()['endpointId']}"
        tests = [client.post(f"{one}/test") for _ in range(2)]
        message = f"{DELIVERIES}/{tests[0].json()['deliveryId']}"
        first = client.get(DELIVERIES, params={"limit": 1})
        after = {"limit": 1, "cursor": first.json()["nextCursor"]}
        fits(
            doc,
            [
                (HOOKS, created, 201),
                (HOOKS, client.get(HOOKS), 200),
                (HOOK, client.get(one), 200),
                *((f"{HOOK}/test", test, 202) for test in tests),
                (DELIVERIES, first, 200),
                (DELIVERIES, client.get(DELIVERIES, params=after), 200),
                (DELIVERY, client.get(message), 200),
                (f"{DELIVERY}/redeliver", client.post(f"{message}/redeliver"), 202),
                (f"{HOOK}/enable", client.post(f"{one}/enable"), 200),
            ],
        )
        assert client.get(DELIVERIES, params=after).json()["deliveries"] == [
            client.get(message).json()
        ]
        disable(fuzz_server, created.json()["endpointId"])
        refused(doc, f"{HOOK}/test", client.post(f"{one}/test"), 409, "conflict")
        refused(doc, f"{DELIVERY}/redeliver", client.post(f"{message}/redeliver"), 409, "conflict")
        fits(doc, [(HOOKS, client.get(HOOKS), 200), (HOOK, client.get(one), 200)])
        fits(doc, [(f"{HOOK}/enable", client.post(f"{one}/enable"), 200)])
        fits(doc, [(HOOK, client.delete(one), 204)])
        for path, answer in (
            (HOOK, client.get(one)),
            (HOOK, client.delete(one)),
            (f"{HOOK}/test", client.post(f"{one}/test")),
            (f"{DELIVERY}/redeliver", client.post(f"{message}/redeliver")),
        ):
            refused(doc, path, answer, 404, "not_found")
        webhook_refusals_fit(doc, client)


def webhook_refusals_fit(doc: dict[str, Any], client: httpx.Client) -> None:
    both = {"toolExecutionId": NOBODYS_RUN, "fileId": NOBODYS_FILE}
    plain, test = HOOK_BODY | {"url": "http://1.1.1.1/"}, HOOK_BODY | {"events": [TEST_EVENT]}
    for path, answer, code in (
        (HOOKS, client.post(HOOKS, json=plain), "invalid_parameters"),
        (HOOKS, client.post(HOOKS, json=test), "invalid_parameters"),
        (HOOK, client.get(f"{HOOKS}/ep_x"), "invalid_id"),
        (DELIVERY, client.get(f"{DELIVERIES}/x"), "invalid_id"),
        (DELIVERIES, client.get(DELIVERIES, params={"endpointId": "x"}), "invalid_id"),
        (DELIVERIES, client.get(DELIVERIES, params=both), "invalid_parameters"),
        (DELIVERIES, client.get(DELIVERIES, params={"cursor": "dmdlMS40Mg"}), "invalid_parameters"),
    ):  # fmt: skip
        refused(doc, path, answer, 400, code)
    made = [client.post(HOOKS, json=HOOK_BODY) for _ in range(51)]  # none is left before
    assert [answer.status_code for answer in made[-2:]] == [201, 400], made[-1].text
    refused(doc, HOOKS, made[-1], 400, "invalid_parameters")


def test_task_webhooks_fit_the_document(fuzz_server: ServerProcess, doc: dict[str, Any]) -> None:
    """A task's webhooks (to its ``webhook_url`` and to an endpoint), listed in both dialects
    and redelivered, on a server that sends nothing; and redelivery refused."""
    key = fuzz_server.new_account("task-webhooks@example.com")
    with fuzz_server.client(key=key) as client:
        endpoint_id = client.post(HOOKS, json=HOOK_BODY).json()["endpointId"]
        body = {"model": "nanobanana", "prompt": "a kite", "webhook_url": "https://1.1.1.1/t"}
        task_id = client.post("/v1/generate", json=body).json()["data"]["id"]
        hooks = f"/v1/tasks/{task_id}/webhooks"
        before = client.get(hooks)
        assert before.json()["data"] == {"items": []}
        client.post(f"/v1/tasks/{task_id}/cancel")
        listed = client.get(hooks)
        items = {item["endpoint_id"]: item for item in listed.json()["data"]["items"]}
        assert set(items) == {None, endpoint_id}
        assert items[None]["webhook_id"] == items[endpoint_id]["webhook_id"]
        again = f"{hooks}/{items[None]['id']}/redeliver"
        fits(
            doc,
            [
                (TASK_HOOKS, before, 200),
                (TASK_HOOKS, listed, 200),
                (REDELIVER_TASK_HOOK, client.post(again), 202),
                (DELIVERIES, client.get(DELIVERIES), 200),
            ],
        )
        disable(fuzz_server, endpoint_id)
        to_endpoint = client.post(f"{hooks}/{items[endpoint_id]['id']}/redeliver")
        assert to_endpoint.json()["error"]["code"] == "CONFLICT"
        other = client.post("/v1/generate", json=body).json()["data"]["id"]
        for path, answer, status in (
            (REDELIVER_TASK_HOOK, to_endpoint, 409),
            (REDELIVER_TASK_HOOK, client.post(again.replace(task_id, other)), 404),
            (REDELIVER_TASK_HOOK, client.post(f"{hooks}/whd_x/redeliver"), 404),
            (TASK_HOOKS, client.get("/v1/tasks/x/webhooks"), 404),
        ):
            fits(doc, [(path, answer, status)])


def test_sent_webhooks_fit_the_document(
    tmp_path: Path, doc: dict[str, Any], receiver: LocalHTTPServer
) -> None:
    """What a server that sends nothing never answers: messages with attempts, failed then
    delivered, in both dialects' logs."""
    answered: set[str] = set()

    def busy_once(path: str, method: str) -> tuple[int, dict[str, str], bytes]:
        first = path not in answered
        answered.add(path)
        return (503, {}, b"busy") if first else (200, {}, b"ok")

    receiver.respond = busy_once
    settings = {"HATCHERY_WORKERS": "1", "HATCHERY_WEBHOOK_ENDPOINT_SCHEDULE": "200ms"}
    server = ServerProcess(tmp_path, settings).start()
    try:
        with server.client() as client:
            hook = {"url": receiver.url("/endpoint"), "events": ["task.completed"]}
            endpoint = client.post(HOOKS, json=hook).json()["endpointId"]
            body = {"model": "nanobanana", "prompt": "a kite", "webhook_url": receiver.url("/t")}
            task_id = client.post("/v1/generate", json=body).json()["data"]["id"]
            wait_for_task(client, task_id)
            receiver.wait_for(2, path="/t")
            receiver.wait_for(2, path="/endpoint")
            logged = wait_for_deliveries(client, f"/v1/tasks/{task_id}/webhooks", 2)
            assert [len(item["attempts"]) for item in logged] == [2, 2]
            fits(
                doc,
                [
                    (TASK_HOOKS, client.get(f"/v1/tasks/{task_id}/webhooks"), 200),
                    (DELIVERIES, client.get(DELIVERIES, params={"endpointId": endpoint}), 200),
                    (DELIVERIES, client.get(DELIVERIES), 200),
                ],
            )  # fmt: skip
    finally:
        server.stop()


def wait_for_deliveries(client: httpx.Client, path: str, count: int) -> list[dict[str, Any]]:
    """The task's messages once ``count`` of them are delivered."""
    deadline = time.monotonic() + 30
    while True:
        items: list[dict[str, Any]] = client.get(path).json()["data"]["items"]
        if sum(item["status"] == "delivered" for item in items) >= count:
            return items
        assert time.monotonic() < deadline, items
        time.sleep(0.1)


@pytest.mark.slow
def test_answers_about_files_fit_the_document(tmp_path: Path, doc: dict[str, Any]) -> None:
    """What the fuzz run never sees (no file is processed there, and it cannot sign a URL): an
    upload's flow, ready files and their signed URLs, a video's streams, an output by range."""
    settings = {"HATCHERY_WORKERS": "2", "HATCHERY_MAX_UPLOAD_BYTES": "200000"}
    server = ServerProcess(tmp_path / "server", settings).start()
    try:
        with server.client() as client:
            upload_flow_fits(doc, client)
            signed_urls_fit(doc, client)
            streams_fit(doc, client, tmp_path / "clip.mp4")
            executions_fit(doc, client)
            task = client.post("/v1/generate", json={"model": "nanobanana", "prompt": "a kite"})
            output = wait_for_task(client, task.json()["data"]["id"])["output"]["url"]
        ranged = httpx.get(output, headers={"Range": "bytes=0-3"})
        assert ranged.status_code == 206
        conforms(doc, "/files/{token}/{name}", ranged)
    finally:
        server.stop()


def upload_flow_fits(doc: dict[str, Any], client: httpx.Client) -> None:
    created = client.post("/v1/files/upload", json={"displayName": "a red fox in the snow"})
    conforms(doc, "/v1/files/upload", created)
    file_id, url = created.json()["fileId"], created.json()["uploadUrl"]
    conforms(doc, "/v1/files/{fileId}", client.get(f"/v1/files/{file_id}"))  # uploading
    put = "/storage/uploads/{file_id}"
    answers = [
        httpx.put(url, content=b"0" * 200_001),
        httpx.put(url.replace("signature=", "signature=x"), content=png()),
        httpx.put(url, content=png(300, 200)),
        httpx.put(url, content=png()),
    ]
    assert [a.status_code for a in answers] == [413, 403, 200, 409]
    for answer in answers:
        conforms(doc, put, answer)
    assert wait_for_file(client, file_id)["status"] == "ready"
    upload = create_upload(client, "a second fox")
    assert httpx.put(upload["uploadUrl"], content=png()).status_code == 200
    wait_for_file(client, upload["fileId"])
    page = client.get("/v1/files", params={"limit": 1})
    conforms(doc, "/v1/files", page)
    after = client.get("/v1/files", params={"limit": 1, "cursor": page.json()["nextCursor"]})
    assert after.json()["files"][0]["fileId"] == file_id
    conforms(doc, "/v1/files", after)
    one = f"/v1/files/{file_id}"
    for path, answer, status in (
        ("/v1/files/{fileId}", client.get(one), 200),
        ("/v1/files/{fileId}/hydrate", client.post(f"{one}/hydrate"), 200),
        ("/v1/files/search", client.post("/v1/files/search", json={"query": "red fox"}), 200),
        (
            "/v1/files/{fileId}/enable-public-preview",
            client.post(f"{one}/enable-public-preview"),
            400,
        ),
        ("/v1/files/{fileId}/archive", client.post(f"{one}/archive"), 200),
        (
            "/v1/files/{fileId}/disable-public-preview",
            client.post(f"{one}/disable-public-preview"),
            200,
        ),
    ):
        assert answer.status_code == status, (path, answer.text)  # 400: an image has no preview
        conforms(doc, path, answer)


def signed_urls_fit(doc: dict[str, Any], client: httpx.Client) -> None:
    file = client.get("/v1/files").json()["files"][0]
    for source in ("downloadSource", "thumbnailSource", "previewSource"):
        url = file[source]["url"]
        answers = [
            httpx.get(url),
            httpx.get(url, headers={"Range": "bytes=0-3"}),
            httpx.get(url, headers={"Range": "bytes=99999999-"}),
            httpx.head(url),
            httpx.get(url.replace("signature=", "signature=x")),
        ]
        assert [a.status_code for a in answers] == [200, 206, 416, 200, 403]
        for answer in answers:
            conforms(doc, "/storage/{key}", answer)


def streams_fit(doc: dict[str, Any], client: httpx.Client, clip: Path) -> None:
    upload = create_upload(client, "a short clip")
    assert httpx.put(upload["uploadUrl"], content=mp4(clip)).status_code == 200
    file_id = wait_for_file(client, upload["fileId"])["fileId"]
    enabled = client.post(f"/v1/files/{file_id}/enable-public-preview")
    conforms(doc, "/v1/files/{fileId}/enable-public-preview", enabled)
    file = wait_for_file(client, file_id, until=("ready",))
    public = httpx.get(file["publicHlsUrl"])
    segment = next(line for line in public.text.splitlines() if line.startswith("http"))
    embed = file["publicHlsUrl"].replace("/public/", "/embed/").removesuffix("/index.m3u8")
    for path, answer in (
        ("/public/{playbackId}/index.m3u8", public),
        ("/public/{playbackId}/{segment}", httpx.get(segment)),
        ("/hls/{fileId}/index.m3u8", httpx.get(file["hlsSource"]["url"])),
        ("/embed/{playbackId}", httpx.get(embed)),
        ("/embed/player/hls.min.js", client.get("/embed/player/hls.min.js")),
    ):
        assert answer.status_code == 200, (path, answer.text)
        conforms(doc, path, answer)
    disabled = client.post(f"/v1/files/{file_id}/disable-public-preview")
    conforms(doc, "/v1/files/{fileId}/disable-public-preview", disabled)
    for path, answer in (
        ("/public/{playbackId}/index.m3u8", httpx.get(file["publicHlsUrl"])),
        ("/public/{playbackId}/{segment}", httpx.get(segment)),
        ("/embed/{playbackId}", httpx.get(embed)),
    ):
        assert answer.status_code == 404, (path, answer.text)
        conforms(doc, path, answer)


def executions_fit(doc: dict[str, Any], client: httpx.Client) -> None:
    """What a server that runs no execution never answers: a succeeded one, its results' files
    and its event stream, and an input file of another type."""
    run = client.post(TOOL, json={"prompt": "a kite", "numResults": 2})
    conforms(doc, TOOL, run)
    execution_id = run.json()["toolExecutionId"]
    assert wait_for_execution(client, execution_id)["status"] == "succeeded"
    one = f"/v1/tools/executions/{execution_id}"
    shown = client.get(one)
    assert [r["type"] for r in shown.json()["results"]] == ["IMAGE", "IMAGE"]
    stream = client.get(f"{one}/events")
    for path, answer in (
        (EXECUTION, shown),
        ("/v1/tools/executions", client.get("/v1/tools/executions")),
        (f"{EXECUTION}/events", stream),
    ):
        assert answer.status_code == 200, answer.text
        conforms(doc, path, answer)
    last = server_sent_events(stream.text)[-1]
    assert last["event"] == "succeeded"  # named as the data says it
    execution = resolve(doc, {"$ref": "#/components/schemas/ExecutedTool"})
    validator(doc, execution).validate(json.loads(last["data"]))
    image_id = shown.json()["results"][0]["fileId"]
    wrong = client.post("/v1/tools/upscale-video", json={"videoStorageFileId": image_id})
    refused(doc, "/v1/tools/upscale-video", wrong, 400, "invalid_file_type")


DEAD_URL = f"http://127.0.0.1:{free_port()}/nothing-listens-here.png"


def test_the_event_stream_is_documented_and_answers_like_it(
    fuzz_server: ServerProcess, doc: dict[str, Any]
) -> None:
    operation = doc["paths"]["/v1/tasks/{task_id}/events"]["get"]
    assert set(operation["responses"]["200"]["content"]) == {"text/event-stream"}
    assert {p.get("name") for p in operation["parameters"]} >= {"Last-Event-ID"}
    with fuzz_server.client() as client:
        missing = client.get("/v1/tasks/gen_abc123def456/events")
        assert missing.status_code == 404
        answer_404 = operation["responses"]["404"]["content"]["application/json"]["schema"]
        validator(doc, answer_404).validate(missing.json())
        assert missing.json()["error"]["code"] == "NOT_FOUND"
        assert missing.headers["x-request-id"]
        bad = client.get("/v1/tasks/gen_abc123def456/events", headers={"Last-Event-ID": "x"})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "BAD_REQUEST"
        task = client.post("/v1/generate", json={"model": "nanobanana", "prompt": "a kite"})
        task_id = task.json()["data"]["id"]
        with client.stream("GET", f"/v1/tasks/{task_id}/events", timeout=10) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.iter_lines()
            first = [next(lines) for _ in range(5)]
    assert first[:2] == ["retry: 2000", ""]
    assert first[2:4] == ["id: 0", "event: pending"]
    assert json.loads(first[4].removeprefix("data: "))["status"] == "pending"


# ------------------------------------------------------------------- what the fuzz run found
# Each was a server fault the fuzz run (or the writing of the document) found; these keep them
# mended.


@pytest.mark.parametrize(
    "method, url",
    [
        ("GET", "/storage/outputs/abcdefghijklmnopqrst/0.png?expires=1&signature=%C3%A9"),
        ("PUT", f"/storage/uploads/{NOBODYS_FILE}?expires=1&signature=%C3%A9"),
        ("GET", f"/hls/{NOBODYS_FILE}/index.m3u8?expires=1&signature=%C3%A9"),
    ],
)
async def test_a_signature_that_is_not_ascii_is_refused(
    client: httpx.AsyncClient, method: str, url: str
) -> None:
    answer = await client.request(method, url, content=b"x" if method == "PUT" else None)
    assert (answer.status_code, answer.json()["code"]) == (403, "invalid_signature")


async def test_an_expiry_of_other_digits_is_refused(client: httpx.AsyncClient) -> None:
    answer = await client.get(
        "/storage/outputs/abcdefghijklmnopqrst/0.png?expires=%C2%B2&signature=x"
    )
    assert (answer.status_code, answer.json()["code"]) == (403, "invalid_signature")


async def test_a_json_body_that_is_not_utf8_is_invalid_parameters(
    client: httpx.AsyncClient,
) -> None:
    headers = {"Content-Type": "application/json"}
    answer = await client.post("/v1/files/upload", content=b"\x80y", headers=headers)
    assert answer.json() == {"message": answer.json().get("message"), "code": "invalid_parameters"}


def test_enabling_the_preview_of_a_file_not_processed_yet_is_a_conflict(
    fuzz_server: ServerProcess,
) -> None:
    key = fuzz_server.new_account("early-preview@example.com")
    with fuzz_server.client(key=key) as client:
        file_id = create_upload(client, "a clip", type="VIDEO")["fileId"]
        answer = client.post(f"/v1/files/{file_id}/enable-public-preview")
    assert (answer.status_code, answer.json()["code"]) == (409, "conflict")


@pytest.mark.parametrize(
    "path, body",
    [
        ("/v1/files/upload", {"displayName": "x", "isTemporary": 0}),
        ("/v1/files/search", {"query": "x", "selfOnly": "yes"}),
        ("/v1/files/search", {"query": "x", "numResults": "5"}),
        ("/v1/files/search", {"query": "x", "numResults": True}),
    ],
)
async def test_a_field_of_another_type_is_invalid_parameters(
    client: httpx.AsyncClient, path: str, body: dict[str, Any]
) -> None:
    answer = await client.post(path, json=body)  # no key: a body the server takes is 401
    assert (answer.status_code, answer.json()["code"]) == (400, "invalid_parameters")


async def test_a_method_a_videogen_path_does_not_take_is_405_with_its_body(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.delete("/v1/files")
    assert answer.status_code == 405 and answer.headers["allow"] == "GET"
    assert set(answer.json()) == {"message", "code"}


async def test_the_client_ip_limit_answers_a_videogen_route_with_its_body(
    tmp_path: Path, doc: dict[str, Any]
) -> None:
    settings = Settings(data_dir=tmp_path, rate_limit="off", rate_limit_ip="1/minute")
    services = Services.build(settings)
    transport = httpx.ASGITransport(app=create_app(services, run_workers=False))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answers = [await client.get("/v1/files") for _ in range(2)]
    finally:
        await services.close()
    assert [a.status_code for a in answers] == [401, 429]
    conforms(doc, "/v1/files", answers[0])
    assert set(answers[1].json()) == {"message", "code"}
    conforms(doc, "/v1/files", answers[1])


def test_a_files_cursor_out_of_time_is_invalid_parameters(fuzz_server: ServerProcess) -> None:
    key = fuzz_server.new_account("far-cursor@example.com")
    far = cursor.pack(videogen_files.CURSOR, 10**18 - 1, 1)
    with fuzz_server.client(key=key) as client:
        answer = client.get("/v1/files", params={"cursor": far})
    assert (answer.status_code, answer.json().get("code")) == (400, "invalid_parameters")


async def test_an_output_url_the_store_cannot_hold_is_404(client: httpx.AsyncClient) -> None:
    answer = await client.get("/files/-MnMe0u7B8zY_2SWKYHlS/0.png")  # the route's pattern takes it
    assert answer.status_code == 404


def test_an_id_with_a_final_newline_is_not_one() -> None:
    assert not is_file_id(NOBODYS_FILE + "\n")
    assert not is_playback_id("vg_play_Zm9vYmFyYmF6cXV4\n")
