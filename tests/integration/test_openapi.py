"""The OpenAPI document (``GET /openapi.json``, ``api.openapi``): it documents every route and
nothing else, the patterns in it take exactly what the server takes, and Schemathesis finds no
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

from hatchery.api import app as app_module
from hatchery.api import cursor, watch
from hatchery.api import openapi_schemas as wire
from hatchery.api.app import create_app
from hatchery.api.openapi import openapi_document
from hatchery.domain.catalog import Catalog
from hatchery.domain.tasks import TaskStatus, TaskType
from hatchery.errors import BadRequest, HatcheryError
from hatchery.net.guard import URLRefused, check_url_syntax
from hatchery.services import Services
from hatchery.settings import Settings
from tests.helpers import ServerProcess, create_account, free_port, wait_for_task

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

    monkeypatch.setattr(app_module, "openapi_document", build)
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
        (route.path, method)
        for route in iter_route_contexts(app.routes)
        if route.path not in DOC_ROUTES
        for method in route.methods or ()
    }
    documented = {(path, method) for path, method, _ in operations(doc)}
    assert served == documented


def test_v1_operations_take_the_bearer_key_and_list_the_common_errors(
    doc: dict[str, Any],
) -> None:
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "hk_ followed by 40 letters and digits",
        "description": doc["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    for path, method, operation in operations(doc):
        if path.startswith("/v1/"):
            assert operation["security"] == [{"bearerAuth": []}], (method, path)
            assert set(operation["responses"]) >= V1_ERRORS, (method, path)
            retry = operation["responses"]["429"]["headers"]["Retry-After"]
            assert retry["required"] is True
        else:
            assert operation["security"] == [], (method, path)


def test_every_error_answer_is_the_envelope_with_its_codes(doc: dict[str, Any]) -> None:
    codes = set(resolve(doc, {"$ref": "#/components/schemas/Error"})["properties"]["code"]["enum"])
    for path, method, operation in operations(doc):
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
    for path in ("/v1/usage", "/v1/usage/summary", "/v1/account"):
        assert codes(path, "get", "404") == ["NOT_FOUND"]


def test_the_enums_are_the_servers(doc: dict[str, Any]) -> None:
    def subclasses(kind: type[HatcheryError]) -> set[type[HatcheryError]]:
        return {kind}.union(*(subclasses(sub) for sub in kind.__subclasses__()))

    def enum(schema: str, field: str) -> set[str]:
        return set(doc["components"]["schemas"][schema]["properties"][field]["enum"])

    assert enum("Error", "code") == {kind.code for kind in subclasses(HatcheryError)}
    assert enum("Task", "status") == {status.value for status in TaskStatus}
    assert enum("Task", "type") == {kind.value for kind in TaskType}
    assert enum("UsageRecord", "unit") == {kind.unit for kind in TaskType}
    statuses = resolve(doc, {"$ref": "#/components/parameters/Status"})["schema"]["enum"]
    assert set(statuses) == {status.value for status in TaskStatus}


def test_a_submit_links_to_the_task_operations(doc: dict[str, Any]) -> None:
    operation_ids = {op["operationId"] for _, _, op in operations(doc)}
    for status in ("200", "202"):
        links = doc["paths"]["/v1/generate"]["post"]["responses"][status]["links"]
        targets = {link["operationId"] for link in links.values()}
        assert targets == {"getTask", "cancelTask", "streamTaskEvents"} <= operation_ids
        for link in links.values():
            assert link["parameters"] == {"task_id": "$response.body#/data/id"}


def test_the_documented_examples_fit_their_schemas(doc: dict[str, Any]) -> None:
    seen = 0
    for _, _, operation in operations(doc):
        bodies = operation.get("requestBody", {}).get("content", {}).values()
        answers = (m for a in operation["responses"].values() for m in a["content"].values())
        for media in (*bodies, *answers):
            check = validator(doc, media["schema"])
            values = [e["value"] for e in media.get("examples", {}).values()]
            for value in [*values, *([media["example"]] if "example" in media else [])]:
                if isinstance(value, str):  # the event stream's
                    continue
                check.validate(value)
                seen += 1
        for parameter in map(lambda p: resolve(doc, p), operation.get("parameters", [])):
            if "example" in parameter:
                validator(doc, parameter["schema"]).validate(parameter["example"])
                seen += 1
    assert seen > 30


def test_the_document_follows_the_catalog_and_the_settings(tmp_path: Path) -> None:
    catalog_file = tmp_path / "catalog.toml"
    catalog_file.write_text(
        '[models.pixel]\ntype = "image"\nprice_per_output = "0.5"\nproviders = ["local"]\n'
        '[[models.pixel.prices]]\nwhen = { resolution = "4k" }\nprice_per_output = "2"\n'
    )
    custom = Settings(
        data_dir=tmp_path, max_body_bytes=1000, rate_limit="5/second", rate_limit_ip="off"
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


def conforms(doc: dict[str, Any], path: str, response: httpx.Response) -> None:
    """``response`` is one the document describes for the operation at ``path``: a documented
    status and media type, a body of its schema, every required header, headers of their
    schemas."""
    method = response.request.method.lower()
    answer = doc["paths"][path][method]["responses"].get(str(response.status_code))
    assert answer is not None, f"{method} {path}: {response.status_code} is not documented"
    media_type = response.headers["content-type"].split(";")[0]
    assert media_type in answer["content"], (path, response.status_code, media_type)
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


async def test_a_method_a_path_does_not_take_is_405_with_allow_and_the_envelope(
    client: httpx.AsyncClient, doc: dict[str, Any]
) -> None:
    for path, item in doc["paths"].items():
        concrete = path.replace("{task_id}", "gen_abc123def456").replace(
            "{token}/{name}", "abcdefghijklmnopqrst/0.png"
        )
        allowed = sorted(method.upper() for method in item)
        for method in set(METHODS) - set(allowed):
            response = await client.request(method, concrete)
            assert response.status_code == 405, (method, path)
            assert response.headers["allow"] == ", ".join(allowed)
            if method == "HEAD":  # no body
                continue
            message = f"Method {method} is not allowed on {concrete}; use {' or '.join(allowed)}"
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
    """An API-only server (no task ever runs, so no webhook or image URL is ever fetched), rate
    limits off, the real outbound URL policy, and an account with a large balance."""
    guard = tmp_path_factory.mktemp("dns-guard")
    (guard / "sitecustomize.py").write_text(DNS_GUARD)
    settings = {
        "HATCHERY_WORKERS": "0",
        "HATCHERY_RATE_LIMIT": "off",
        "HATCHERY_RATE_LIMIT_IP": "off",
        "HATCHERY_ALLOW_PRIVATE_URLS": "0",
        "PYTHONPATH": str(guard),
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
        timeout=240,
    )


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_schemathesis_finds_no_failure(fuzz_server: ServerProcess) -> None:
    """Every phase and check against the document: no 5xx, no answer off the document, no valid
    request refused, no invalid one taken, 405 with Allow for undocumented methods. FUZZ_SEED
    and FUZZ_EXAMPLES change the run (a failure prints the seed to run it again with)."""
    seed = os.environ.get("FUZZ_SEED", "20260508")
    started = time.monotonic()
    run = schemathesis(
        fuzz_server,
        "--phases=examples,coverage,fuzzing,stateful",
        "--checks=all",
        # The event stream of a task that never runs never ends; its own test is below.
        "--exclude-operation-id=streamTaskEvents",
        f"--max-examples={os.environ.get('FUZZ_EXAMPLES', '200')}",
        f"--seed={seed}",
        # One worker: with two threads, Hypothesis's source parsing trips over CPython 3.11's
        # `ast` ("AST constructor recursion depth mismatch").
        "--workers=1",
        "--request-timeout=20",
        "--no-color",
    )
    output = "\n".join(line[:400] for line in (run.stdout + run.stderr).splitlines())
    report = f"seed {seed}, {time.monotonic() - started:.0f} s:\n{output[-15000:]}"
    assert run.returncode == 0, report
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
