"""The blocking client: ``Client`` and its ``tasks`` and ``usage`` resources."""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable, Iterator
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


class Client(BaseClient):
    """A Hatchery API client. ``api_key`` and ``base_url`` default to ``HATCHERY_API_KEY`` and
    ``HATCHERY_BASE_URL``; pass ``http_client`` to bring your own ``httpx.Client``."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx.Client | None = None,
    ) -> None:
        super().__init__(Config.resolve(api_key, base_url, timeout, max_retries))
        self._http = http_client or httpx.Client(limits=http_limits())
        self._owns_http = http_client is None
        self.tasks = Tasks(self)
        self.usage = Usage(self)

    def generate(
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
        task = submitted(self._send(call))
        if not wait:
            return task
        return finished(task) if task.done else self.tasks.wait(task.id, timeout=timeout)

    def account(self, *, api_key: str | None = None) -> Account:
        """The account's balance and usage; with ``api_key`` (a key's prefix, e.g.
        ``hk_AbCdEf1234``, or the whole key), the usage of that key alone (NotFoundError if it
        is not one of the account's keys)."""
        return self._request(self._account_call(api_key), Account.from_json)

    def download(self, task: Task | str, directory: str | Path = ".") -> list[Path]:
        """Write every output file of a completed task into ``directory``; returns the paths."""
        task = task if isinstance(task, Task) else self.tasks.get(task)
        plan = output_paths(task, Path(directory))
        Path(directory).mkdir(parents=True, exist_ok=True)
        return [self._download(url, path) for url, path in plan]

    def _download(self, url: str, path: Path) -> Path:
        call = self._file_call(url)
        response = self._send(call)
        try:
            if not response.is_success:
                response.read()
                raise api_error(response)
            with partial_file(path) as out:
                for chunk in response.iter_bytes():
                    out.write(chunk)
        except httpx.HTTPError as exc:
            raise request_error(exc, call) from exc
        finally:
            response.close()
        return path

    def _send(self, call: Call) -> httpx.Response:
        """Send ``call`` (again, as the retry policy allows); returns the last response."""
        attempt = 0
        while True:
            try:
                request = self._build(self._http, call)
                response = self._http.send(
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
                response.close()
            time.sleep(delay)
            attempt += 1

    def _request(self, call: Call, parse: Callable[[Any], M]) -> M:
        return parsed(parse, self._send(call))

    def _open_stream(self, call: Call) -> httpx.Response:
        """``call`` sent, its answer a successful event stream (else the error, raised)."""
        response = self._send(call)
        try:
            if not response.is_success:
                response.read()
                raise api_error(response)
            event_stream(response, call)
        except httpx.HTTPError as exc:
            response.close()
            raise request_error(exc, call) from exc
        except HatcheryError:
            response.close()
            raise
        return response

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def walk(fetch: Callable[..., Page[Item]], **filters: Any) -> Iterator[Item]:
    """Every item of a list, page after page (by the server's cursor when it gives one), each
    once: an item pushed onto the next page by one added meanwhile is not yielded again."""
    page = 1
    where: dict[str, Any] = {"page": 1}
    previous: list[Item] = []
    while True:
        found = fetch(**filters, **where)
        yield from unseen(found.items, previous)
        if not found.items or not found.pagination.has_next:
            return
        page, where, previous = page + 1, next_page(found, page), found.items


class Tasks:
    """``client.tasks``: read, list and wait for tasks."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def get(self, task_id: str, *, wait: float | None = None) -> Task:
        """The task. With ``wait`` (whole seconds, 0 to 60), the server answers once the task
        ended or that time passed (``Prefer: wait``; a server without it answers at once)."""
        call = self._client._task_call(task_id, wait=wait)
        return self._client._request(call, Task.from_json)

    def cancel(self, task_id: str) -> Task:
        """Cancel a pending or processing task; returns it ``cancelled`` (and not charged). A
        task already ended raises ConflictError, and so does a retried cancel whose first try
        went through but whose answer was lost (the task is then cancelled)."""
        return self._client._request(self._client._cancel_call(task_id), Task.from_json)

    def webhooks(self, task_id: str) -> list[WebhookDelivery]:
        """The task's webhook messages, newest first, each with every attempt made."""
        call = self._client._webhooks_call(task_id)
        return self._client._request(call, WebhookDelivery.list_from_json)

    def redeliver_webhook(self, task_id: str, delivery_id: str) -> WebhookDelivery:
        """Send one of them again now: the same ``webhook-id``, a new timestamp and signature."""
        call = self._client._redeliver_call(task_id, delivery_id)
        return self._client._request(call, WebhookDelivery.from_json)

    def _poll(self, task_id: str, schedule: PollSchedule) -> tuple[Task, float | None, bool]:
        call = self._client._task_call(task_id, schedule)
        response = self._client._send(call)
        return parsed(Task.from_json, response), retry_after(response.headers), held(response)

    def stream(self, task_id: str) -> Iterator[TaskEvent]:
        """The task's events (``GET /v1/tasks/{id}/events``): its status now, then each change,
        ending after the terminal one (``event.terminal``; ``event.task`` is the whole task). A
        dropped connection is reconnected with ``Last-Event-ID``: every event comes once, in
        order."""
        reader = EventReader(self._client.retry)
        while True:
            call = self._client._events_call(task_id, reader.last_id)
            response = self._client._open_stream(call)
            try:
                for chunk in response.iter_bytes():
                    yield from reader.feed(chunk)
                    if reader.done:
                        return
                error: HatcheryError = reader.ended(call)
            except httpx.HTTPError as exc:
                error = request_error(exc, call)
                error.__cause__ = exc
            finally:
                response.close()
            time.sleep(reader.reconnect(error))

    def list(
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
        return self._client._request(call, TaskPage.from_json)

    def iter(
        self,
        *,
        per_page: int = 100,
        status: str | None = None,
        model: str | None = None,
        type: str | None = None,
    ) -> Iterator[Task]:
        """Every task of the account (or of a status, model or type), page after page,
        following the server's cursor so that tasks submitted meanwhile neither repeat nor hide
        one."""
        yield from walk(self.list, per_page=per_page, status=status, model=model, type=type)

    def wait(
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
                task, hint, was_held = self._poll(task_id, schedule)
            except HatcheryError as exc:
                hint, was_held = schedule.failed(exc), False
            else:
                if on_update:
                    on_update(task)
                if task.done:
                    return finished(task)
                schedule.polled(task)
            time.sleep(schedule.next_delay(hint, was_held))


class Usage:
    """``client.usage``: what was charged, record by record or summed per model. Days are UTC
    and both ends are included; give them as ``datetime.date`` or ``"YYYY-MM-DD"``. ``api_key``
    narrows to one of the account's keys (its prefix, e.g. ``hk_AbCdEf1234``, or the whole key;
    NotFoundError if it is not the account's)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def list(
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
        return self._client._request(call, UsagePage.from_json)

    def iter(
        self,
        *,
        per_page: int = 100,
        model: str | None = None,
        type: str | None = None,
        api_key: str | None = None,
        start_date: Day | None = None,
        end_date: Day | None = None,
    ) -> Iterator[UsageRecord]:
        """Every usage record that matches, page after page, each once."""
        yield from walk(
            self.list,
            per_page=per_page,
            model=model,
            type=type,
            api_key=api_key,
            start_date=start_date,
            end_date=end_date,
        )

    def summary(
        self,
        *,
        start_date: Day | None = None,
        end_date: Day | None = None,
        api_key: str | None = None,
    ) -> builtins.list[UsageSummary]:
        """The usage summed per model (``GET /v1/usage/summary``): one entry per model used."""
        call = self._client._usage_summary_call(start_date, end_date, api_key)
        return self._client._request(call, UsageSummary.list_from_json)
