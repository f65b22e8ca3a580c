"""What ``Client`` and ``AsyncClient`` share: configuration, the retry policy, the polling schedule
and how a response becomes data or an error. Nothing here does I/O; the two clients only send.

Retries. A call is sent again, after a jittered exponential backoff (or exactly what a
``Retry-After`` header asks, up to a minute), when the server could not be reached or answered 429,
502, 503 or 504, at most ``max_retries`` times; never after any other 4xx. A submit
(``POST /v1/generate``) creates a task and reserves money, so it is sent again only when the
failure proves nothing was done: the connection was never made, or the answer was 429 or 503. A
submit that timed out waiting for its answer, or got a 502/504 from a gateway, raises instead: the
task may exist, and sending it again could create and charge a second one.
"""

from __future__ import annotations

import contextlib
import email.utils
import math
import os
import random
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any, BinaryIO, Required, TypedDict, TypeVar
from urllib.parse import quote, urlsplit

import httpx

from hatchery import __version__
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
from hatchery.client.models import Task, TaskPage

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_RETRIES = 2
DEFAULT_WAIT_TIMEOUT = 600.0
RETRY_STATUSES = frozenset({429, 502, 503, 504})
NOTHING_DONE_STATUSES = frozenset({429, 503})  # a submit answered so was not carried out
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
USER_AGENT = f"hatchery-python/{__version__}"
SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")
M = TypeVar("M")


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
    stream: bool = False  # a file download: streamed, following redirects
    timeout: float | None = None  # instead of the client's
    retry: bool = True  # False: the caller retries (tasks.wait)

    @property
    def idempotent(self) -> bool:
        return self.method in ("GET", "HEAD", "OPTIONS")


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
        status = response.status_code
        if not call.retry or attempt >= self.max_retries or status not in RETRY_STATUSES:
            return None
        if not call.idempotent and status not in NOTHING_DONE_STATUSES:
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


def unseen(tasks: list[Task], previous: list[Task]) -> list[Task]:
    """A page's tasks minus those on the page before: tasks submitted while a listing is walked
    push older ones onto the next page, which would otherwise be yielded twice."""
    before = {t.id for t in previous}
    return [t for t in tasks if t.id not in before]


def next_page(found: TaskPage, page: int) -> dict[str, Any]:
    """Where a walk goes after ``found`` (page number ``page``): by its cursor when the server
    gives one, else by the next page number."""
    if found.pagination.cursor is not None:
        return {"cursor": found.pagination.cursor}
    return {"page": page + 1}


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
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    def __post_init__(self) -> None:
        self.began = self.clock()
        self.interval = self.start
        self.task: Task | None = None
        self.error: HatcheryError | None = None

    def left(self) -> float | None:
        return None if self.timeout is None else self.timeout - (self.clock() - self.began)

    def request_timeout(self, default: float) -> float:
        """A poll's HTTP timeout: the client's, cut to the time left (at least 0.1 s)."""
        left = self.left()
        return default if left is None else max(0.1, min(default, left))

    def polled(self, task: Task) -> None:
        self.task, self.error = task, None

    def failed(self, error: HatcheryError) -> float | None:
        """Note a failed poll and return its Retry-After; re-raise it unless it is transient."""
        if not transient(error):
            raise error
        self.error = error
        return error.retry_after if isinstance(error, APIError) else None

    def next_delay(self, hint: float | None = None) -> float:
        """Seconds to sleep before the next poll; raises once the deadline has passed."""
        delay = max(self.interval, min(hint or 0.0, self.max_hint))
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

    def _submit_call(self, params: GenerateParams) -> Call:
        """``POST /v1/generate`` with the fields given, without the ones left None."""
        body: dict[str, Any] = {k: v for k, v in params.items() if v is not None}
        if "image_urls" in body:
            body["image_urls"] = list(body["image_urls"])
        return Call("POST", self._url("/v1/generate"), json=body)

    def _account_call(self) -> Call:
        return Call("GET", self._url("/v1/account"))

    def _list_call(self, **filters: Any) -> Call:
        params = {k: v for k, v in filters.items() if v is not None}
        return Call("GET", self._url("/v1/tasks"), params=params)

    def _task_call(self, task_id: str, schedule: PollSchedule | None = None) -> Call:
        """``GET /v1/tasks/{id}``; as a poll of ``tasks.wait``, bounded by its deadline and not
        retried on its own (the wait retries)."""
        url = self._url(f"/v1/tasks/{quote(task_id, safe='')}")
        if schedule is None:
            return Call("GET", url)
        timeout = schedule.request_timeout(self.config.timeout)
        return Call("GET", url, timeout=timeout, retry=False)

    def _file_call(self, url: str) -> Call:
        return Call("GET", self._url(url), stream=True)

    def _build(self, http: httpx.Client | httpx.AsyncClient, call: Call) -> httpx.Request:
        try:
            return http.build_request(
                call.method,
                call.url,
                params=call.params,
                json=call.json,
                headers=self._headers(call.url),
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
