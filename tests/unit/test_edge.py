"""The API's edge (``api.edge``) in front of a stand-in app: which requests it serves itself
(the hot routes) and which go on, the request id and rate limit headers on both, domain errors
of the hot routes and refusals by IP limit answered with their envelopes."""

from __future__ import annotations

import json

import httpx
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from hatchery import errors
from hatchery.api.app import error_response
from hatchery.api.edge import Edge
from hatchery.api.envelope import ok
from hatchery.api.ratelimit import Limiter, MemoryWindows

Seen = list[tuple[str, str]]


def edge(seen: Seen, per_ip: str = "off") -> Edge:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(("app", scope["path"]))
        await PlainTextResponse("from the app")(scope, receive, send)

    async def generate(request: Request) -> Response:
        body = await request.body()
        seen.append(("generate", body.decode()))
        return ok({"submitted": json.loads(body)}, 202)

    async def get_task(request: Request, task_id: str) -> Response:
        seen.append(("get_task", task_id))
        if task_id == "gen_missing":
            raise errors.NotFound(f"Task not found: {task_id}")
        return ok({"id": task_id})

    limiter = Limiter(MemoryWindows(), "off", per_ip)
    return Edge(app, limiter, generate, get_task, error_response)


def client(app: Edge) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://edge")


async def test_the_hot_routes_are_served_by_their_endpoints_and_the_rest_by_the_app() -> None:
    seen: Seen = []
    async with client(edge(seen)) as http:
        polled = await http.get("/v1/tasks/gen_1")
        submitted = await http.post("/v1/generate", content=b'{"model":"m"}')
        for method, path in [
            ("GET", "/v1/tasks"),  # the list
            ("GET", "/v1/tasks/gen_1/events"),
            ("POST", "/v1/tasks/gen_1/cancel"),
            ("PUT", "/v1/tasks/gen_1"),  # another method: the app's 405
            ("GET", "/v1/generate"),
            ("GET", "/v1/tasks/"),  # no id
            ("GET", "/healthz"),
        ]:
            other = await http.request(method, path)
            assert other.text == "from the app", (method, path)
    assert (polled.status_code, polled.json()["data"]) == (200, {"id": "gen_1"})
    assert (submitted.status_code, submitted.json()["data"]) == (202, {"submitted": {"model": "m"}})
    assert seen[:2] == [("get_task", "gen_1"), ("generate", '{"model":"m"}')]
    assert [who for who, _ in seen[2:]] == ["app"] * 7


async def test_every_response_has_a_request_id_the_clients_or_a_new_one() -> None:
    async with client(edge([])) as http:
        given = {"X-Request-ID": "abc-123"}
        for path in ["/v1/tasks/gen_1", "/v1/tasks", "/healthz"]:
            assert (await http.get(path, headers=given)).headers["x-request-id"] == "abc-123"
        made = [(await http.get(path)).headers["x-request-id"] for path in ["/v1/tasks/a"] * 3]
        long = await http.get("/healthz", headers={"X-Request-ID": "x" * 100})
    assert len(set(made)) == 3 and all(len(rid) == 32 for rid in made)
    assert long.headers["x-request-id"] == "x" * 64


async def test_a_domain_error_of_a_hot_route_gets_its_envelope_and_headers() -> None:
    async with client(edge([], per_ip="100/minute")) as http:
        missing = await http.get("/v1/tasks/gen_missing", headers={"X-Request-ID": "r1"})
    assert missing.status_code == 404
    assert missing.json() == {
        "data": None,
        "error": {"code": "NOT_FOUND", "message": "Task not found: gen_missing"},
    }
    assert missing.headers["x-request-id"] == "r1"
    assert (missing.headers["ratelimit-limit"], missing.headers["ratelimit-remaining"]) == (
        "100",
        "99",
    )


async def test_the_ip_limit_counts_v1_requests_and_refuses_past_it_before_any_endpoint() -> None:
    seen: Seen = []
    async with client(edge(seen, per_ip="2/minute")) as http:
        answers = [await http.get("/v1/tasks/gen_1") for _ in range(2)]
        refused = await http.post("/v1/generate", content=b"{}")
        listed = await http.get("/v1/tasks")
        health = await http.get("/healthz")  # not limited
    assert [a.status_code for a in answers] == [200, 200]
    assert [a.headers["ratelimit-remaining"] for a in answers] == ["1", "0"]
    assert refused.status_code == listed.status_code == 429
    assert refused.json()["error"]["code"] == "RATE_LIMITED"
    assert int(refused.headers["retry-after"]) >= 1 and refused.headers["x-request-id"]
    assert seen == [("get_task", "gen_1"), ("get_task", "gen_1"), ("app", "/healthz")]
    assert "ratelimit-limit" not in health.headers
