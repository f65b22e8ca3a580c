"""Retries, through a fault-injecting proxy (``tests/fault_proxy.py``) in front of a real server:
what is sent again, how long the SDK waits, what it never resends, and what it raises at the end.
The server's public URL is the proxy, so output files are fetched through it too."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hatchery.client import (
    APIConnectionError,
    APITimeoutError,
    AsyncClient,
    Client,
    InternalServerError,
    NotFoundError,
    RateLimitedError,
    ServiceUnavailableError,
    UpstreamError,
)
from tests.fault_proxy import Fault, FaultProxy, Seen
from tests.helpers import ServerProcess, clean_env, free_port

RETRY_AFTER_1 = Fault(429, {"Retry-After": "1"})


@dataclass
class Stack:
    proxy: FaultProxy
    server: ServerProcess
    key: str

    def client(self, **options: float) -> Client:
        """A client whose every request goes through the proxy."""
        return Client(api_key=self.key, base_url=self.proxy.url, **options)  # type: ignore[arg-type]

    def tasks_of_account(self) -> int:
        with Client(api_key=self.key, base_url=self.server.url) as direct:
            return direct.tasks.list().pagination.total


@pytest.fixture(scope="module")
def running(
    tmp_path_factory: pytest.TempPathFactory,
    new_database: Callable[[], tuple[str | None, str | None]],
) -> Iterator[tuple[FaultProxy, ServerProcess]]:
    proxy = FaultProxy()
    url, key = new_database()
    data_dir = tmp_path_factory.mktemp("retries")
    settings = {"HATCHERY_PUBLIC_URL": proxy.url}
    server = ServerProcess(data_dir, settings, database_url=url, key=key).start()
    proxy.upstream = server.url
    yield proxy, server
    server.stop()
    proxy.close()


@pytest.fixture
def stack(running: tuple[FaultProxy, ServerProcess]) -> Stack:
    """A new account per test and a proxy with no faults and no history."""
    proxy, server = running
    proxy.reset()
    return Stack(proxy, server, server.new_account(f"{uuid.uuid4().hex[:12]}@example.com"))


def gaps(seen: list[Seen]) -> list[float]:
    return [b.at - a.at for a, b in itertools.pairwise(seen)]


def test_a_read_is_retried_after_503_and_429_honouring_retry_after(stack: Stack) -> None:
    with stack.client() as client:
        task = client.generate(model="nanobanana", prompt="retry me")
        stack.proxy.fail("GET", f"/v1/tasks/{task.id}", Fault(503), RETRY_AFTER_1)
        got = client.tasks.get(task.id)
    assert got.id == task.id
    seen = stack.proxy.requests("GET", f"/v1/tasks/{task.id}")
    assert [s.fault.status if s.fault else 200 for s in seen] == [503, 429, 200]
    first, second = gaps(seen)
    assert first >= 0.25  # the first backoff: 0.5 s with jitter down to half
    assert second >= 1.0  # exactly what Retry-After asked, at least


def test_a_submit_is_resent_after_429_and_503_and_makes_one_task(stack: Stack) -> None:
    stack.proxy.fail("POST", "/v1/generate", RETRY_AFTER_1, Fault(503))
    with stack.client() as client:
        task = client.generate(model="nanobanana", prompt="once", wait=True)
        balance = client.account().balance
    assert len(stack.proxy.requests("POST", "/v1/generate")) == 3
    assert stack.tasks_of_account() == 1
    assert task.status == "completed" and balance == "$9.9900"


def keys_sent(stack: Stack) -> list[str]:
    return [s.headers["Idempotency-Key"] for s in stack.proxy.requests("POST", "/v1/generate")]


@pytest.mark.parametrize("status", [500, 502, 504])
def test_a_submit_is_resent_after_a_gateway_error_with_the_same_key(
    stack: Stack, status: int
) -> None:
    stack.proxy.fail("POST", "/v1/generate", Fault(status, body=b"gateway says no"))
    with stack.client() as client:
        task = client.generate(model="nanobanana", prompt="maybe sent")
    keys = keys_sent(stack)
    assert len(keys) == 2 and keys[0] == keys[1]
    assert stack.tasks_of_account() == 1 and task.status == "pending"


def test_a_submit_failing_every_time_raises_the_last_error(stack: Stack) -> None:
    stack.proxy.fail("POST", "/v1/generate", *[Fault(502, body=b"gateway says no")] * 3)
    with stack.client() as client, pytest.raises(UpstreamError) as caught:
        client.generate(model="nanobanana", prompt="never through")
    assert caught.value.status == 502 and "gateway says no" in caught.value.message
    assert len(set(keys_sent(stack))) == 1 and len(keys_sent(stack)) == 3
    assert stack.tasks_of_account() == 0


def test_a_read_is_retried_after_gateway_errors(stack: Stack) -> None:
    stack.proxy.fail("GET", "/v1/account", Fault(502), Fault(504))
    with stack.client(max_retries=2) as client:
        assert client.account().balance == "$10.0000"
    assert len(stack.proxy.requests("GET", "/v1/account")) == 3


def test_retries_stop_at_the_maximum_with_the_last_error(stack: Stack) -> None:
    faults = [Fault(503, {"X-Request-ID": f"stub-{n}"}) for n in range(3)]
    stack.proxy.fail("GET", "/v1/account", *faults)
    with stack.client(max_retries=1) as client, pytest.raises(ServiceUnavailableError) as caught:
        client.account()
    assert len(stack.proxy.requests("GET", "/v1/account")) == 2
    assert caught.value.request_id == "stub-1" and caught.value.code == "SERVICE_UNAVAILABLE"
    with stack.client(max_retries=0) as client, pytest.raises(ServiceUnavailableError):
        client.account()
    assert len(stack.proxy.requests("GET", "/v1/account")) == 3


def test_other_errors_are_not_retried(stack: Stack) -> None:
    stack.proxy.fail("GET", "/v1/account", Fault(500))
    with stack.client() as client:
        with pytest.raises(InternalServerError):
            client.account()
        with pytest.raises(NotFoundError):
            client.tasks.get("gen_not_there")
    assert len(stack.proxy.requests("GET", "/v1/account")) == 1
    assert len(stack.proxy.requests("GET", "/v1/tasks/gen_not_there")) == 1


def test_a_long_retry_after_is_raised_not_slept(stack: Stack) -> None:
    stack.proxy.fail("GET", "/v1/account", Fault(429, {"Retry-After": "120"}))
    with stack.client() as client, pytest.raises(RateLimitedError) as caught:
        client.account()
    assert caught.value.retry_after == 120.0 and caught.value.status == 429
    assert len(stack.proxy.requests("GET", "/v1/account")) == 1


def test_timeouts_retry_reads_and_submits_with_the_same_key(stack: Stack) -> None:
    stall = Fault(stall=2.0)
    stack.proxy.fail("GET", "/v1/account", stall, stall, stall)
    with stack.client(timeout=0.5, max_retries=2) as client, pytest.raises(APITimeoutError) as t:
        client.account()
    assert t.value.request_sent and isinstance(t.value, TimeoutError)
    assert len(stack.proxy.requests("GET", "/v1/account")) == 3
    stack.proxy.fail("POST", "/v1/generate", stall)
    with stack.client(timeout=0.5, max_retries=2) as client:
        task = client.generate(model="nanobanana", prompt="lost answer", idempotency_key="k-1")
    assert keys_sent(stack) == ["k-1", "k-1"]
    assert stack.tasks_of_account() == 1 and task.status == "pending"


def test_an_unreachable_server_is_a_connection_error() -> None:
    with Client(api_key="hk_x", base_url=f"http://127.0.0.1:{free_port()}", max_retries=1) as c:
        with pytest.raises(APIConnectionError) as caught:
            c.generate(model="nanobanana", prompt="nobody home")
    assert not caught.value.request_sent and not isinstance(caught.value, APITimeoutError)


def test_downloads_are_retried_and_the_key_stays_with_the_api(stack: Stack, tmp_path: Path) -> None:
    with Client(api_key=stack.key, base_url=stack.server.url) as client:  # files: another origin
        task = client.generate(model="nanobanana", prompt="a file", num_outputs=2, wait=True)
        stack.proxy.fail("GET", "/files/", Fault(503))
        paths = client.download(task, tmp_path)
    files = stack.proxy.requests("GET", "/files/")
    assert len(files) == 3  # one 503, then both files
    assert all("Authorization" not in s.headers for s in files)
    assert [p.read_bytes()[:4] for p in paths] == [b"\x89PNG"] * 2
    with stack.client() as client:  # the API's own origin: the key goes along
        client.download(task, tmp_path / "again")
    assert stack.proxy.seen[-1].headers["Authorization"] == f"Bearer {stack.key}"


def test_async_client_retries_the_same_way(stack: Stack) -> None:
    async def run() -> None:
        async with AsyncClient(api_key=stack.key, base_url=stack.proxy.url) as client:
            stack.proxy.fail("GET", "/v1/account", Fault(503), RETRY_AFTER_1)
            assert (await client.account()).email.endswith("@example.com")
            stack.proxy.fail("POST", "/v1/generate", Fault(502))
            await client.generate(model="nanobanana", prompt="once, resent")

    asyncio.run(run())
    seen = stack.proxy.requests("GET", "/v1/account")
    assert len(seen) == 3 and gaps(seen)[1] >= 1.0
    keys = keys_sent(stack)
    assert len(keys) == 2 and keys[0] == keys[1]
    assert stack.tasks_of_account() == 1


def test_cli_names_a_completed_task_whose_files_could_not_be_fetched(
    stack: Stack, tmp_path: Path
) -> None:
    stack.proxy.fail("GET", "/files/", Fault(404, body=b"gone"))
    env = clean_env({"HATCHERY_API_KEY": stack.key, "HATCHERY_BASE_URL": stack.server.url})
    result = subprocess.run(
        [sys.executable, "-m", "hatchery", "generate", "paid for", "--json", "--out", "o"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    body = json.loads(result.stdout)
    task = body["task"]
    assert body["error"]["code"] == "DOWNLOAD_FAILED"
    assert body["error"]["message"].startswith(
        f"task {task['id']} completed but its outputs were not saved"
    )
    assert "NOT_FOUND: HTTP 404 Not Found: gone" in body["error"]["message"]
    assert task["status"] == "completed" and task["cost"] == "$0.0100"
    assert list((tmp_path / "o").iterdir()) == []


@pytest.mark.parametrize(
    "lost", [Fault(stall=0.1, after_forwarding=True), Fault(502, after_forwarding=True)]
)
def test_a_submit_whose_answer_was_lost_is_resent_and_the_server_makes_one_task(
    stack: Stack, lost: Fault
) -> None:
    """The server created the task, the answer never arrived: the resend carries the same
    Idempotency-Key, so the server answers with that task instead of making a second one."""
    stack.proxy.fail("POST", "/v1/generate", lost)
    with stack.client() as client:
        task = client.generate(model="nanobanana", prompt="sent once, answered twice")
        done = client.tasks.wait(task.id)
    keys = keys_sent(stack)
    assert len(keys) == 2 and keys[0] == keys[1]
    assert stack.tasks_of_account() == 1 and done.status == "completed"
    with Client(api_key=stack.key, base_url=stack.server.url) as direct:
        assert direct.account().balance == "$9.9900"  # charged once, for the one task
