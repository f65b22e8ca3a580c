"""One vendor's HTTP API as the adapters see it: a JSON call whose failure is already classified,
and a size-capped download of an output file.

How a failure is classified (the runner decides what to do with each class):

    no answer within the timeout        UpstreamUnreachable  ("did not answer within 120s")
    connection refused / reset / TLS    UpstreamUnreachable
    408, 409, 425, 429, 5xx             UpstreamUnreachable  (with the vendor's Retry-After)
    401, 402, 403, 404                  RetryableError  (this provider's credentials, credit or
                                                         model: another provider may still
                                                         serve it)
    4xx with X-Fal-Retryable: true      RetryableError  (fal says another try may succeed)
    other 4xx                           TerminalError   (the upstream refused the input itself)

Credentials go only to the vendor's own origin: a download that redirects to a file store (Veo's
video URIs do) follows the redirect without the key.

Thousands of jobs in flight poll through one ``Upstream``: at most ``MAX_EXCHANGES`` of its calls
(and as many downloads) are on the wire at once, the rest wait their turn here. That keeps the
HTTP pool small, and httpcore scans every pooled connection (a few system calls each) on every
request it sends: with hundreds of pooled connections that scan was the worker's largest cost.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from hatchery.client._base import retry_after as header_retry_after
from hatchery.net.guard import ResponseTooLarge, read_body
from hatchery.providers.base import (
    ProviderError,
    RetryableError,
    TerminalError,
    UpstreamUnreachable,
)

BUSY_STATUSES = frozenset({408, 409, 425, 429})
CREDENTIAL_STATUSES = frozenset({401, 402, 403, 404})
MAX_REDIRECTS = 5
MAX_MESSAGE = 300
WIRE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})
MAX_EXCHANGES = 64  # calls of one Upstream on the wire at once (and as many downloads)


@dataclass(frozen=True)
class Upstream:
    """One vendor endpoint: where it is, how to authenticate, how long to wait."""

    name: str
    http: httpx.AsyncClient
    base_url: str
    auth: Mapping[str, str]
    timeout: float
    max_bytes: int
    origin: tuple[str, str, int | None] = field(init=False)
    _calls: asyncio.Semaphore = field(init=False, repr=False, compare=False)
    _downloads: asyncio.Semaphore = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        base = httpx.URL(self.base_url.rstrip("/"))
        object.__setattr__(self, "base_url", str(base))
        object.__setattr__(self, "origin", _origin(base))
        object.__setattr__(self, "_calls", asyncio.Semaphore(MAX_EXCHANGES))
        object.__setattr__(self, "_downloads", asyncio.Semaphore(MAX_EXCHANGES))

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        """Send one request; the decoded JSON answer, or a classified ProviderError."""
        response = await self.exchange(method, path, body)
        return self.json_of(f"{method} {path}", response)

    async def exchange(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: Mapping[str, str] | None = None,
        files: Sequence[tuple[str, tuple[str, bytes, str]]] | None = None,
        data: Mapping[str, str] | None = None,
        keep: Collection[int] = (),
    ) -> httpx.Response:
        """Send one request (a JSON ``body``, or a multipart form of ``files`` and ``data``); the
        whole answer when its status is below 400 or in ``keep`` (an error the adapter reads
        itself), else a classified ProviderError. For vendors that answer with the output's
        bytes (ElevenLabs) or that take uploads (ComfyUI, the OpenAI images API)."""
        what = f"{method} {path}"
        request = self._request(method, self.url(path), body, params=params, files=files, data=data)
        async with self._calls:
            streamed = await self._send(what, request, stream=True)
            try:
                content = await self._read_capped(streamed, f"the answer to {what}")
            finally:
                await streamed.aclose()
        response = _read(streamed, content)
        if response.status_code >= 400 and response.status_code not in keep:
            raise failure(self.name, what, response)
        return response

    def json_of(self, what: str, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise RetryableError(
                f"{self.name}: {what} answered {response.status_code} with a body that is not JSON"
            ) from None

    async def download(self, url: str) -> bytes:
        """An output file's bytes, following redirects (the key only to the vendor's origin),
        refused past ``max_bytes``."""
        async with self._downloads:
            return await self._download(httpx.URL(url))

    async def _download(self, target: httpx.URL) -> bytes:
        for _ in range(MAX_REDIRECTS + 1):
            headers = dict(self.auth) if _origin(target) == self.origin else {}
            request = self.http.build_request("GET", target, headers=headers, timeout=self.timeout)
            response = await self._send(f"download {target.path}", request, stream=True)
            try:
                if response.is_redirect and "location" in response.headers:
                    target = target.join(response.headers["location"])
                    continue
                if response.status_code != 200:
                    await response.aread()
                    raise _download_failure(self.name, response)
                return await self._read_capped(response, "an output download")
            finally:
                await response.aclose()
        raise RetryableError(f"{self.name}: an output download redirected more than 5 times")

    def _request(
        self,
        method: str,
        url: str,
        body: Any,
        *,
        params: Mapping[str, str] | None = None,
        files: Sequence[tuple[str, tuple[str, bytes, str]]] | None = None,
        data: Mapping[str, str] | None = None,
    ) -> httpx.Request:
        headers = dict(self.auth)
        if files is not None:
            return self.http.build_request(
                method,
                url,
                params=params,
                files=list(files),
                data=data,
                headers=headers,
                timeout=self.timeout,
            )
        content = None
        if body is not None:
            content = json.dumps(body, separators=(",", ":")).encode()
            headers["content-type"] = "application/json"
        return self.http.build_request(
            method, url, params=params, content=content, headers=headers, timeout=self.timeout
        )

    async def _send(
        self, what: str, request: httpx.Request, *, stream: bool = False
    ) -> httpx.Response:
        """One exchange bounded as a whole by the timeout (a trickling answer is cut off too)."""
        try:
            async with asyncio.timeout(self.timeout):
                response = await self.http.send(request, stream=stream)
                if not stream:
                    await response.aread()
                return response
        except (TimeoutError, httpx.TimeoutException):
            raise UpstreamUnreachable(
                f"{self.name}: {what} did not answer within {self.timeout:g}s"
            ) from None
        except httpx.TransportError as exc:
            raise UpstreamUnreachable(
                f"{self.name}: {what} failed ({type(exc).__name__}: {exc})"
            ) from None

    async def _read_capped(self, response: httpx.Response, what: str) -> bytes:
        """The body, refused past ``max_bytes`` and cut off past the timeout."""
        try:
            async with asyncio.timeout(self.timeout):
                return await read_body(response, "GET", self.max_bytes)
        except ResponseTooLarge:
            raise RetryableError(f"{self.name}: {what} is larger than {self.max_bytes} B") from None
        except (TimeoutError, httpx.TimeoutException):
            raise UpstreamUnreachable(
                f"{self.name}: {what} took longer than {self.timeout:g}s"
            ) from None
        except httpx.TransportError as exc:
            raise UpstreamUnreachable(f"{self.name}: {what} broke off ({exc})") from None


def _read(streamed: httpx.Response, content: bytes) -> httpx.Response:
    """A streamed answer as one read whole: ``content`` is already decoded, so the headers that
    describe the wire form (compression, length) are left out."""
    headers = [
        (name, value)
        for name, value in streamed.headers.multi_items()
        if name.lower() not in WIRE_HEADERS
    ]
    return httpx.Response(
        streamed.status_code, headers=headers, content=content, request=streamed.request
    )


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return (url.scheme, url.host, url.port)


def failure(name: str, what: str, response: httpx.Response) -> ProviderError:
    """The ProviderError for an HTTP error answer, with the vendor's own message."""
    status = response.status_code
    message = f"{name}: {what} answered HTTP {status}: {error_message(response)}"
    answer = {"status": status, "body": _body(response)}
    if status >= 500 or status in BUSY_STATUSES:
        return UpstreamUnreachable(message, retry_after=retry_after(response), **answer)
    if status in CREDENTIAL_STATUSES or _bad_google_key(response) or _fal_retryable(response):
        return RetryableError(message, **answer)
    return TerminalError(message, **answer)


def _fal_retryable(response: httpx.Response) -> bool:
    """fal marks a model error worth another try with ``X-Fal-Retryable: true``."""
    return str(response.headers.get("x-fal-retryable", "")).lower() == "true"


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _bad_google_key(response: httpx.Response) -> bool:
    """Google answers a wrong API key with 400 INVALID_ARGUMENT; it is our key, not the input."""
    try:
        details = response.json()["error"]["details"]
        return any(d.get("reason") == "API_KEY_INVALID" for d in details)
    except (ValueError, KeyError, TypeError, AttributeError):
        return False


def _download_failure(name: str, response: httpx.Response) -> ProviderError:
    status = response.status_code
    message = f"{name}: an output download answered HTTP {status}"
    if status >= 500 or status in BUSY_STATUSES:
        return UpstreamUnreachable(message, retry_after=retry_after(response))
    return RetryableError(message)


def error_message(response: httpx.Response) -> str:
    """The human part of a vendor's error body: Google's ``error.message`` (with its status),
    fal's and Replicate's ``detail``, or the start of the text."""
    try:
        body = response.json()
    except ValueError:
        return _clip(response.text.strip() or response.reason_phrase)
    return _clip(_message_of(body) or json.dumps(body))


def _message_of(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, dict):
        text = str(error.get("message") or "")
        status = error.get("status")
        return f"{status}: {text}" if status else text
    for key in ("detail", "error", "message", "title"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, list) and value:  # FastAPI-style validation details (fal)
            return "; ".join(_detail(item) for item in value)
    return None


def _detail(item: Any) -> str:
    if isinstance(item, dict):
        where = ".".join(str(p) for p in item.get("loc", []) if p != "body")
        return f"{where}: {item.get('msg', '')}" if where else str(item.get("msg", item))
    return str(item)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from ``Retry-After`` (read as the SDK reads it), or Replicate's ``retry_after``."""
    if "retry-after" in response.headers:
        return header_retry_after(response.headers)
    try:
        value = response.json().get("retry_after")
    except (ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) and value >= 0 else None
