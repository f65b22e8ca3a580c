"""The asyncio client: ``AsyncClient`` and its ``tasks`` and ``usage`` resources (the same API as
``Client``, awaited)."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator, Awaitable, Callable
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
    Day,
    EventReader,
    GenerateParams,
    Item,
    M,
    PollSchedule,
    api_error,
    event_stream,
    finished,
    held,
    http_limits,
    next_page,
    output_paths,
    parsed,
    partial_file,
    request_error,
    retry_after,
    submitted,
    unseen,
)
from hatchery.client.errors import HatcheryError
from hatchery.client.models import (
    Account,
    Page,
    Task,
    TaskEvent,
    TaskPage,
    UsagePage,
    UsageRecord,
    UsageSummary,
    WebhookDelivery,
)


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
        self.usage = AsyncUsage(self)

    async def generate(
        self,
        *,
        wait: bool = False,
        timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        prefer_wait: float | None = None,
        idempotency_key: str | None = None,
        **params: Unpack[GenerateParams],
    ) -> Task:
        """Submit a task (``model`` and ``prompt`` are required; see ``GenerateParams``). With
        ``wait=True``, return it completed (see ``tasks.wait``). ``prefer_wait`` (whole seconds,
        0 to 60) asks the server to answer only once the task ended or that time passed
        (``Prefer: wait``). The submit carries ``idempotency_key`` (else a new key), the same on
        every retry, so a retried submit never makes a second task; a key used before with
        another body raises IdempotencyMismatchError."""
        call = self._submit_call(params, idempotency_key, prefer_wait)
        task = submitted(await self._send(call))
        if not wait:
            return task
        return finished(task) if task.done else await self.tasks.wait(task.id, timeout=timeout)

    async def account(self, *, api_key: str | None = None) -> Account:
        """The account's balance and usage; with ``api_key`` (a key's prefix, e.g.
        ``hk_AbCdEf1234``, or the whole key), the usage of that key alone (NotFoundError if it
        is not one of the account's keys)."""
        return await self._request(self._account_call(api_key), Account.from_json)

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

    async def _open_stream(self, call: Call) -> httpx.Response:
        """``call`` sent, its answer a successful event stream (else the error, raised)."""
        response = await self._send(call)
        try:
            if not response.is_success:
                await response.aread()
                raise api_error(response)
            event_stream(response, call)
        except httpx.HTTPError as exc:
            await response.aclose()
            raise request_error(exc, call) from exc
        except HatcheryError:
            await response.aclose()
            raise
        return response

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


async def walk(fetch: Callable[..., Awaitable[Page[Item]]], **filters: Any) -> AsyncIterator[Item]:
    """Every item of a list, page after page (by the server's cursor when it gives one), each
    once: an item pushed onto the next page by one added meanwhile is not yielded again."""
    page = 1
    where: dict[str, Any] = {"page": 1}
    previous: list[Item] = []
    while True:
        found = await fetch(**filters, **where)
        for item in unseen(found.items, previous):
            yield item
        if not found.items or not found.pagination.has_next:
            return
        page, where, previous = page + 1, next_page(found, page), found.items


class AsyncTasks:
    """``client.tasks``: read, list and wait for tasks."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def get(self, task_id: str, *, wait: float | None = None) -> Task:
        """The task. With ``wait`` (whole seconds, 0 to 60), the server answers once the task
        ended or that time passed (``Prefer: wait``; a server without it answers at once)."""
        call = self._client._task_call(task_id, wait=wait)
        return await self._client._request(call, Task.from_json)

    async def cancel(self, task_id: str) -> Task:
        """Cancel a pending or processing task; returns it ``cancelled`` (and not charged). A
        task already ended raises ConflictError, and so does a retried cancel whose first try
        went through but whose answer was lost (the task is then cancelled)."""
        return await self._client._request(self._client._cancel_call(task_id), Task.from_json)

    async def webhooks(self, task_id: str) -> list[WebhookDelivery]:
        """The task's webhook messages, newest first, each with every attempt made."""
        call = self._client._webhooks_call(task_id)
        return await self._client._request(call, WebhookDelivery.list_from_json)

    async def redeliver_webhook(self, task_id: str, delivery_id: str) -> WebhookDelivery:
        """Send one of them again now: the same ``webhook-id``, a new timestamp and signature."""
        call = self._client._redeliver_call(task_id, delivery_id)
        return await self._client._request(call, WebhookDelivery.from_json)

    async def _poll(self, task_id: str, schedule: PollSchedule) -> tuple[Task, float | None, bool]:
        call = self._client._task_call(task_id, schedule)
        response = await self._client._send(call)
        return parsed(Task.from_json, response), retry_after(response.headers), held(response)

    async def stream(self, task_id: str) -> AsyncIterator[TaskEvent]:
        """The task's events (``GET /v1/tasks/{id}/events``): its status now, then each change,
        ending after the terminal one (``event.terminal``; ``event.task`` is the whole task). A
        dropped connection is reconnected with ``Last-Event-ID``: every event comes once, in
        order."""
        reader = EventReader(self._client.retry)
        while True:
            call = self._client._events_call(task_id, reader.last_id)
            response = await self._client._open_stream(call)
            try:
                async for chunk in response.aiter_bytes():
                    for event in reader.feed(chunk):
                        yield event
                    if reader.done:
                        return
                error: HatcheryError = reader.ended(call)
            except httpx.HTTPError as exc:
                error = request_error(exc, call)
                error.__cause__ = exc
            finally:
                await response.aclose()
            await asyncio.sleep(reader.reconnect(error))

    async def list(
        self,
        *,
        page: int | None = None,
        per_page: int | None = None,
        status: str | None = None,
        model: str | None = None,
        type: str | None = None,
        cursor: str | None = None,
    ) -> TaskPage:
        """One page of the account's tasks, newest first, with its ``pagination``: by ``page``
        number, or from the ``cursor`` a previous page gave (``pagination.cursor``). ``type`` is
        ``image_generate``, ``image_edit`` or ``video_generate``."""
        call = self._client._list_call(
            page=page, per_page=per_page, status=status, model=model, type=type, cursor=cursor
        )
        return await self._client._request(call, TaskPage.from_json)

    async def iter(
        self,
        *,
        per_page: int = 100,
        status: str | None = None,
        model: str | None = None,
        type: str | None = None,
    ) -> AsyncIterator[Task]:
        """Every task of the account (or of a status, model or type), page after page,
        following the server's cursor so that tasks submitted meanwhile neither repeat nor hide
        one."""
        found = walk(self.list, per_page=per_page, status=status, model=model, type=type)
        async for task in found:
            yield task

    async def wait(
        self,
        task_id: str,
        *,
        timeout: float | None = DEFAULT_WAIT_TIMEOUT,
        on_update: Callable[[Task], None] | None = None,
    ) -> Task:
        """Poll until the task ends. Returns it completed; raises TaskFailedError when it failed
        (TaskCancelledError when cancelled) and WaitTimeoutError when it is still running after
        ``timeout`` seconds (None: no limit). ``on_update`` sees the task after every poll. Each
        poll after the first asks the server to hold it until the task ends (``Prefer: wait``,
        20 s at most); a server that does not is polled on a schedule."""
        schedule = PollSchedule(timeout)
        while True:
            try:
                task, hint, was_held = await self._poll(task_id, schedule)
            except HatcheryError as exc:
                hint, was_held = schedule.failed(exc), False
            else:
                if on_update:
                    on_update(task)
                if task.done:
                    return finished(task)
                schedule.polled(task)
            await asyncio.sleep(schedule.next_delay(hint, was_held))


class AsyncUsage:
    """``client.usage``: what was charged, record by record or summed per model; see ``Usage``."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def list(
        self,
        *,
        page: int | None = None,
        per_page: int | None = None,
        model: str | None = None,
        type: str | None = None,
        api_key: str | None = None,
        start_date: Day | None = None,
        end_date: Day | None = None,
    ) -> UsagePage:
        """One page of the account's usage records (``GET /v1/usage``), newest first, with its
        ``pagination``; ``per_page`` is 1 to 100 (20 by default)."""
        call = self._client._usage_call(
            page=page,
            per_page=per_page,
            model=model,
            type=type,
            api_key=api_key,
            start_date=start_date,
            end_date=end_date,
        )
        return await self._client._request(call, UsagePage.from_json)

    async def iter(
        self,
        *,
        per_page: int = 100,
        model: str | None = None,
        type: str | None = None,
        api_key: str | None = None,
        start_date: Day | None = None,
        end_date: Day | None = None,
    ) -> AsyncIterator[UsageRecord]:
        """Every usage record that matches, page after page, each once."""
        found = walk(
            self.list,
            per_page=per_page,
            model=model,
            type=type,
            api_key=api_key,
            start_date=start_date,
            end_date=end_date,
        )
        async for record in found:
            yield record

    async def summary(
        self,
        *,
        start_date: Day | None = None,
        end_date: Day | None = None,
        api_key: str | None = None,
    ) -> builtins.list[UsageSummary]:
        """The usage summed per model (``GET /v1/usage/summary``): one entry per model used."""
        call = self._client._usage_summary_call(start_date, end_date, api_key)
        return await self._client._request(call, UsageSummary.list_from_json)
