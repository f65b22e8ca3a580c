"""What ``Client`` and ``AsyncClient`` share: configuration, the retry policy, the polling schedule
and how a response becomes data or an error. Nothing here does I/O; the two clients only send.

Retries. A call is sent again, after a jittered exponential backoff (or exactly what a
``Retry-After`` header asks, up to a minute), when the server could not be reached or answered 429,
502, 503 or 504, at most ``max_retries`` times; never after any other 4xx. A submit
(``POST /v1/generate``) creates a task and reserves money, so it carries an ``Idempotency-Key``
(the caller's, or a new one per submit) that stays the same on every retry: the server answers a
resent submit with the task the first one created, so it is also sent again after no answer in
time, a dropped connection, a 500 or a 409 (the first one still being processed). Cancelling a
task is safe to resend too: once one cancel went through, another answers 409 (ConflictError).
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import logging
import math
import os
import random
import re
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol, Required, TypedDict, TypeVar
from urllib.parse import quote, urlsplit

import httpx

from hatchery import __version__
from hatchery.client._sse import ServerSentEvent, SSEDecoder
from hatchery.client.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    ConfigurationError,
    HatcheryError,
    TaskCancelledError,
    TaskFailedError,
    WaitTimeoutError,
    error_class,
)
from hatchery.client.models import Page, Task, TaskEvent

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_RETRIES = 2
DEFAULT_WAIT_TIMEOUT = 600.0
RETRY_STATUSES = frozenset({429, 502, 503, 504})
NOTHING_DONE_STATUSES = frozenset({429, 503})  # a submit answered so was not carried out
# A submit with an Idempotency-Key: also after a 500, and a 409 (the same key still in progress).
KEYED_RETRY_STATUSES = RETRY_STATUSES | {409, 500}
IDEMPOTENCY_KEY = "Idempotency-Key"
MAX_PREFER_WAIT = 60  # seconds a server holds a request for ``Prefer: wait=N``
LONG_POLL = 20  # the hold ``tasks.wait`` asks for each poll (under common proxies' idle timeouts)
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
USER_AGENT = f"hatchery-python/{__version__}"
SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")
M = TypeVar("M")
log = logging.getLogger("hatchery.client")
Day = date | str  # a UTC day: a date, or "YYYY-MM-DD"


class Identified(Protocol):
    @property
    def id(self) -> str: ...


Item = TypeVar("Item", bound=Identified)


@dataclass(frozen=True)
class Config:
    api_key: str
    base_url: str
    timeout: float
    max_retries: int

    @classmethod
    def resolve(
        cls,
        api_key: str | None,
        base_url: str | None,
        timeout: float,
        max_retries: int,
        environ: Mapping[str, str] | None = None,
    ) -> Config:
        """Arguments first, then ``HATCHERY_API_KEY`` and ``HATCHERY_BASE_URL``."""
        env = os.environ if environ is None else environ
        key = api_key or env.get("HATCHERY_API_KEY", "")
        if not key:
            raise ConfigurationError("no API key: pass api_key=... or set HATCHERY_API_KEY")
        url = (base_url or env.get("HATCHERY_BASE_URL", "") or DEFAULT_BASE_URL).rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigurationError(
                f"base URL must be http(s)://host[:port], got {url!r} (HATCHERY_BASE_URL)"
            )
        if not (key.isascii() and key.isprintable()):
            raise ConfigurationError("the API key has characters an HTTP header cannot carry")
        if max_retries < 0:
            raise ConfigurationError("max_retries must be 0 or more")
        return cls(api_key=key, base_url=url, timeout=timeout, max_retries=max_retries)


@dataclass(frozen=True)
class Call:
    """One API call as the retry policy sees it."""

    method: str
    url: str
    params: dict[str, Any] | None = None
    json: dict[str, Any] | None = None
    stream: bool = False  # a file download or an event stream: streamed, following redirects
    timeout: float | None = None  # instead of the client's
    retry: bool = True  # False: the caller retries (tasks.wait)
    headers: dict[str, str] = field(default_factory=dict)
    safe: bool = False  # sending it twice does no more than once (a cancel)

    @property
    def keyed(self) -> bool:
        """A submit with an ``Idempotency-Key``: a resend gets the first one's task."""
        return IDEMPOTENCY_KEY in self.headers

    @property
    def idempotent(self) -> bool:
        return self.method in ("GET", "HEAD", "OPTIONS") or self.safe or self.keyed

    def resent_after(self, status: int) -> bool:
        """Whether an answer with ``status`` may be followed by sending this call again."""
        if self.keyed:
            return status in KEYED_RETRY_STATUSES
        return status in (RETRY_STATUSES if self.idempotent else NOTHING_DONE_STATUSES)


def retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """``Retry-After`` in seconds (it may be a number or an HTTP date); None when absent."""
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        current = time.time() if now is None else now
        seconds = when.timestamp() - current
    return max(0.0, seconds) if math.isfinite(seconds) else None


@dataclass
class RetryPolicy:
    max_retries: int
    base: float = 0.5
    cap: float = 8.0
    max_retry_after: float = 60.0
    rand: Callable[[], float] = field(default=random.random, repr=False)

    def backoff(self, attempt: int) -> float:
        """Exponential from ``base``, capped, with jitter in [50%, 100%]."""
        return min(self.cap, self.base * 2.0**attempt) * (0.5 + self.rand() / 2)

    def after_response(self, call: Call, attempt: int, response: httpx.Response) -> float | None:
        """Seconds to wait before sending ``call`` again, or None to keep this response."""
        if not call.retry or attempt >= self.max_retries:
            return None
        if not call.resent_after(response.status_code):
            return None
        asked = retry_after(response.headers)
        if asked is None:
            return self.backoff(attempt)
        return asked if asked <= self.max_retry_after else None

    def after_error(self, call: Call, attempt: int, error: HatcheryError) -> float | None:
        """Seconds to wait before sending ``call`` again, or None to raise ``error``."""
        if not isinstance(error, APIConnectionError) or not call.retry:
            return None
        if attempt >= self.max_retries or (error.request_sent and not call.idempotent):
            return None
        return self.backoff(attempt)


def request_error(exc: httpx.HTTPError, call: Call) -> HatcheryError:
    """The SDK's error for an httpx one: no answer (connection, timeout) or an unreadable one."""
    where = f"{call.method} {call.url}"
    detail = str(exc) or type(exc).__name__
    if not isinstance(exc, httpx.TransportError):  # DecodingError, TooManyRedirects
        return APIError(f"{where}: unreadable answer ({detail})")
    sent = not isinstance(exc, NOT_SENT)
    if isinstance(exc, httpx.TimeoutException):
        message = f"{where}: no answer in time ({type(exc).__name__})"
        return APITimeoutError(message, request_sent=sent)
    return APIConnectionError(f"{where}: {detail}", request_sent=sent)


def transient(error: HatcheryError) -> bool:
    """Whether asking again later may succeed: no answer, or 429, 502, 503, 504."""
    if isinstance(error, APIConnectionError):
        return True
    return isinstance(error, APIError) and error.status in RETRY_STATUSES


def _error_body(response: httpx.Response) -> tuple[str | None, str | None]:
    try:
        body = response.json()
    except ValueError:
        return None, None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, None
    code, message = error.get("code"), error.get("message")
    return (code if isinstance(code, str) else None), (str(message) if message else None)


def api_error(response: httpx.Response) -> APIError:
    """The typed error for a response that is not a success."""
    code, message = _error_body(response)
    status = response.status_code
    if not message:
        text = response.text.strip()[:200]
        message = f"HTTP {status} {response.reason_phrase}" + (f": {text}" if text else "")
    return error_class(code, status)(
        message,
        code=code,
        status=status,
        request_id=response.headers.get("x-request-id"),
        retry_after=retry_after(response.headers),
    )


def data_of(response: httpx.Response) -> Any:
    """The ``data`` of a successful envelope; the typed error otherwise."""
    if not response.is_success:
        raise api_error(response)
    try:
        body = response.json()
    except ValueError:
        body = None
    if not (isinstance(body, dict) and "data" in body):
        raise APIError(
            f"{response.request.url} did not answer with the API's JSON envelope "
            "(is the base URL a Hatchery server?)",
            status=response.status_code,
            request_id=response.headers.get("x-request-id"),
        )
    return body["data"]


def parsed(parse: Callable[[Any], M], response: httpx.Response) -> M:
    """A successful answer's ``data`` as a model; an APIError if it is not shaped like one."""
    data = data_of(response)
    try:
        return parse(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise APIError(
            f"{response.request.url} answered with data this SDK cannot read "
            f"({type(exc).__name__}: {exc})",
            status=response.status_code,
            request_id=response.headers.get("x-request-id"),
        ) from exc


def submitted(response: httpx.Response) -> Task:
    """A submit's task; a replay (the server's answer to a key it has seen) is logged."""
    task = parsed(Task.from_json, response)
    if response.headers.get("idempotent-replayed", "").lower() == "true":
        key = response.request.headers.get(IDEMPOTENCY_KEY)
        log.info("submit replayed: task %s was created for Idempotency-Key %s", task.id, key)
    return task


def idempotency_key(key: str | None) -> str:
    """The caller's key, checked (1 to 255 printable ASCII characters), or a new one."""
    if key is None:
        return uuid.uuid4().hex
    if not (0 < len(key) <= 255 and key.isascii() and key.isprintable() and key == key.strip()):
        raise ValueError(
            "idempotency_key must be 1 to 255 printable ASCII characters, without spaces at "
            f"either end; got {key!r}"
        )
    return key


def prefer_wait(wait: float | None) -> int | None:
    """``wait`` as the N of ``Prefer: wait=N``: whole seconds from 0 to 60 (None: no header)."""
    if wait is None:
        return None
    ok = isinstance(wait, int | float) and not isinstance(wait, bool)
    if not (ok and 0 <= wait <= MAX_PREFER_WAIT and float(wait).is_integer()):
        raise ValueError(f"wait must be whole seconds from 0 to {MAX_PREFER_WAIT}; got {wait!r}")
    return int(wait)


def prefer(hold: int | None) -> dict[str, str]:
    return {} if hold is None else {"Prefer": f"wait={hold}"}


def held(response: httpx.Response) -> bool:
    """Whether the server held the request as ``Prefer: wait`` asked (``Preference-Applied``)."""
    return "wait=" in response.headers.get("preference-applied", "")


class GenerateParams(TypedDict, total=False):
    """The fields of a submit (``POST /v1/generate``); the server validates them."""

    model: Required[str]  # nanobanana, nanobanana-pro, veo3.1, ... (the server's catalog)
    prompt: Required[str]  # 1 to 2000 characters
    negative_prompt: str | None  # up to 1000 characters
    num_outputs: int | None  # 1 to 4
    duration: int | None  # seconds of video, 1 to 60
    aspect_ratio: str | None  # "16:9" or "9:16"
    resolution: str | None  # "1k", "2k" or "4k"
    image_urls: Sequence[str] | None  # up to 9 reference images
    webhook_url: str | None  # where the task's end is POSTed


def unseen(items: list[Item], previous: list[Item]) -> list[Item]:
    """A page's items minus those on the page before: items added while a listing is walked
    (tasks submitted, charges recorded) push older ones onto the next page, which would otherwise
    be yielded twice."""
    before = {item.id for item in previous}
    return [item for item in items if item.id not in before]


def next_page(found: Page[Any], page: int) -> dict[str, Any]:
    """Where a walk goes after ``found`` (page number ``page``): by its cursor when the server
    gives one, else by the next page number."""
    if found.pagination.cursor is not None:
        return {"cursor": found.pagination.cursor}
    return {"page": page + 1}


def day(value: Day | None) -> str | None:
    """A day for the API's ``start_date``/``end_date``: ``YYYY-MM-DD`` (a datetime counts by its
    UTC day when it has a time zone); a string is sent as it is, for the server to check."""
    if isinstance(value, datetime):
        value = (value.astimezone(UTC) if value.tzinfo else value).date()
    return value.isoformat() if isinstance(value, date) else value


def query(**params: Any) -> dict[str, Any]:
    """Query parameters without the ones left None, days as ``YYYY-MM-DD``."""
    return {k: day(v) if isinstance(v, date) else v for k, v in params.items() if v is not None}


def finished(task: Task) -> Task:
    """A terminal task: returned when completed, raised as an error when it is not."""
    if task.status == "cancelled":
        raise TaskCancelledError(task)
    if task.status != "completed":
        raise TaskFailedError(task)
    return task


@dataclass
class PollSchedule:
    """When ``tasks.wait`` polls next: starting short, growing by ``factor`` up to ``cap``, later
    when the server's ``Retry-After`` says so (up to a minute), never past the deadline. A poll
    that gets no answer, or 429/502/503/504, is tried again until the deadline; then the wait
    raises WaitTimeoutError with the last task seen (or the last error, if none was)."""

    timeout: float | None
    start: float = 0.25
    factor: float = 1.5
    cap: float = 5.0
    max_hint: float = 60.0
    hold: int = LONG_POLL
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    def __post_init__(self) -> None:
        self.began = self.clock()
        self.interval = self.start
        self.task: Task | None = None
        self.error: HatcheryError | None = None

    def left(self) -> float | None:
        return None if self.timeout is None else self.timeout - (self.clock() - self.began)

    def limits(self, default: float) -> tuple[int | None, float]:
        """A poll's ``Prefer: wait`` (None: none) and HTTP timeout. Once a poll was answered (the
        first shows the task at once), the server is asked to hold each up to ``hold`` seconds, a
        second short of the time left; the timeout is the client's plus that, cut to the time
        left (at least 0.1 s)."""
        left = self.left()
        hold = self.hold if left is None else min(self.hold, int(left) - 1)
        if self.task is None or hold <= 0:
            return None, default if left is None else max(0.1, min(default, left))
        return hold, default + hold if left is None else min(default + hold, left)

    def polled(self, task: Task) -> None:
        self.task, self.error = task, None

    def failed(self, error: HatcheryError) -> float | None:
        """Note a failed poll and return its Retry-After; re-raise it unless it is transient."""
        if not transient(error):
            raise error
        self.error = error
        return error.retry_after if isinstance(error, APIError) else None

    def next_delay(self, hint: float | None = None, held: bool = False) -> float:
        """Seconds to sleep before the next poll; raises once the deadline has passed. After a
        poll the server held (``Preference-Applied``), the next one goes almost at once."""
        delay = min(hint or 0.0, self.max_hint)
        if held:
            delay = max(delay, self.start / 10)
        else:
            delay = max(delay, self.interval)
            self.interval = min(self.cap, self.interval * self.factor)
        left = self.left()
        if left is None:
            return delay
        if left <= 0:
            if self.task is None and self.error is not None:
                raise self.error
            assert self.task is not None
            raise WaitTimeoutError(self.task, float(self.timeout or 0)) from self.error
        return min(delay, left)


def task_event(sse: ServerSentEvent) -> TaskEvent:
    """A task's event from the stream; an APIError when it is not shaped like one."""
    status = "" if sse.event == "message" else sse.event
    try:
        return TaskEvent.from_json(int(sse.id or ""), status, json.loads(sse.data))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise APIError(
            f"the event stream sent an event this SDK cannot read ({type(exc).__name__}: {exc}): "
            f"id {sse.id!r}, event {sse.event!r}, data {sse.data[:200]!r}"
        ) from exc


def event_stream(response: httpx.Response, call: Call) -> None:
    """Check that a successful answer to ``call`` is an event stream."""
    kind = response.headers.get("content-type", "")
    if not kind.startswith("text/event-stream"):
        raise APIError(
            f"{call.method} {call.url} did not answer with an event stream ({kind or 'no type'})",
            status=response.status_code,
            request_id=response.headers.get("x-request-id"),
        )


class EventReader:
    """A task's event stream, read across connections. It keeps the last event id (sent back as
    ``Last-Event-ID`` when reconnecting, so the server replays what came after it), drops an event
    seen before, and ends with the terminal event. After a dropped connection, or a stream that
    ended before the task did, it waits the retry policy's backoff (at least the server's
    ``retry:``) before reconnecting, up to ``max_retries`` times in a row without a new event."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.last_id: int | None = None
        self.done = False
        self.failures = 0  # reconnects since the last new event
        self._decoder = SSEDecoder()
        self._retry: float | None = None  # seconds, from the server's ``retry:``

    def feed(self, chunk: bytes) -> list[TaskEvent]:
        """The new events a chunk of the stream completes, in order."""
        events = [self._accept(sse) for sse in self._decoder.feed(chunk)]
        if self._decoder.retry is not None:
            self._retry = self._decoder.retry / 1000
        return [event for event in events if event is not None]

    def _accept(self, sse: ServerSentEvent) -> TaskEvent | None:
        event = task_event(sse)
        if self.done or (self.last_id is not None and event.id <= self.last_id):
            return None  # after the end, or replayed
        self.last_id, self.done, self.failures = event.id, event.terminal, 0
        return event

    def ended(self, call: Call) -> APIConnectionError:
        """The error of a stream that ended before the terminal event."""
        message = f"{call.method} {call.url}: the stream ended before the task did"
        return APIConnectionError(message, request_sent=True)

    def reconnect(self, error: HatcheryError) -> float:
        """Seconds to wait before reconnecting after ``error``; raises it when it is not a lost
        connection or the retries are used up."""
        self._decoder = SSEDecoder()  # an event cut off by the drop is sent again
        if not isinstance(error, APIConnectionError) or self.failures >= self.policy.max_retries:
            raise error
        delay = max(self._retry or 0.0, self.policy.backoff(self.failures))
        self.failures += 1
        return min(delay, self.policy.max_retry_after)


def output_paths(task: Task, directory: Path) -> list[tuple[str, Path]]:
    """Where each output of ``task`` goes: ``<dir>/<task id>-<n><extension of the URL>``."""
    if task.status != "completed":
        raise ValueError(f"task {task.id} is {task.status}; only a completed task has files")
    name = SAFE_NAME.sub("_", task.id)
    plan = []
    for index, url in enumerate(task.urls):
        suffix = SAFE_NAME.sub("_", Path(urlsplit(url).path).suffix) or ".bin"
        plan.append((url, directory / f"{name}-{index}{suffix}"))
    return plan


@contextlib.contextmanager
def partial_file(path: Path) -> Iterator[BinaryIO]:
    """Write ``path`` through a temporary file beside it: each file appears whole or not at all,
    even with two downloads of the same task at once."""
    fd, part = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
        os.replace(part, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(part)


class BaseClient:
    """Configuration and request building shared by Client and AsyncClient."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.retry = RetryPolicy(config.max_retries)
        self._origin = _origin(config.base_url)

    @property
    def base_url(self) -> str:
        return self.config.base_url

    def _headers(self, url: str) -> dict[str, str]:
        """The API key goes to the API's own origin only, never to a file host elsewhere."""
        headers = {"User-Agent": USER_AGENT}
        if _origin(url) == self._origin:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        return headers

    def _url(self, path: str) -> str:
        return path if "://" in path else self.config.base_url + path

    # Each endpoint as a Call, for both clients to send.

    def _held_timeout(self, hold: int | None) -> float | None:
        """The HTTP timeout of a request the server may hold ``hold`` seconds: the client's plus
        that (None: the client's)."""
        return None if hold is None else self.config.timeout + hold

    def _submit_call(
        self, params: GenerateParams, key: str | None = None, wait: float | None = None
    ) -> Call:
        """``POST /v1/generate`` with the fields given, without the ones left None, its
        ``Idempotency-Key`` (``key``, else a new one) and ``Prefer: wait`` when asked."""
        headers = {IDEMPOTENCY_KEY: idempotency_key(key)}
        hold = prefer_wait(wait)
        body: dict[str, Any] = {k: v for k, v in params.items() if v is not None}
        if "image_urls" in body:
            body["image_urls"] = list(body["image_urls"])
        url, timeout = self._url("/v1/generate"), self._held_timeout(hold)
        return Call("POST", url, json=body, headers=headers | prefer(hold), timeout=timeout)

    def _account_call(self, api_key: str | None = None) -> Call:
        return Call("GET", self._url("/v1/account"), params=query(api_key=api_key))

    def _list_call(self, **filters: Any) -> Call:
        return Call("GET", self._url("/v1/tasks"), params=query(**filters))

    def _usage_call(self, **filters: Any) -> Call:
        return Call("GET", self._url("/v1/usage"), params=query(**filters))

    def _usage_summary_call(
        self, start_date: Day | None, end_date: Day | None, api_key: str | None
    ) -> Call:
        params = query(start_date=start_date, end_date=end_date, api_key=api_key)
        return Call("GET", self._url("/v1/usage/summary"), params=params)

    def _task_url(self, task_id: str, action: str = "") -> str:
        return self._url(f"/v1/tasks/{quote(task_id, safe='')}{action}")

    def _task_call(
        self, task_id: str, schedule: PollSchedule | None = None, wait: float | None = None
    ) -> Call:
        """``GET /v1/tasks/{id}``, held by the server up to ``wait`` seconds; as a poll of
        ``tasks.wait``, held as its schedule says, bounded by its deadline and not retried on its
        own (the wait retries)."""
        url = self._task_url(task_id)
        if schedule is None:
            hold = prefer_wait(wait)
            return Call("GET", url, headers=prefer(hold), timeout=self._held_timeout(hold))
        hold, timeout = schedule.limits(self.config.timeout)
        return Call("GET", url, headers=prefer(hold), timeout=timeout, retry=False)

    def _cancel_call(self, task_id: str) -> Call:
        return Call("POST", self._task_url(task_id, "/cancel"), safe=True)

    def _webhooks_call(self, task_id: str) -> Call:
        return Call("GET", self._task_url(task_id, "/webhooks"))

    def _redeliver_call(self, task_id: str, delivery_id: str) -> Call:
        """Safe to retry: a second redelivery sends the message once more, with the same
        ``webhook-id`` receivers deduplicate by."""
        action = f"/webhooks/{quote(delivery_id, safe='')}/redeliver"
        return Call("POST", self._task_url(task_id, action), safe=True)

    def _events_call(self, task_id: str, last_id: int | None) -> Call:
        """``GET /v1/tasks/{id}/events``, after event ``last_id`` when reconnecting."""
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if last_id is not None:
            headers["Last-Event-ID"] = str(last_id)
        return Call("GET", self._task_url(task_id, "/events"), headers=headers, stream=True)

    def _file_call(self, url: str) -> Call:
        return Call("GET", self._url(url), stream=True)

    def _build(self, http: httpx.Client | httpx.AsyncClient, call: Call) -> httpx.Request:
        try:
            return http.build_request(
                call.method,
                call.url,
                params=call.params,
                json=call.json,
                headers=self._headers(call.url) | call.headers,
                timeout=call.timeout or self.config.timeout,
            )
        except httpx.InvalidURL as exc:
            raise APIError(f"cannot request {call.url!r}: {exc}") from exc


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()


def http_limits() -> httpx.Limits:
    # Idle connections are dropped before uvicorn's 5 s keep-alive closes them, so a submit is not
    # sent on a connection the server is closing (which would make it look possibly delivered).
    return httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=4.0)
