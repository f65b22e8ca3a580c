"""Schemathesis hooks for the fuzz run of ``tests/integration/test_openapi.py`` (loaded through
``SCHEMATHESIS_HOOKS``). Each generated request is changed only in ways that keep it as valid or
as invalid as it was, so the checks still judge the server by the document:

- **Off the network.** The server resolves the host names of ``webhook_url`` and ``image_urls``
  at submit, and of a webhook endpoint's ``url`` when it is registered. Every URL that passes
  the server's own syntax check (the endpoint's once the white space around it is stripped, as
  the server does) gets a public IP literal as its host (judged without DNS; never contacted,
  since the server runs no task and sends no webhook), at the same length where it can; invalid
  URLs are left as they are.
- **Bounded.** A valid ``Prefer`` that asks to wait gets ``, wait=0`` appended (the last
  preference wins): a task never ends here, so ``wait=60`` would hold the request a minute.
- **State the document can only describe.** A valid ``Idempotency-Key`` becomes unique (the same
  key with another body is 422 by design); a valid request (positive case) sends ``cursor``
  without ``page``, ``toolExecutionId`` without ``fileId`` and a ``start_date`` not after
  ``end_date`` (JSON Schema cannot relate two parameters; the document says it in words). An
  account has at most 50 webhook endpoints: once the run has made 40, each new one deletes the
  oldest it made (``after_call``), so a valid registration is never refused for it.

And a few failures are left out (``filter_failure``), each for a reason written down below: an
``Allow`` header that also names the methods of an overlapping documented path, and known server
bugs, each described with its reproduction where it is left out.
"""

from __future__ import annotations

import re
import uuid
from collections import deque
from datetime import date
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import schemathesis

from hatchery.api import watch
from hatchery.api.videogen.openapi_tools import STRIPPED
from hatchery.errors import BadRequest
from hatchery.net.guard import URLRefused, check_url_syntax

PUBLIC_IP = "1.1.1.1"


@schemathesis.hook
def map_case(context: schemathesis.HookContext, case: schemathesis.Case) -> schemathesis.Case:
    """Every generated request (the examples of the document go through the hook below)."""
    positive = case.meta is None or case.meta.generation.mode.is_positive
    if isinstance(case.body, dict):
        case.body = offline_body(case.body, positive)
    if case.headers:
        case.headers = bounded_headers(dict(case.headers))
    if positive and isinstance(case.query, dict):
        case.query = related_query(dict(case.query))
    return case


@schemathesis.hook
def before_add_examples(
    context: schemathesis.HookContext, examples: list[schemathesis.Case]
) -> None:
    for case in examples:
        map_case(context, case)


# --------------------------------------------------------------------------- URLs


def offline_body(body: dict[str, Any], positive: bool) -> dict[str, Any]:
    body = dict(body)
    if "webhook_url" in body:
        body["webhook_url"] = offline_url(body["webhook_url"])
    if "url" in body:  # a webhook endpoint's, stripped by the server first
        body["url"] = offline_padded_url(body["url"])
    if isinstance(body.get("image_urls"), list):
        body["image_urls"] = [offline_url(url) for url in body["image_urls"]]
    return body


def offline_url(url: Any) -> Any:
    """``url`` with a public IP literal as its host if the server takes its syntax, else as is."""
    if not isinstance(url, str) or not _valid_syntax(url):
        return url
    scheme, _, rest = url.partition("://")
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:cut], rest[cut:]
    userinfo, at, hostport = authority.rpartition("@")
    if hostport.startswith("["):  # an IPv6 address
        port = hostport[hostport.find("]") + 1 :]
    else:
        port = hostport[hostport.find(":") :] if ":" in hostport else ""
    rewritten = _same_length(f"{scheme}://{userinfo}{at}{PUBLIC_IP}{port}", tail, len(url))
    if not _valid_syntax(rewritten):  # never send a name to be resolved
        return _same_length(f"http://{PUBLIC_IP}", "/", len(url))
    return rewritten


PADDED = re.compile(f"({STRIPPED}*)(.*?)({STRIPPED}*)", re.DOTALL)


def offline_padded_url(url: Any) -> Any:
    """:func:`offline_url` of what is left once the white space around ``url`` is stripped, the
    white space kept."""
    if not isinstance(url, str):
        return url
    match = PADDED.fullmatch(url)
    assert match is not None
    return match[1] + offline_url(match[2]) + match[3]


def _same_length(head: str, tail: str, length: int) -> str:
    """``head + tail``, padded or trimmed at the end of ``tail`` towards ``length``."""
    missing = length - len(head) - len(tail)
    if missing > 0:
        tail = (tail or "/") + "0" * (missing - (0 if tail else 1))
    elif missing < 0:
        tail = tail[: max(0, len(tail) + missing)]
    return head + tail


def _valid_syntax(url: str) -> bool:
    try:
        check_url_syntax(url)
    except (URLRefused, ValueError):
        return False
    return True


# --------------------------------------------------------------------------- headers and query


def bounded_headers(headers: dict[str, Any]) -> dict[str, Any]:
    for name, value in headers.items():
        lowered = name.lower()
        if lowered == "idempotency-key" and _valid_key(value):
            headers[name] = (uuid.uuid4().hex + value)[: max(len(value), 32)]
        elif lowered == "prefer" and _waits(value):
            headers[name] = f"{value}, wait=0"
    return headers


def _valid_key(value: Any) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= 255 and all(" " <= c <= "~" for c in value)


def _waits(value: Any) -> bool:
    """Whether the server takes this ``Prefer`` and would hold the request for it."""
    if not isinstance(value, str):
        return False
    try:
        return bool(watch.requested_wait(SimpleNamespace(headers={"prefer": value})))  # type: ignore[arg-type]
    except BadRequest:
        return False


def related_query(query: dict[str, Any]) -> dict[str, Any]:
    if query.get("cursor") and query.get("page") not in (None, ""):
        del query["page"]
    if query.get("toolExecutionId") is not None:
        query.pop("fileId", None)
    start, end = _day(query.get("start_date")), _day(query.get("end_date"))
    if start and end and end < start:
        query["start_date"], query["end_date"] = query["end_date"], query["start_date"]
    return query


def _day(value: Any) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else None
    except ValueError:
        return None


# --------------------------------------------------------------------------- failures left out

HTTP_METHODS = {"get", "head", "post", "put", "patch", "delete", "options", "trace"}
SIGNED_PATHS = ("/storage/{key}", "/storage/uploads/{file_id}", "/hls/{fileId}/index.m3u8")


@schemathesis.hook
def filter_failure(
    context: schemathesis.HookContext, failure: Any, case: schemathesis.Case, response: Any
) -> bool:
    """Whether a failure counts: not when the document cannot prevent it."""
    return not overlapping_paths(failure, case, response)


def overlapping_paths(failure: Any, case: schemathesis.Case, response: Any) -> bool:
    """A URL that two documented paths match: ``/v1/files/search`` (POST) is also
    ``/v1/files/{fileId}`` (GET), ``/storage/uploads/{file_id}`` (PUT) also ``/storage/{key}``
    (GET, HEAD). A method of the other path is served there, not 405 (ST204), and ``Allow``
    names the methods of both (ST205), rightly; the checks expect only those of the path the
    request was generated for."""
    if failure.code not in ("ST204", "ST205"):
        return False
    path = unquote(urlsplit(response.request.url).path)
    documented = documented_methods(case.operation.schema.raw_schema, path)
    if failure.code == "ST204":
        return str(response.request.method).upper() in documented
    allow = ",".join(response.headers.get("allow", []))
    return {method.strip().upper() for method in allow.split(",") if method.strip()} == documented


def documented_methods(schema: dict[str, Any], path: str) -> set[str]:
    """The methods of every documented path that the request path ``path`` matches."""
    methods: set[str] = set()
    for template, item in schema["paths"].items():
        if re.fullmatch(template_pattern(template, item), path):
            methods |= {method.upper() for method in item if method in HTTP_METHODS}
    return methods


def template_pattern(template: str, item: dict[str, Any]) -> str:
    """A regular expression of the request paths a path template matches: a parameter is one
    segment, or several if its own pattern takes a ``/`` (``/storage/{key}``)."""
    patterns = {
        parameter["name"]: parameter.get("schema", {}).get("pattern", "")
        for operation in item.values()
        if isinstance(operation, dict)
        for parameter in operation.get("parameters", [])
        if parameter.get("in") == "path"
    }
    parts = re.split(r"(\{[^}]+\})", template)
    return "".join(
        (".+" if "/" in patterns.get(part[1:-1], "") else "[^/]+")
        if part.startswith("{")
        else re.escape(part)
        for part in parts
    )


# --------------------------------------------------------------------------- webhook endpoints

ENDPOINTS = "/v1/webhooks/endpoints"
KEPT = 40  # of the endpoints the run made; an account has at most 50
made: deque[tuple[str, str]] = deque()  # (URL, Authorization) of each endpoint made, oldest first


@schemathesis.hook
def after_call(context: schemathesis.HookContext, case: schemathesis.Case, response: Any) -> None:
    """Once the run has made ``KEPT`` webhook endpoints, each new one deletes the oldest."""
    if case.operation.path != ENDPOINTS or case.method.upper() != "POST":
        return
    if response.status_code != 201:
        return
    at = urlsplit(str(response.request.url))
    endpoint = f"{at.scheme}://{at.netloc}{ENDPOINTS}/{response.json()['endpointId']}"
    made.append((endpoint, _authorization(response)))
    while len(made) > KEPT:
        oldest, authorization = made.popleft()
        httpx.delete(oldest, headers={"Authorization": authorization}, timeout=20)


def _authorization(response: Any) -> str:
    headers = response.request.headers
    return str(headers.get("Authorization") or headers.get("authorization"))
