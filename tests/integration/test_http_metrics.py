"""The API's own /metrics, in process: every request counted under its route's template (the
edge's hot routes, the router's, a mounted app's), never under its raw path, and a scrape is
not itself counted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hatchery.api.app import create_app
from hatchery.api.dashboard import STATIC_PATH
from hatchery.services import Services
from hatchery.settings import Settings
from hatchery.store import migrate


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    services = Services.build(
        Settings(data_dir=tmp_path, metrics_token="scrape-me", metrics_refresh=0.001)
    )
    await migrate.upgrade(services.db)
    app = create_app(services, run_workers=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client
    await services.close()


async def counts(http: httpx.AsyncClient) -> dict[tuple[str, str, str], float]:
    response = await http.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
    if response.status_code == 401:  # an app without the token
        response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    found: dict[tuple[str, str, str], float] = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            if s.name == "hatchery_http_requests_total":
                found[s.labels["route"], s.labels["method"], s.labels["status"]] = s.value
    return found


def delta(
    after: dict[tuple[str, str, str], float], before: dict[tuple[str, str, str], float]
) -> dict[tuple[str, str, str], float]:
    keys = set(after) | set(before)
    moved = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in keys}
    return {k: v for k, v in moved.items() if v}


async def test_requests_are_counted_by_route_template_method_and_status(
    http: httpx.AsyncClient,
) -> None:
    before = await counts(http)
    await http.get("/v1/tasks/gen_one")  # the edge's hot route (401: no key)
    await http.get("/v1/tasks/gen_two")
    await http.post("/v1/tasks/gen_one/cancel")  # the router's, with a path parameter
    await http.get("/healthz")
    await http.get("/nowhere/at/all")
    await http.get("/another/random/path")
    await http.request("BREW", "/healthz")
    await http.get(f"{STATIC_PATH}/dashboard.css")
    await http.get("/metrics")  # without the token: refused, and not counted either way
    moved = delta(await counts(http), before)
    assert moved == {
        ("/v1/tasks/{task_id}", "GET", "401"): 2,
        ("/v1/tasks/{task_id}/cancel", "POST", "401"): 1,
        ("/healthz", "GET", "200"): 1,
        ("unmatched", "GET", "404"): 2,
        ("/healthz", "other", "405"): 1,
        (f"{STATIC_PATH}/{{path}}", "GET", "200"): 1,
    }


async def test_metrics_want_the_token_when_one_is_set(http: httpx.AsyncClient) -> None:
    assert (await http.get("/metrics")).status_code == 401
    wrong = await http.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert (
        "hatchery_build_info"
        in (await http.get("/metrics", headers={"Authorization": "Bearer scrape-me"})).text
    )


async def test_requests_the_ip_limit_refuses_are_counted_as_refused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, rate_limit_ip="2/minute", metrics_refresh=0.001)
    services = Services.build(settings)
    await migrate.upgrade(services.db)
    app = create_app(services, run_workers=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        before = await counts(http)
        for _ in range(2):
            assert (await http.get("/v1/tasks/gen_one")).status_code == 401
        assert (await http.get("/v1/tasks/gen_one")).status_code == 429
        assert (await http.post("/v1/generate", json={})).status_code == 429
        assert (await http.get("/v1/account")).status_code == 429
        moved = delta(await counts(http), before)
    await services.close()
    assert moved == {
        ("/v1/tasks/{task_id}", "GET", "401"): 2,
        ("/v1/tasks/{task_id}", "GET", "429"): 1,
        ("/v1/generate", "POST", "429"): 1,
        ("refused", "GET", "429"): 1,
    }
