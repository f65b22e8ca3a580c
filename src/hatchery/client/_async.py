"""The asyncio client: ``AsyncClient`` and its ``tasks`` resource (the same API as ``Client``,
awaited)."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Unpack

import httpx

from hatchery.client._base import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    DEFAULT_WAIT_TIMEOUT,
    BaseClient,
    Call,
    Config,
    GenerateParams,
    M,
    PollSchedule,
    api_error,
    finished,
    http_limits,
    next_page,
    output_paths,
    parsed,
    partial_file,
    request_error,
    retry_after,
    unseen,
)
from hatchery.client.errors import HatcheryError
from hatchery.client.models import Account, Task, TaskPage


class AsyncClient(BaseClient):
    """The asyncio Hatchery API client; see ``Client``. Pass ``http_client`` to bring your own
    ``httpx.AsyncClient``."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(Config.resolve(api_key, base_url, timeout, max_retries))
        self._http = http_client or httpx.AsyncClient(limits=http_limits())
        self._owns_http = http_client is None
        self.tasks = AsyncTasks(self)

    async def generate(
        self,
        *,
        wait: bool = False,
        timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        **params: Unpack[GenerateParams],
    ) -> Task:
        """Submit a task (``model`` and ``prompt`` are required; see ``GenerateParams``). With
        ``wait=True``, return it completed (see ``tasks.wait``)."""
        call = self._submit_call(params)
        task = await self._request(call, Task.from_json)
        return await self.tasks.wait(task.id, timeout=timeout) if wait else task

    async def account(self) -> Account:
        return await self._request(self._account_call(), Account.from_json)

    async def download(self, task: Task | str, directory: str | Path = ".") -> list[Path]:
        """Write every output file of a completed task into ``directory``; returns the paths."""
        task = task if isinstance(task, Task) else await self.tasks.get(task)
        plan = output_paths(task, Path(directory))
        Path(directory).mkdir(parents=True, exist_ok=True)
        return [await self._download(url, path) for url, path in plan]

    async def _download(self, url: str, path: Path) -> Path:
        call = self._file_call(url)
        response = await self._send(call)
        try:
            if not response.is_success:
                await response.aread()
                raise api_error(response)
            with partial_file(path) as out:
                async for chunk in response.aiter_bytes():
                    out.write(chunk)
        except httpx.HTTPError as exc:
            raise request_error(exc, call) from exc
        finally:
            await response.aclose()
        return path

    async def _send(self, call: Call) -> httpx.Response:
        """Send ``call`` (again, as the retry policy allows); returns the last response."""
        attempt = 0
        while True:
            try:
                request = self._build(self._http, call)
                response = await self._http.send(
                    request, stream=call.stream, follow_redirects=call.stream
                )
            except httpx.HTTPError as exc:
                error = request_error(exc, call)
                delay = self.retry.after_error(call, attempt, error)
                if delay is None:
                    raise error from exc
            else:
                delay = self.retry.after_response(call, attempt, response)
                if delay is None:
                    return response
                await response.aclose()
            await asyncio.sleep(delay)
            attempt += 1

    async def _request(self, call: Call, parse: Callable[[Any], M]) -> M:
        return parsed(parse, await self._send(call))

    async def close(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class AsyncTasks:
    """``client.tasks``: read, list and wait for tasks."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def get(self, task_id: str) -> Task:
        return await self._client._request(self._client._task_call(task_id), Task.from_json)

    async def _poll(self, task_id: str, schedule: PollSchedule) -> tuple[Task, float | None]:
        call = self._client._task_call(task_id, schedule)
        response = await self._client._send(call)
        return parsed(Task.from_json, response), retry_after(response.headers)

    async def list(
        self,
        *,
        page: int | None = None,
        per_page: int | None = None,
        status: str | None = None,
        model: str | None = None,
        cursor: str | None = None,
    ) -> TaskPage:
        """One page of the account's tasks, newest first, with its ``pagination``: by ``page``
        number, or from the ``cursor`` a previous page gave (``pagination.cursor``)."""
        call = self._client._list_call(
            page=page, per_page=per_page, status=status, model=model, cursor=cursor
        )
        return await self._client._request(call, TaskPage.from_json)

    async def iter(
        self, *, per_page: int = 100, status: str | None = None, model: str | None = None
    ) -> AsyncIterator[Task]:
        """Every task of the account (or of a status or model), page after page, following
        the server's cursor so that tasks submitted meanwhile neither repeat nor hide one."""
        page = 1
        where: dict[str, Any] = {"page": 1}
        previous: builtins.list[Task] = []
        while True:
            found = await self.list(per_page=per_page, status=status, model=model, **where)
            for task in unseen(found.tasks, previous):
                yield task
            if not found.tasks or not found.pagination.has_next:
                return
            page, where, previous = page + 1, next_page(found, page), found.tasks

    async def wait(
        self,
        task_id: str,
        *,
        timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        on_update: Callable[[Task], None] | None = None,
    ) -> Task:
        """Poll until the task ends. Returns it completed; raises TaskFailedError when it failed
        and WaitTimeoutError when it is still running after ``timeout`` seconds (None: no limit).
        ``on_update`` sees the task after every poll."""
        schedule = PollSchedule(timeout)
        while True:
            try:
                task, hint = await self._poll(task_id, schedule)
            except HatcheryError as exc:
                hint = schedule.failed(exc)
            else:
                if on_update:
                    on_update(task)
                if task.done:
                    return finished(task)
                schedule.polled(task)
            await asyncio.sleep(schedule.next_delay(hint))
