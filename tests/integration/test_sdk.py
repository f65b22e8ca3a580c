"""The SDK against a real server on 127.0.0.1: every method of Client and AsyncClient, and the
errors the server really answers with."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from hatchery.client import (
    AsyncClient,
    BadRequestError,
    Client,
    ForbiddenError,
    InsufficientBalanceError,
    NotFoundError,
    Task,
    TaskFailedError,
    UnauthorizedError,
    ValidationError,
    WaitTimeoutError,
)
from tests.helpers import LocalHTTPServer, ServerProcess

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def key(server: ServerProcess) -> str:
    """A fresh account per module, so listings and balances are this module's own."""
    return server.new_account("sdk@example.com", balance="5.00")


def client_for(server: ServerProcess, key: str, **options: float) -> Client:
    return Client(api_key=key, base_url=server.url, **options)  # type: ignore[arg-type]


def test_generate_wait_and_download(server: ServerProcess, key: str, tmp_path: Path) -> None:
    with client_for(server, key) as client:
        before = client.account().available_usd
        task = client.generate(model="nanobanana", prompt="a lighthouse", num_outputs=2, wait=True)
        assert task.status == "completed" and task.done
        assert task.cost == "$0.0200" and task.cost_usd == Decimal("0.02")
        assert task.created_at and task.completed_at and task.completed_at >= task.created_at
        assert len(task.urls) == 2
        paths = client.download(task, tmp_path / "out")
        assert client.account().available_usd == before - Decimal("0.02")
    assert paths == [tmp_path / "out" / f"{task.id}-{i}.png" for i in range(2)]
    for path in paths:
        assert path.read_bytes().startswith(PNG)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [p.name for p in paths]


def test_generate_without_wait_then_get_and_wait(server: ServerProcess, key: str) -> None:
    with client_for(server, key) as client:
        task = client.generate(
            model="veo3.1", prompt="waves", duration=2, aspect_ratio="9:16", resolution="1k"
        )
        assert task.status in ("pending", "processing") and task.type == "video_generate"
        seen: list[str] = []
        done = client.tasks.wait(task.id, timeout=60, on_update=lambda t: seen.append(t.status))
        assert done.id == task.id and done.status == "completed"
        assert done.output is not None and done.output.duration_seconds == 2
        assert seen[-1] == "completed"
        again = client.tasks.get(task.id)
    assert again == done


def test_download_by_task_id(server: ServerProcess, key: str, tmp_path: Path) -> None:
    with client_for(server, key) as client:
        task = client.generate(model="nanobanana", prompt="a kite", wait=True)
        (path,) = client.download(task.id, tmp_path)
        with pytest.raises(ValueError, match="only a completed task has files"):
            client.download(client.generate(model="nanobanana", prompt="later"), tmp_path)
    assert path.read_bytes().startswith(PNG)
    assert not list(tmp_path.glob("*.part"))


def test_wait_on_a_failed_task_raises_its_error(
    server: ServerProcess, key: str, receiver: LocalHTTPServer
) -> None:
    with client_for(server, key) as client:
        task = client.generate(
            model="nanobanana", prompt="from a reference", image_urls=[receiver.url("/text")]
        )
        with pytest.raises(TaskFailedError) as caught:
            client.tasks.wait(task.id, timeout=60)
        with pytest.raises(TaskFailedError):
            client.generate(
                model="nanobanana", prompt="again", image_urls=[receiver.url("/t")], wait=True
            )
    failed = caught.value.task
    assert failed.id == task.id and failed.status == "failed" and failed.cost == "$0.00"
    assert caught.value.error == failed.error and "image" in failed.error.lower()


def test_list_pages_filters_and_iter(server: ServerProcess) -> None:
    key = server.new_account("lister@example.com")
    with client_for(server, key) as client:
        ids = [client.generate(model="nanobanana", prompt=f"n{i}").id for i in range(5)]
        video = client.generate(model="veo3.1", prompt="v", duration=1, wait=True)
        for task_id in ids:
            client.tasks.wait(task_id, timeout=60)
        first = client.tasks.list(per_page=2)
        assert [t.id for t in first] == [video.id, ids[4]]
        assert (first.pagination.page, first.pagination.total) == (1, 6)
        assert first.pagination.total_pages == 3 and first.pagination.has_next
        last = client.tasks.list(page=3, per_page=2)
        assert [t.id for t in last.items] == ids[1::-1] and not last.pagination.has_next
        assert last.tasks == last.items  # the former name still reads
        assert [t.id for t in client.tasks.list(model="veo3.1").items] == [video.id]
        assert len(client.tasks.list(status="completed", per_page=100)) == 6
        assert client.tasks.list(status="failed").pagination.total == 0
        walked = [t.id for t in client.tasks.iter(per_page=2)]
        assert [t.id for t in client.tasks.iter(model="nanobanana", per_page=4)] == ids[::-1]
    assert walked == [video.id, *ids[::-1]]


def test_account(server: ServerProcess) -> None:
    key = server.new_account("acct@example.com", balance="3.50")
    with client_for(server, key) as client:
        account = client.account()
    assert account.email == "acct@example.com" and account.status == "active"
    assert account.balance == "$3.5000" and account.available_usd == Decimal("3.5")
    assert account.id.startswith("acct_")


def test_wait_times_out_while_the_task_is_still_queued(
    make_server: Callable[..., ServerProcess],
) -> None:
    api_only = make_server(HATCHERY_WORKERS="0")  # nothing runs tasks
    key = api_only.new_account("queued@example.com")
    with client_for(api_only, key) as client:
        task = client.generate(model="nanobanana", prompt="never run")
        with pytest.raises(WaitTimeoutError) as caught:
            client.tasks.wait(task.id, timeout=1.0)
        with pytest.raises(TimeoutError):  # catchable as the built-in, too
            client.generate(model="nanobanana", prompt="nor this", wait=True, timeout=0.5)
    assert caught.value.task.id == task.id and caught.value.task.status == "pending"


def test_the_errors_the_server_answers_with(server: ServerProcess, key: str) -> None:
    with client_for(server, "hk_not_a_key") as client, pytest.raises(UnauthorizedError) as bad:
        client.account()
    assert bad.value.status == 401 and bad.value.code == "UNAUTHORIZED"
    assert bad.value.request_id and len(bad.value.request_id) == 32
    with client_for(server, key) as client:
        with pytest.raises(ValidationError, match="Model") as invalid:
            client.generate(model="dall-e", prompt="x")
        with pytest.raises(NotFoundError, match="gen_missing"):
            client.tasks.get("gen_missing")
        with pytest.raises(NotFoundError):
            client.tasks.get("../account")  # quoted into the path, not resolved by it
        with pytest.raises(BadRequestError, match="per_page"):
            client.tasks.list(per_page=1000)
    assert invalid.value.status == 400 and invalid.value.code == "VALIDATION_ERROR"
    broke = server.new_account("broke@example.com", balance="0.00")
    with client_for(server, broke) as client, pytest.raises(InsufficientBalanceError) as poor:
        client.generate(model="nanobanana", prompt="x")
    assert poor.value.status == 403
    server.change_access("users", "suspend", "broke@example.com")
    with client_for(server, broke) as client, pytest.raises(ForbiddenError):
        client.account()


def test_async_client(server: ServerProcess, key: str, tmp_path: Path) -> None:
    async def run() -> tuple[Task, list[Path], list[str], str]:
        async with AsyncClient(api_key=key, base_url=server.url) as client:
            done = await client.generate(model="nanobanana", prompt="async fox", wait=True)
            paths = await client.download(done, tmp_path)
            queued = await client.generate(model="nanobanana", prompt="async 2")
            assert (await client.tasks.wait(queued.id, timeout=60)).status == "completed"
            assert (await client.tasks.get(done.id)) == done
            page = await client.tasks.list(per_page=1)
            walked = [t.id async for t in client.tasks.iter(per_page=1)]
            assert walked[: len(page)] == [t.id for t in page]
            account = await client.account()
            with pytest.raises(NotFoundError):
                await client.tasks.get("gen_nope")
            return done, paths, walked, account.email

    done, paths, walked, email = asyncio.run(run())
    assert paths[0].read_bytes().startswith(PNG)
    assert done.id in walked and email == "sdk@example.com"


def test_configuration_from_the_environment(
    server: ServerProcess, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HATCHERY_API_KEY", key)
    monkeypatch.setenv("HATCHERY_BASE_URL", server.url + "/")
    with Client() as client:
        assert client.base_url == server.url
        assert client.account().email == "sdk@example.com"


def test_task_control_against_the_real_server(
    make_server: Callable[..., ServerProcess],
) -> None:
    """cancel, stream and Prefer: wait on a server whose API process runs no workers, then with
    a worker process that runs the task."""
    from hatchery.client import ConflictError
    from tests.integration.test_task_control import worker_for

    api = make_server(HATCHERY_WORKERS="0")
    key = api.new_account("control@example.com", balance="1.00")
    with client_for(api, key) as client:
        held = client.generate(model="nanobanana", prompt="held", prefer_wait=1)
        assert held.status == "pending"
        assert client.tasks.get(held.id, wait=1).status == "pending"
        cancelled = client.tasks.cancel(held.id)
        assert cancelled.status == "cancelled" and cancelled.completed_at is not None
        with pytest.raises(ConflictError, match="already cancelled"):
            client.tasks.cancel(held.id)
        assert [e.status for e in client.tasks.stream(held.id)] == ["cancelled"]

        task = client.generate(model="nanobanana", prompt="streamed")
        with worker_for(api):
            events = list(client.tasks.stream(task.id))
        assert [e.status for e in events] == ["pending", "processing", "completed"]
        assert events[-1].terminal and events[-1].task is not None
        assert events[-1].task.urls and events[-1].task.id == task.id
        assert client.account().balance == "$0.9900"


async def test_async_task_control_against_the_real_server(server: ServerProcess, key: str) -> None:
    async with AsyncClient(api_key=key, base_url=server.url) as client:
        done = await client.generate(model="nanobanana", prompt="waited", prefer_wait=30)
        assert done.status == "completed" and done.urls
        seen = [e async for e in client.tasks.stream(done.id)]
        assert [e.status for e in seen] == ["completed"] and seen[0].task == done
