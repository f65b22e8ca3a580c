"""The SDK's usage and list models, and the requests ``usage.list``, ``usage.iter``,
``usage.summary``, ``account`` and ``tasks.list``/``tasks.iter`` send, against the fake API on
127.0.0.1 (``tests/fake_task_api.py``), on ``Client`` and ``AsyncClient``."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import httpx
import pytest
from tests.fake_task_api import KEY, FakeTaskAPI

from hatchery.client import (
    Account,
    APIError,
    AsyncClient,
    Client,
    NotFoundError,
    Page,
    TaskPage,
    UsagePage,
    UsageRecord,
    UsageSummary,
    UsageTotals,
)
from hatchery.client._base import day, query

RECORD = {
    "id": "usage_k3v9x0q2m8a1b7c4",
    "task_id": "gen_k3v9x0q2m8a1b7c4",
    "model": "nanobanana-pro",
    "type": "image_edit",
    "units": 2,
    "unit": "image",
    "unit_price": "$0.0320",
    "cost": "$0.0640",
    "resolution": "4k",
    "api_key": "hk_AbCdEf1234",
    "created_at": "2026-12-02T14:04:06Z",
}


@pytest.fixture
def api() -> Iterator[FakeTaskAPI]:
    fake = FakeTaskAPI()
    yield fake
    fake.close()


def client(api: FakeTaskAPI) -> Client:
    return Client(api_key="hk_test", base_url=api.url, max_retries=0)


def completed(api: FakeTaskAPI, count: int) -> list[str]:
    """``count`` tasks completed (and charged $0.0100 each), oldest first."""
    return [api.create("completed") for _ in range(count)]


# the models


def test_a_usage_record_reads_every_field_and_its_money_as_decimals() -> None:
    record = UsageRecord.from_json(RECORD)
    assert (record.id, record.task_id) == ("usage_k3v9x0q2m8a1b7c4", "gen_k3v9x0q2m8a1b7c4")
    assert (record.model, record.type, record.units, record.unit) == (
        "nanobanana-pro",
        "image_edit",
        2,
        "image",
    )
    assert (record.unit_price, record.cost) == ("$0.0320", "$0.0640")
    assert record.unit_price_usd == Decimal("0.032") and record.cost_usd == Decimal("0.064")
    assert (record.resolution, record.api_key) == ("4k", "hk_AbCdEf1234")
    assert record.created_at == datetime(2026, 12, 2, 14, 4, 6, tzinfo=UTC)
    assert record.raw is RECORD


def test_a_record_without_a_size_or_key_has_none() -> None:
    record = UsageRecord.from_json({**RECORD, "resolution": None, "api_key": None})
    assert record.resolution is None and record.api_key is None


def test_a_usage_page_is_its_records_and_walks_by_page_number() -> None:
    pagination = {"page": 1, "per_page": 1, "total": 2, "total_pages": 2}
    page = UsagePage.from_json({"items": [RECORD], "pagination": pagination})
    assert isinstance(page, Page) and len(page) == 1
    assert [r.id for r in page] == [RECORD["id"]] and page.items[0].cost == "$0.0640"
    assert page.pagination.has_next and page.pagination.cursor is None
    last = UsagePage.from_json({"items": [], "pagination": {**pagination, "page": 2}})
    assert not last.pagination.has_next and list(last) == []


def test_a_summary_is_a_list_of_typed_entries() -> None:
    data = [
        {"model": "nanobanana", "total_units": 2, "total_cost": "$0.0200", "request_count": 1},
        {"model": "veo3.1", "total_units": 16, "total_cost": "$1.2800", "request_count": 2},
    ]
    first, second = UsageSummary.list_from_json(data)
    assert (first.model, first.request_count, first.total_units) == ("nanobanana", 1, 2)
    assert first.total_cost == "$0.0200" and first.total_cost_usd == Decimal("0.02")
    assert second.total_cost_usd == Decimal("1.28") and second.raw is data[1]
    assert UsageSummary.list_from_json([]) == []
    with pytest.raises(TypeError, match="is a list"):
        UsageSummary.list_from_json({"model": "nanobanana"})


def test_an_account_reads_its_usage_and_the_key_it_is_narrowed_to() -> None:
    usage = {"request_count": 3, "total_units": 5, "total_cost": "$0.2120"}
    base = {"id": "acct_1", "email": "a@b", "status": "active", "balance": "$9.7880"}
    account = Account.from_json({**base, "api_key": "hk_AbCdEf1234", "usage": usage})
    assert account.api_key == "hk_AbCdEf1234"
    assert account.usage == UsageTotals(3, 5, "$0.2120", raw=usage)
    assert account.usage.total_cost_usd == Decimal("0.212")
    everything = Account.from_json({**base, "api_key": None, "usage": usage})
    assert everything.api_key is None and everything.usage is not None
    older = Account.from_json(base)  # a server that does not report usage
    assert older.usage is None and older.api_key is None and older.balance == "$9.7880"


def test_a_task_page_reads_items_or_an_older_servers_tasks() -> None:
    task = {"id": "gen_a", "status": "completed", "output": {"urls": ["u"], "resolution": "2k"}}
    pagination = {"page": 1, "per_page": 20, "total": 1, "total_pages": 1}
    page = TaskPage.from_json({"items": [task], "pagination": pagination})
    older = TaskPage.from_json({"tasks": [task], "pagination": pagination})
    assert [t.id for t in page.items] == [t.id for t in older.items] == ["gen_a"]
    assert page.tasks is page.items and older.tasks == older.items
    assert page.items[0].output is not None and page.items[0].output.resolution == "2k"
    assert TaskPage.from_json({"items": [], "tasks": [task]}).items == []  # items wins
    with pytest.raises(dataclasses.FrozenInstanceError):
        page.tasks = []  # type: ignore[misc]


def test_an_output_that_does_not_say_its_size_has_none() -> None:
    page = TaskPage.from_json({"items": [{"id": "gen_a", "status": "completed", "output": {}}]})
    assert page.items[0].output is not None and page.items[0].output.resolution is None


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        (date(2026, 12, 1), "2026-12-01"),
        ("2026-12-01", "2026-12-01"),
        ("yesterday", "yesterday"),  # the server says what is wrong with it
        (datetime(2026, 12, 1, 23, 30), "2026-12-01"),
        (datetime(2026, 12, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5))), "2026-12-02"),
        (datetime(2026, 12, 2, 0, 30, tzinfo=timezone(timedelta(hours=2))), "2026-12-01"),
        (None, None),
    ],
)
def test_a_day_is_sent_as_its_utc_date(given: Any, sent: str | None) -> None:
    assert day(given) == sent


def test_query_parameters_leave_out_what_was_not_given() -> None:
    assert query(page=None, model="m", start_date=date(2026, 1, 2), per_page=5) == {
        "model": "m",
        "start_date": "2026-01-02",
        "per_page": 5,
    }


# the requests


def test_usage_list_sends_every_filter_given(api: FakeTaskAPI) -> None:
    with client(api) as c:
        page = c.usage.list(
            page=2,
            per_page=5,
            model="nanobanana",
            type="image_generate",
            api_key="hk_test",
            start_date=date(2026, 12, 1),
            end_date="2026-12-31",
        )
    (seen,) = api.requests("GET", "/v1/usage")
    assert seen.path.startswith("/v1/usage?") and seen.headers["Authorization"] == "Bearer hk_test"
    assert seen.query == {
        "page": "2",
        "per_page": "5",
        "model": "nanobanana",
        "type": "image_generate",
        "api_key": "hk_test",
        "start_date": "2026-12-01",
        "end_date": "2026-12-31",
    }
    assert page.items == [] and page.pagination.page == 2


def test_usage_list_reads_the_records_newest_first(api: FakeTaskAPI) -> None:
    ids = completed(api, 3)
    api.create("failed")  # not charged: no record
    with client(api) as c:
        page = c.usage.list()
        only = c.usage.list(per_page=1, page=3)
    (seen, _) = api.requests("GET", "/v1/usage")
    assert seen.path == "/v1/usage" and seen.query == {}
    assert [r.task_id for r in page] == ids[::-1]
    assert all(isinstance(r, UsageRecord) and r.cost_usd == Decimal("0.01") for r in page)
    assert (page.pagination.total, page.pagination.has_next) == (3, False)
    assert [r.task_id for r in only] == ids[:1]
    assert (only.pagination.page, only.pagination.total_pages) == (3, 3)


def test_usage_iter_walks_every_page_and_yields_each_record_once(api: FakeTaskAPI) -> None:
    ids = completed(api, 5)
    with client(api) as c:
        walked = c.usage.iter(per_page=2, model="nanobanana", start_date=date(2026, 1, 1))
        first = [next(walked).task_id, next(walked).task_id]
        api.create("completed")  # a charge meanwhile pushes every record one place down
        rest = [r.task_id for r in walked]
    assert first + rest == ids[::-1]
    seen = api.requests("GET", "/v1/usage")
    assert [s.query.get("page") for s in seen] == ["1", "2", "3"]
    assert all(
        s.query["per_page"] == "2"
        and s.query["model"] == "nanobanana"
        and s.query["start_date"] == "2026-01-01"
        for s in seen
    )


def test_usage_summary_sends_its_filters_and_reads_an_entry_per_model(api: FakeTaskAPI) -> None:
    *_, three = completed(api, 3)
    api.charged(three, model="veo3.1", units=8, unit="second", cost="$0.6400")
    with client(api) as c:
        summary = c.usage.summary(
            start_date=date(2026, 1, 1), end_date=datetime(2099, 1, 1, tzinfo=UTC), api_key=KEY
        )
        everything = c.usage.summary()
    first, plain = api.requests("GET", "/v1/usage/summary")
    assert first.query == {"start_date": "2026-01-01", "end_date": "2099-01-01", "api_key": KEY}
    assert plain.path == "/v1/usage/summary"
    assert summary == everything
    assert [(e.model, e.request_count, e.total_units, e.total_cost) for e in summary] == [
        ("nanobanana", 2, 2, "$0.0200"),
        ("veo3.1", 1, 8, "$0.6400"),
    ]
    assert sum(e.total_cost_usd for e in summary) == Decimal("0.66")


def test_account_sends_the_key_to_narrow_its_usage_to(api: FakeTaskAPI) -> None:
    completed(api, 2)
    with client(api) as c:
        everything = c.account()
        narrowed = c.account(api_key=KEY)
    plain, keyed = api.requests("GET", "/v1/account")
    assert plain.path == "/v1/account" and keyed.query == {"api_key": KEY}
    assert everything.api_key is None and narrowed.api_key == KEY
    assert everything.usage is not None and narrowed.usage is not None
    assert (everything.usage.request_count, everything.usage.total_units) == (2, 2)
    assert everything.usage.total_cost_usd == Decimal("0.02")


def test_a_key_that_is_not_the_accounts_is_not_found(api: FakeTaskAPI) -> None:
    with client(api) as c:
        with pytest.raises(NotFoundError, match="hk_other"):
            c.usage.list(api_key="hk_other")
        with pytest.raises(NotFoundError):
            c.usage.summary(api_key="hk_other")
        with pytest.raises(NotFoundError):
            c.account(api_key="hk_other")


def test_tasks_list_and_iter_send_the_type(api: FakeTaskAPI) -> None:
    ids = completed(api, 3)
    with client(api) as c:
        page = c.tasks.list(type="image_generate", status="completed", per_page=2)
        walked = [t.id for t in c.tasks.iter(type="image_generate", per_page=2)]
        videos = c.tasks.list(type="video_generate")
    seen = api.requests("GET", "/v1/tasks")
    assert seen[0].query == {"type": "image_generate", "status": "completed", "per_page": "2"}
    assert [s.query.get("type") for s in seen] == ["image_generate"] * 3 + ["video_generate"]
    assert [t.id for t in page.items] == ids[:0:-1] and walked == ids[::-1]
    assert len(videos) == 0 and videos.pagination.total == 0


def test_an_older_server_answering_data_tasks_still_lists(api: FakeTaskAPI) -> None:
    ids = completed(api, 3)
    api.legacy_lists = True
    with client(api) as c:
        page = c.tasks.list(per_page=2)
        walked = [t.id for t in c.tasks.iter(per_page=2)]
    assert [t.id for t in page.items] == [t.id for t in page.tasks] == ids[:0:-1]
    assert walked == ids[::-1]


def test_data_not_shaped_like_usage_is_an_api_error() -> None:
    answers = {
        "/v1/usage": {"records": []},
        "/v1/usage/summary": {"model": "nanobanana"},
    }

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": answers[request.url.path], "error": None})

    http = httpx.Client(transport=httpx.MockTransport(handle))
    with Client(api_key="hk_test", base_url="http://api.test", http_client=http) as c:
        with pytest.raises(APIError, match="cannot read"):
            c.usage.list()
        with pytest.raises(APIError, match="cannot read"):
            c.usage.summary()


def test_the_async_client_sends_the_same_requests(api: FakeTaskAPI) -> None:
    ids = completed(api, 3)

    async def run() -> tuple[Any, ...]:
        async with AsyncClient(api_key="hk_test", base_url=api.url) as c:
            page = await c.usage.list(per_page=2, type="image_generate", end_date=date(2099, 1, 1))
            walked = [r.task_id async for r in c.usage.iter(per_page=2, api_key=KEY)]
            summary = await c.usage.summary(start_date="2026-01-01")
            account = await c.account(api_key=KEY)
            tasks = [t.id async for t in c.tasks.iter(per_page=2, type="image_generate")]
            with pytest.raises(NotFoundError):
                await c.usage.list(api_key="hk_other")
            return page, walked, summary, account, tasks

    page, walked, summary, account, tasks = asyncio.run(run())
    assert [r.task_id for r in page] == ids[:0:-1] and walked == tasks and walked == ids[::-1]
    assert [(e.model, e.request_count) for e in summary] == [("nanobanana", 3)]
    assert account.api_key == KEY and account.usage.total_cost == "$0.0300"
    (summed,) = api.requests("GET", "/v1/usage/summary")
    listed = [s.query for s in api.requests("GET", "/v1/usage") if s is not summed]
    assert summed.query == {"start_date": "2026-01-01"}
    assert listed == [
        {"per_page": "2", "type": "image_generate", "end_date": "2099-01-01"},
        {"page": "1", "per_page": "2", "api_key": KEY},
        {"page": "2", "per_page": "2", "api_key": KEY},
        {"api_key": "hk_other"},
    ]
