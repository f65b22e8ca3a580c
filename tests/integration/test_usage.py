"""Usage on a real server, on SQLite and PostgreSQL: a record for each charge (and none for a
failed or cancelled task), the list and its filters, the summary, per-key usage on the account,
image edits, and the database's promise that charges and records match one for one."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.fake_upstreams import png_bytes
from tests.helpers import LocalHTTPServer, ServerProcess, wait_for_task

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def images() -> Iterator[LocalHTTPServer]:
    """Serves a PNG at /ref.png (a reference image for edits) and text elsewhere."""
    png = png_bytes()

    def respond(path: str, method: str) -> tuple[int, dict[str, str], bytes]:
        if path == "/ref.png":
            return 200, {"Content-Type": "image/png"}, png
        return 200, {"Content-Type": "text/plain"}, b"not an image"

    server = LocalHTTPServer(respond)
    yield server
    server.close()


@pytest.fixture(scope="module")
def spent(server: ServerProcess, images: LocalHTTPServer) -> dict[str, Any]:
    """One account's history, made once for the module: key A generates 2 nanobanana images and
    edits one; key B makes a 4K pro image; an edit that fails (its reference is not an image)
    costs nothing. (A cancelled task's charge-free end is tested in test_task_control.)"""
    key_a = server.key
    key_b = server.cli("keys", "create", "local@localhost").stdout.strip().split()[-1]
    assert key_b.startswith("hk_") and key_b != key_a
    with server.client(key_a) as a, server.client(key_b) as b:
        before = a.get("/v1/account").json()["data"]["balance"]
        two = submit(a, model="nanobanana", num_outputs=2)
        edit = submit(a, model="nanobanana", image_urls=[images.url("/ref.png")])
        pro = submit(b, model="nanobanana-pro", resolution="4k")
        failed = submit(a, model="nanobanana", image_urls=[images.url("/text")])
        tasks = {
            name: wait_for_task(a, t["id"])
            for name, t in {"two": two, "edit": edit, "pro": pro, "failed": failed}.items()
        }
        after = a.get("/v1/account").json()["data"]["balance"]
    return {"a": key_a, "b": key_b, "tasks": tasks, "before": before, "after": after}


def submit(client: httpx.Client, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/generate", json={"prompt": "a kite over the sea", **body})
    assert response.status_code == 202, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


def usage(server: ServerProcess, path: str = "/v1/usage", **params: Any) -> httpx.Response:
    with server.client() as client:
        return client.get(path, params=params)


def items(server: ServerProcess, **params: Any) -> list[dict[str, Any]]:
    response = usage(server, **params)
    assert response.status_code == 200, response.text
    return response.json()["data"]["items"]  # type: ignore[no-any-return]


def prefix(key: str) -> str:
    return key[:13]


def test_each_completed_task_has_one_usage_record_of_what_it_was_charged(
    server: ServerProcess, spent: dict[str, Any]
) -> None:
    tasks = spent["tasks"]
    assert [tasks[n]["status"] for n in ("two", "edit", "pro", "failed")] == [
        "completed",
        "completed",
        "completed",
        "failed",
    ]
    records = items(server)
    assert sorted(r["task_id"] for r in records) == sorted(
        tasks[n]["id"] for n in ("two", "edit", "pro")
    )
    by_task = {r["task_id"]: r for r in records}
    two, edit, pro = (by_task[tasks[n]["id"]] for n in ("two", "edit", "pro"))
    assert {k: two[k] for k in ("model", "type", "units", "unit", "unit_price", "cost")} == {
        "model": "nanobanana",
        "type": "image_generate",
        "units": 2,
        "unit": "image",
        "unit_price": "$0.0100",
        "cost": "$0.0200",
    }
    assert (edit["type"], edit["units"], edit["cost"]) == ("image_edit", 1, "$0.0100")
    assert (pro["units"], pro["unit_price"], pro["cost"], pro["resolution"]) == (
        1,
        "$0.0320",
        "$0.0320",
        "4k",
    )
    assert (two["api_key"], edit["api_key"], pro["api_key"]) == (
        prefix(spent["a"]),
        prefix(spent["a"]),
        prefix(spent["b"]),
    )
    assert all(r["id"] == "usage_" + r["task_id"].removeprefix("gen_") for r in records)
    assert all(
        by_task[t["id"]]["cost"] == t["cost"] for t in tasks.values() if t["cost"] != "$0.00"
    )
    assert records == sorted(records, key=lambda r: r["created_at"], reverse=True)


def test_charges_and_usage_records_match_one_for_one_and_add_up_to_the_balance(
    server: ServerProcess, spent: dict[str, Any]
) -> None:
    unmatched = server.query(
        "SELECT l.task_id FROM ledger l LEFT JOIN usage_records u ON u.task_id = l.task_id "
        "WHERE l.kind = 'charge' AND u.task_id IS NULL UNION ALL "
        "SELECT u.task_id FROM usage_records u LEFT JOIN ledger l "
        "ON l.task_id = u.task_id AND l.kind = 'charge' WHERE l.task_id IS NULL"
    )
    assert unmatched == []
    [(charged,)] = server.query("SELECT -SUM(amount_micros) FROM ledger WHERE kind = 'charge'")
    [(recorded,)] = server.query("SELECT SUM(cost_micros) FROM usage_records")
    assert charged == recorded == 62_000  # $0.02 + $0.01 + $0.032
    before, after = (float(spent[k].strip("$")) for k in ("before", "after"))
    assert before - after == pytest.approx(0.062)
    # The daily sums: per key, and again over all keys ('*'), each adding up to the records.
    for keys in ("api_key <> '*'", "api_key = '*'"):
        [(units, cost, requests)] = server.query(
            f"SELECT SUM(units), SUM(cost_micros), SUM(requests) FROM usage_daily WHERE {keys}"
        )
        assert (units, cost, requests) == (4, 62_000, 3), keys


def test_the_list_filters_by_model_type_key_and_day(
    server: ServerProcess, spent: dict[str, Any]
) -> None:
    tasks = spent["tasks"]
    assert [r["task_id"] for r in items(server, type="image_edit")] == [tasks["edit"]["id"]]
    assert [r["task_id"] for r in items(server, model="nanobanana-pro")] == [tasks["pro"]["id"]]
    assert [r["task_id"] for r in items(server, api_key=prefix(spent["b"]))] == [tasks["pro"]["id"]]
    assert len(items(server, api_key=spent["a"])) == 2  # a whole key names its prefix
    today = datetime.now(UTC).date()
    assert len(items(server, start_date=today.isoformat(), end_date=today.isoformat())) == 3
    yesterday = (today - timedelta(days=1)).isoformat()
    assert items(server, end_date=yesterday) == []
    assert items(server, start_date=(today + timedelta(days=1)).isoformat()) == []


def test_the_list_is_paginated_like_every_list(
    server: ServerProcess, spent: dict[str, Any]
) -> None:
    everything = items(server)
    pages = [usage(server, per_page=2, page=p).json()["data"] for p in (1, 2, 3)]
    assert [p["pagination"] for p in pages] == [
        {"page": p, "per_page": 2, "total": 3, "total_pages": 2} for p in (1, 2, 3)
    ]
    assert [r for p in pages for r in p["items"]] == everything
    narrowed = usage(server, per_page=1, type="image_generate").json()["data"]["pagination"]
    assert (narrowed["total"], narrowed["total_pages"]) == (2, 2)


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"start_date": "2026-13-01"}, 400, "start_date must be a date as YYYY-MM-DD"),
        ({"end_date": "2026-05-08T10:00:00Z"}, 400, "end_date must be a date as YYYY-MM-DD"),
        ({"start_date": "2026-W19-5"}, 400, "start_date must be a date as YYYY-MM-DD"),
        ({"start_date": "2026-05-09", "end_date": "2026-05-08"}, 400, "is before start_date"),
        ({"type": "song"}, 400, "type must be one of: image_generate, image_edit"),
        ({"per_page": "101"}, 400, "per_page must be a whole number from 1 to 100"),
        ({"api_key": "hk_nosuchkey1"}, 404, "API key not found"),
    ],
)
def test_bad_filters_say_what_to_fix(
    server: ServerProcess,
    spent: dict[str, Any],
    params: dict[str, str],
    status: int,
    message: str,
) -> None:
    for path in ("/v1/usage", "/v1/usage/summary"):
        if path.endswith("summary") and set(params) & {"type", "per_page"}:
            continue
        response = usage(server, path, **params)
        assert response.status_code == status, (path, response.text)
        error = response.json()["error"]
        assert error["code"] == ("NOT_FOUND" if status == 404 else "BAD_REQUEST")
        assert message in error["message"]


def test_the_summary_sums_per_model_and_narrows_to_a_key_and_days(
    server: ServerProcess, spent: dict[str, Any]
) -> None:
    summary = usage(server, "/v1/usage/summary").json()
    assert summary == {
        "data": [
            {"model": "nanobanana", "total_units": 3, "total_cost": "$0.0300", "request_count": 2},
            {
                "model": "nanobanana-pro",
                "total_units": 1,
                "total_cost": "$0.0320",
                "request_count": 1,
            },
        ],
        "error": None,
    }
    by_b = usage(server, "/v1/usage/summary", api_key=prefix(spent["b"])).json()["data"]
    assert [s["model"] for s in by_b] == ["nanobanana-pro"]
    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    assert usage(server, "/v1/usage/summary", end_date=yesterday).json()["data"] == []


def test_the_account_shows_its_usage_and_that_of_one_key(
    server: ServerProcess, spent: dict[str, Any]
) -> None:
    with server.client() as client:
        whole = client.get("/v1/account").json()["data"]
        one = client.get("/v1/account", params={"api_key": prefix(spent["b"])}).json()["data"]
        unknown = client.get("/v1/account", params={"api_key": "hk_someoneelse"})
    assert (whole["api_key"], whole["usage"]) == (
        None,
        {"request_count": 3, "total_units": 4, "total_cost": "$0.0620"},
    )
    assert (one["api_key"], one["usage"]) == (
        prefix(spent["b"]),
        {"request_count": 1, "total_units": 1, "total_cost": "$0.0320"},
    )
    assert one["balance"] == whole["balance"] == spent["after"]
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "NOT_FOUND"


def test_another_account_sees_none_of_it_and_cannot_name_its_keys(
    server: ServerProcess, spent: dict[str, Any]
) -> None:
    other = server.new_account("usage-other@example.com")
    with server.client(other) as client:
        assert client.get("/v1/usage").json()["data"]["items"] == []
        assert client.get("/v1/usage/summary").json()["data"] == []
        stolen = client.get("/v1/usage", params={"api_key": prefix(spent["a"])})
    assert stolen.status_code == 404


def test_an_edit_is_an_edit_in_the_task_the_list_and_its_webhook(
    server: ServerProcess, spent: dict[str, Any], images: LocalHTTPServer
) -> None:
    edit = spent["tasks"]["edit"]
    assert edit["type"] == "image_edit"
    path = f"/hook/{server.port}"  # the receiver serves this module on both backends
    with server.client() as client:
        listed = client.get("/v1/tasks", params={"type": "image_edit"}).json()["data"]
        generated = client.get("/v1/tasks", params={"type": "image_generate"}).json()["data"]
        hooked = submit(
            client,
            model="nanobanana",
            image_urls=[images.url("/ref.png")],
            webhook_url=images.url(path),
        )
        (hook,) = images.wait_for(1, path=path)
    failed = spent["tasks"]["failed"]  # an edit too: it had a reference image
    assert [t["id"] for t in listed["items"]] == [failed["id"], edit["id"]]
    assert listed["pagination"]["total"] == 2
    assert [t["id"] for t in generated["items"]] == [
        spent["tasks"][n]["id"] for n in ("pro", "two")
    ]
    assert generated["pagination"]["total"] == 2
    assert hook.json()["task_id"] == hooked["id"] and hook.json()["type"] == "image_edit"
