"""Usage through the SDK against a real server on 127.0.0.1: every charge has a record of exactly
what was charged, the summary and the account sum them, and the filters (model, type, key, days)
select what they say; on ``Client`` and ``AsyncClient``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest

from hatchery.client import (
    AsyncClient,
    BadRequestError,
    Client,
    NotFoundError,
    Task,
    TaskFailedError,
    UsageRecord,
)
from tests.fake_upstreams import png_bytes
from tests.helpers import LocalHTTPServer, ServerProcess

BALANCE = Decimal("5.00")


@dataclass
class Charged:
    """A fresh account's key and the tasks it paid for: 2 nanobanana images, 1 nanobanana-pro
    image at 4K, 2 seconds of veo3.1, and a nanobanana-pro edit of a reference image at 2K."""

    key: str
    images: Task
    pro: Task
    video: Task
    edit: Task

    @property
    def prefix(self) -> str:
        return self.key[:13]


@pytest.fixture(scope="module")
def origin() -> Iterator[LocalHTTPServer]:
    server = LocalHTTPServer(lambda path, method: (200, {"Content-Type": "image/png"}, png_bytes()))
    yield server
    server.close()


@pytest.fixture(scope="module")
def charged(server: ServerProcess, origin: LocalHTTPServer) -> Charged:
    key = server.new_account("usage-sdk@example.com", balance=str(BALANCE))
    with Client(api_key=key, base_url=server.url) as client:
        images = client.generate(model="nanobanana", prompt="two kites", num_outputs=2, wait=True)
        pro = client.generate(
            model="nanobanana-pro", prompt="a harbour", resolution="4k", prefer_wait=30
        )
        video = client.generate(model="veo3.1", prompt="waves", duration=2, wait=True)
        edit = client.generate(
            model="nanobanana-pro",
            prompt="the same, in blue",
            resolution="2k",
            image_urls=[origin.url("/ref.png")],
            wait=True,
        )
    assert pro.status == "completed"
    return Charged(key, images, pro, video, edit)


def client_for(server: ServerProcess, key: str) -> Client:
    return Client(api_key=key, base_url=server.url)


def fields(record: UsageRecord) -> tuple[object, ...]:
    return (
        record.task_id,
        record.model,
        record.type,
        record.units,
        record.unit,
        record.unit_price,
        record.cost,
        record.resolution,
    )


def test_each_charge_has_a_record_of_exactly_what_was_charged(
    server: ServerProcess, charged: Charged
) -> None:
    c = charged
    with client_for(server, c.key) as client:
        page = client.usage.list()
        account = client.account()
    assert [fields(r) for r in page] == [
        (c.edit.id, "nanobanana-pro", "image_edit", 1, "image", "$0.0160", "$0.0160", "2k"),
        (c.video.id, "veo3.1", "video_generate", 2, "second", "$0.0800", "$0.1600", "1k"),
        (c.pro.id, "nanobanana-pro", "image_generate", 1, "image", "$0.0320", "$0.0320", "4k"),
        (c.images.id, "nanobanana", "image_generate", 2, "image", "$0.0100", "$0.0200", "1k"),
    ]
    assert [r.cost for r in page] == [c.edit.cost, c.video.cost, c.pro.cost, c.images.cost]
    assert [r.id for r in page] == ["usage_" + r.task_id.removeprefix("gen_") for r in page]
    assert {r.api_key for r in page} == {c.prefix}
    assert all(r.created_at is not None for r in page)
    assert c.pro.output is not None and c.pro.output.resolution == "4k"
    assert c.edit.type == "image_edit" and c.edit.output and c.edit.output.resolution == "2k"
    assert (page.pagination.page, page.pagination.total, page.pagination.total_pages) == (1, 4, 1)
    spent = sum((r.cost_usd for r in page), start=Decimal(0))
    assert spent == Decimal("0.228") and account.available_usd == BALANCE - spent


def test_the_summary_and_the_account_sum_the_records(
    server: ServerProcess, charged: Charged
) -> None:
    with client_for(server, charged.key) as client:
        summary = client.usage.summary()
        account = client.account()
    by_model = {e.model: (e.request_count, e.total_units, e.total_cost) for e in summary}
    assert by_model == {
        "nanobanana": (1, 2, "$0.0200"),
        "nanobanana-pro": (2, 2, "$0.0480"),
        "veo3.1": (1, 2, "$0.1600"),
    }
    assert [e.model for e in summary] == ["nanobanana", "nanobanana-pro", "veo3.1"]
    assert sum(e.total_cost_usd for e in summary) == Decimal("0.228")
    assert account.api_key is None and account.usage is not None
    assert (account.usage.request_count, account.usage.total_units) == (4, 6)
    assert account.usage.total_cost == "$0.2280"
    assert account.usage.total_cost_usd == Decimal("0.228")


def test_a_failed_task_has_no_record(
    server: ServerProcess, charged: Charged, receiver: LocalHTTPServer
) -> None:
    key = server.new_account("usage-failed@example.com")
    with client_for(server, key) as client:
        done = client.generate(model="nanobanana", prompt="kept", wait=True)
        with pytest.raises(TaskFailedError):
            client.generate(
                model="nanobanana", prompt="x", image_urls=[receiver.url("/text")], wait=True
            )
        records = list(client.usage.iter())
        summary = client.usage.summary()
        usage = client.account().usage
    assert [r.task_id for r in records] == [done.id]
    assert [(e.model, e.request_count, e.total_cost) for e in summary] == [
        ("nanobanana", 1, "$0.0100")
    ]
    assert usage is not None and usage.request_count == 1 and usage.total_cost == "$0.0100"


def test_filters_by_model_and_type(server: ServerProcess, charged: Charged) -> None:
    c = charged
    with client_for(server, c.key) as client:
        pro = client.usage.list(model="nanobanana-pro")
        edits = client.usage.list(type="image_edit")
        images = client.usage.list(type="image_generate", model="nanobanana-pro")
        none = client.usage.list(model="veo3.1", type="image_generate")
        edited_tasks = client.tasks.list(type="image_edit")
        video_tasks = [t.id for t in client.tasks.iter(type="video_generate")]
    assert [r.task_id for r in pro] == [c.edit.id, c.pro.id] and pro.pagination.total == 2
    assert [r.task_id for r in edits] == [c.edit.id]
    assert [r.task_id for r in images] == [c.pro.id]
    assert none.items == [] and none.pagination.total == 0
    assert [t.id for t in edited_tasks] == [c.edit.id] and edited_tasks.pagination.total == 1
    assert video_tasks == [c.video.id]


def test_filters_by_day(server: ServerProcess, charged: Charged) -> None:
    with client_for(server, charged.key) as client:
        days = [r.created_at.date() for r in client.usage.iter() if r.created_at]
        first, last = min(days), max(days)
        within = client.usage.list(start_date=first, end_date=last.isoformat())
        after = client.usage.list(start_date=last + timedelta(days=1))
        before = client.usage.list(end_date=first - timedelta(days=1))
        summed = client.usage.summary(start_date=first, end_date=last)
        nothing = client.usage.summary(start_date=last + timedelta(days=1))
    assert len(days) == 4 and within.pagination.total == 4
    assert after.items == [] and before.items == [] and after.pagination.total == 0
    assert sum(e.request_count for e in summed) == 4 and nothing == []


def test_pages_and_iter(server: ServerProcess, charged: Charged) -> None:
    c = charged
    with client_for(server, c.key) as client:
        first = client.usage.list(per_page=3)
        second = client.usage.list(per_page=3, page=2)
        walked = [r.task_id for r in client.usage.iter(per_page=1)]
    assert [r.task_id for r in first] == [c.edit.id, c.video.id, c.pro.id]
    assert first.pagination.has_next and first.pagination.total_pages == 2
    assert [r.task_id for r in second] == [c.images.id] and not second.pagination.has_next
    assert walked == [c.edit.id, c.video.id, c.pro.id, c.images.id]


def test_usage_of_one_key(server: ServerProcess) -> None:
    email = "usage-keys@example.com"
    first = server.new_account(email)
    second = server.cli("keys", "create", email).stdout.split()[-1]
    other_account = server.new_account("usage-other@example.com")
    with client_for(server, first) as client:
        one = client.generate(model="nanobanana", prompt="first key", wait=True)
    with client_for(server, second) as client:
        two = client.generate(model="nanobanana", prompt="second key", num_outputs=3, wait=True)
    with client_for(server, first) as client:
        by_prefix = client.usage.list(api_key=second[:13])
        by_key = client.usage.list(api_key=second)
        summary = client.usage.summary(api_key=first[:13])
        narrowed = client.account(api_key=second)
        everything = client.account()
        for foreign in ("hk_NotMine0000", other_account[:13]):
            with pytest.raises(NotFoundError, match="not one of this account's keys"):
                client.usage.list(api_key=foreign)
            with pytest.raises(NotFoundError):
                client.usage.summary(api_key=foreign)
            with pytest.raises(NotFoundError):
                client.account(api_key=foreign)
    assert [(r.task_id, r.api_key, r.units) for r in by_prefix] == [(two.id, second[:13], 3)]
    assert by_key == by_prefix
    assert [(e.request_count, e.total_units, e.total_cost) for e in summary] == [(1, 1, "$0.0100")]
    assert narrowed.api_key == second[:13] and narrowed.usage is not None
    assert (narrowed.usage.request_count, narrowed.usage.total_cost) == (1, "$0.0300")
    assert everything.usage is not None and everything.usage.request_count == 2
    assert everything.usage.total_cost == "$0.0400" and one.cost == "$0.0100"


def test_bad_filters_are_refused_with_what_to_fix(server: ServerProcess, charged: Charged) -> None:
    with client_for(server, charged.key) as client:
        with pytest.raises(BadRequestError, match="start_date must be a date as YYYY-MM-DD"):
            client.usage.list(start_date="2026-1-1")
        with pytest.raises(BadRequestError, match=r"end_date \(2026-12-01\) is before start_date"):
            client.usage.summary(start_date="2026-12-02", end_date="2026-12-01")
        with pytest.raises(BadRequestError, match="per_page"):
            client.usage.list(per_page=101)
        with pytest.raises(BadRequestError, match="type must be one of"):
            client.usage.list(type="image")
        with pytest.raises(BadRequestError, match="type must be one of"):
            client.tasks.list(type="video")


def test_async_client(server: ServerProcess, charged: Charged) -> None:
    async def run() -> tuple[object, ...]:
        async with AsyncClient(api_key=charged.key, base_url=server.url) as client:
            page = await client.usage.list(per_page=2, model="nanobanana-pro")
            walked = [r.task_id async for r in client.usage.iter(per_page=3)]
            summary = await client.usage.summary(api_key=charged.prefix)
            account = await client.account(api_key=charged.key)
            edits = await client.tasks.list(type="image_edit")
            with pytest.raises(NotFoundError):
                await client.usage.list(api_key="hk_NotMine0000")
            return page, walked, summary, account, edits

    page, walked, summary, account, edits = asyncio.run(run())
    with client_for(server, charged.key) as client:
        assert list(page) == client.usage.list(per_page=2, model="nanobanana-pro").items
        assert walked == [r.task_id for r in client.usage.iter()]
        assert summary == client.usage.summary()
        assert account.usage == client.account().usage
    assert len(walked) == 4 and account.api_key == charged.prefix
    assert [t.id for t in edits] == [charged.edit.id]
