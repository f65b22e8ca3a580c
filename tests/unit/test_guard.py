"""Tests for hatchery.net.guard.

Network rule: nothing here connects anywhere but 127.0.0.0/8. Address decisions are tested as
pure functions, names are resolved by injected fake resolvers, https pinning is observed through
httpx.MockTransport (no connection at all), and real fetching only talks to a tiny HTTP server
started on 127.0.0.1 by the test itself.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from hatchery.net.guard import (
    GuardedResponse,
    ResponseTooLarge,
    TooManyRedirects,
    URLRefused,
    address_refusal,
    check_url,
    check_url_syntax,
    guarded_request,
    system_resolver,
)

HINT = "HATCHERY_ALLOW_PRIVATE_URLS=1"
PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:4700:4700::1111"


# --------------------------------------------------------------------------- helpers


class FakeResolver:
    """Maps names to fixed answers and records every lookup; unknown names do not resolve."""

    def __init__(self, answers: dict[str, list[str]] | None = None) -> None:
        self.answers = answers or {}
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(self.answers[host])


async def must_not_resolve(host: str, port: int) -> list[str]:
    raise AssertionError(f"resolver called for {host}:{port}")


@dataclass
class Seen:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.target).query).items()}


def http_response(status: int, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"HTTP/1.1 {status} Status"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def read_request(reader: asyncio.StreamReader) -> Seen:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    request_line, *header_lines = head.split("\r\n")
    method, target, _ = request_line.split(" ", 2)
    headers: dict[str, str] = {}
    for line in header_lines:
        if line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Seen(method, target, headers, body)


async def hang() -> None:
    await asyncio.Event().wait()


@dataclass
class LocalServer:
    """A minimal HTTP/1.1 server on 127.0.0.1 with a few fixed routes; one request/connection."""

    port: int = 0
    seen: list[Seen] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            request = await read_request(reader)
            self.seen.append(request)
            await self._route(request, writer)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with suppress(Exception):
                await writer.wait_closed()
            self._tasks.discard(task)

    async def _route(self, request: Seen, writer: asyncio.StreamWriter) -> None:
        path, query = request.path, request.query
        if path == "/hello":
            writer.write(http_response(200, {"Content-Length": "11"}, b"hello world"))
        elif path == "/echo":
            body = json.dumps(
                {
                    "method": request.method,
                    "body": request.body.decode(),
                    "headers": request.headers,
                }
            ).encode()
            writer.write(http_response(200, {"Content-Length": str(len(body))}, body))
        elif path == "/sized":
            size = int(query["n"])
            writer.write(http_response(200, {"Content-Length": str(size)}, b"x" * size))
        elif path == "/declared-huge":
            writer.write(http_response(200, {"Content-Length": "10000000"}))
            await writer.drain()
            await hang()
        elif path == "/stream":
            await self._stream(writer, finish="finish" in query)
        elif path == "/redirect":
            status = int(query.get("status", "302"))
            headers = {"Location": query["to"], "Content-Length": "0"}
            writer.write(http_response(status, headers))
        elif path == "/hang":
            await hang()
        else:
            writer.write(http_response(404, {"Content-Length": "0"}))

    async def _stream(self, writer: asyncio.StreamWriter, *, finish: bool) -> None:
        """Chunked body without Content-Length: 4 x 512 bytes, then end or hang forever."""
        writer.write(http_response(200, {"Transfer-Encoding": "chunked"}))
        for _ in range(4):
            writer.write(b"200\r\n" + b"y" * 512 + b"\r\n")
            await writer.drain()
        if not finish:
            await hang()
        writer.write(b"0\r\n\r\n")


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    srv = LocalServer()
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as c:
        yield c


def allow_only_first_loopback(ip: str) -> str | None:
    """Test policy: 127.0.0.1 is "public", everything else is judged by the real guard."""
    return None if ip == "127.0.0.1" else address_refusal(ip)


# --------------------------------------------------------------------------- address_refusal

REFUSED = [
    ("127.0.0.1", "loopback"),
    ("127.5.5.5", "loopback"),
    ("::1", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "metadata"),
    ("169.254.1.1", "link-local"),
    ("fe80::1", "link-local"),
    ("fc00::1", "private"),
    ("fd12:3456::1", "private"),
    ("fd00:ec2::254", "metadata"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.254", "carrier-grade NAT"),
    ("100.100.100.200", "metadata"),
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    ("::", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"),
    ("255.255.255.255", "reserved"),
    ("240.0.0.1", "reserved"),
    ("fec0::1", "site-local"),
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:10.0.0.1", "private"),
    ("::ffff:169.254.169.254", "metadata"),
    ("2002:7f00:1::1", "loopback"),  # 6to4 of 127.0.0.1
    ("2002:a9fe:a9fe::1", "metadata"),  # 6to4 of 169.254.169.254
    ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
    ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
    ("::127.0.0.1", "loopback"),  # IPv4-compatible
    ("::ffff:0:127.0.0.1", "loopback"),  # IPv4-translated
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", ""),  # Teredo
    ("192.0.2.1", ""),  # documentation
    ("198.18.0.1", ""),  # benchmarking
    ("2001:db8::1", ""),  # documentation
]


@pytest.mark.parametrize(("ip", "label"), REFUSED)
def test_address_refusal_refuses(ip: str, label: str) -> None:
    reason = address_refusal(ip)
    assert reason is not None
    assert label in reason


def test_address_refusal_names_the_address() -> None:
    assert address_refusal("127.0.0.1") == "loopback address 127.0.0.1"
    reason = address_refusal("::ffff:127.0.0.1")
    assert reason is not None and "127.0.0.1" in reason


@pytest.mark.parametrize(
    "ip",
    [
        "8.8.8.8",
        "1.1.1.1",
        PUBLIC_V4,
        "172.32.0.1",
        "172.15.255.255",
        "100.128.0.1",
        "169.255.0.1",
        PUBLIC_V6,
        "::ffff:8.8.8.8",
        "2002:808:808::1",  # 6to4 of a public address
        "64:ff9b::808:808",  # NAT64 of a public address
    ],
)
def test_address_refusal_allows_public(ip: str) -> None:
    assert address_refusal(ip) is None


@pytest.mark.parametrize("ip", ["", "localhost", "1.2.3", "999.1.1.1", "::g"])
def test_address_refusal_refuses_non_addresses(ip: str) -> None:
    assert address_refusal(ip) is not None


# --------------------------------------------------------------------------- check_url_syntax


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/file",
        "file:///etc/passwd",
        "gopher://example.com/",
        "javascript:alert(1)",
        "data:text/plain,hi",
        "http:///path-only",
        "http://",
        "/relative/path",
        "",
        "http://user:pass@example.com/",
        "http://user@example.com/",
        "https://:secret@example.com/",
        "http://example.com:0/",
        "http://example.com:65536/",
        "http://example.com:+80/",  # ports other than ASCII digits, which int() would read
        "http://example.com: 80/",
        "http://example.com:8_0/",
        "http://example.com:\uff18\uff10/",
        "http://[2606:4700::1]:+80/",
        "http://exa mple.com/",
        "http://exa%20mple.com/",
        "http://[::1%25eth0]/",
        "http://evil.test\\@good.test/",
        "http://256.1.1.1/",
    ],
)
def test_check_url_syntax_refuses(url: str) -> None:
    with pytest.raises(URLRefused):
        check_url_syntax(url)


def test_check_url_syntax_max_length() -> None:
    url = "https://example.com/" + "a" * 80
    assert check_url_syntax(url, max_length=len(url)).host == "example.com"
    with pytest.raises(URLRefused, match="longer than"):
        check_url_syntax(url, max_length=len(url) - 1)


def test_check_url_syntax_accepts_http_and_https() -> None:
    assert str(check_url_syntax("http://example.com/a?b=c")) == "http://example.com/a?b=c"
    parsed = check_url_syntax("HTTPS://Example.COM:8443/x")
    assert (parsed.scheme, parsed.host, parsed.port) == ("https", "example.com", 8443)
    assert check_url_syntax("http://[2606:4700:4700::1111]/").host == PUBLIC_V6


def test_url_refused_is_a_value_error() -> None:
    assert issubclass(URLRefused, ValueError)
    assert not issubclass(ResponseTooLarge, URLRefused)
    assert not issubclass(TooManyRedirects, URLRefused)


# --------------------------------------------------------------------------- check_url


async def test_check_url_allows_public_name() -> None:
    resolver = FakeResolver({"cdn.example.test": [PUBLIC_V4, PUBLIC_V6]})
    ips = await check_url("https://cdn.example.test/a.png", allow_private=False, resolver=resolver)
    assert ips == [PUBLIC_V4, PUBLIC_V6]
    assert resolver.calls == [("cdn.example.test", 443)]


async def test_check_url_resolves_with_explicit_port() -> None:
    resolver = FakeResolver({"hooks.example.test": [PUBLIC_V4]})
    await check_url("http://hooks.example.test:8080/", allow_private=False, resolver=resolver)
    await check_url("http://hooks.example.test/", allow_private=False, resolver=resolver)
    assert resolver.calls == [("hooks.example.test", 8080), ("hooks.example.test", 80)]


async def test_check_url_refuses_if_any_address_is_private() -> None:
    resolver = FakeResolver({"mixed.example.test": [PUBLIC_V4, "127.0.0.1"]})
    with pytest.raises(URLRefused) as info:
        await check_url("https://mixed.example.test/", allow_private=False, resolver=resolver)
    message = str(info.value)
    assert "mixed.example.test" in message
    assert "loopback address 127.0.0.1" in message
    assert HINT in message


@pytest.mark.parametrize(
    ("answer", "label"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.5", "private"),
        ("169.254.169.254", "metadata"),
        ("::ffff:169.254.169.254", "metadata"),
    ],
)
async def test_check_url_refuses_names_resolving_to_internal_addresses(
    answer: str, label: str
) -> None:
    resolver = FakeResolver({"internal.example.test": [answer]})
    with pytest.raises(URLRefused, match=label):
        await check_url("http://internal.example.test/", allow_private=False, resolver=resolver)


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST", "localhost.", "app.localhost"])
async def test_check_url_refuses_localhost_names_whatever_they_resolve_to(host: str) -> None:
    resolver = FakeResolver({host.lower(): [PUBLIC_V4]})
    with pytest.raises(URLRefused, match=HINT):
        await check_url(f"http://{host}:8000/", allow_private=False, resolver=resolver)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://2130706433/",  # decimal
        "http://0x7f000001/",  # hex
        "http://0x7f.1/",  # hex + short form
        "http://0177.1/",  # octal + short form
        "http://0177.0.0.1/",  # octal, refused by the parser already
        "http://127.1/",  # short form
        "http://127.0.0.1./",  # trailing dot
        "http://0/",  # 0.0.0.0
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://0xa9fea9fe/",  # 169.254.169.254
        "http://10.0.0.1:6379/",
    ],
)
async def test_check_url_refuses_internal_ip_literals_without_resolving(url: str) -> None:
    with pytest.raises(URLRefused) as info:
        await check_url(url, allow_private=False, resolver=must_not_resolve)
    assert HINT in str(info.value) or "invalid" in str(info.value)


@pytest.mark.parametrize(
    ("url", "ip"),
    [
        ("http://8.8.8.8/", "8.8.8.8"),
        ("http://134744072/", "8.8.8.8"),
        ("http://0x8.0x8.0x8.0x8/", "8.8.8.8"),
        (f"https://[{PUBLIC_V6}]:8443/", PUBLIC_V6),
    ],
)
async def test_check_url_allows_public_ip_literals_without_resolving(url: str, ip: str) -> None:
    assert await check_url(url, allow_private=False, resolver=must_not_resolve) == [ip]


@pytest.mark.parametrize("url", ["http://4294967296/", "http://0x100.1/", "http://1.0x1000000/"])
async def test_check_url_refuses_out_of_range_numeric_hosts(url: str) -> None:
    with pytest.raises(URLRefused, match="invalid IP address"):
        await check_url(url, allow_private=True, resolver=must_not_resolve)


async def test_check_url_allow_private_accepts_loopback() -> None:
    resolver = FakeResolver({"localhost": ["127.0.0.1", "::1"]})
    ips = await check_url("http://localhost:8000/", allow_private=True, resolver=resolver)
    assert ips == ["127.0.0.1", "::1"]
    assert resolver.calls == [("localhost", 8000)]
    assert await check_url("http://0x7f.1/", allow_private=True) == ["127.0.0.1"]


@pytest.mark.parametrize("allow_private", [False, True])
async def test_check_url_unresolvable_host(allow_private: bool) -> None:
    resolver = FakeResolver({"empty.example.test": []})
    with pytest.raises(URLRefused, match=r"cannot resolve host 'nowhere\.example\.test'"):
        await check_url(
            "http://nowhere.example.test/", allow_private=allow_private, resolver=resolver
        )
    with pytest.raises(URLRefused, match="cannot resolve host"):
        await check_url(
            "http://empty.example.test/", allow_private=allow_private, resolver=resolver
        )


async def test_check_url_refuses_garbage_from_resolver() -> None:
    resolver = FakeResolver({"odd.example.test": ["evil.example.test"]})
    with pytest.raises(URLRefused):
        await check_url("http://odd.example.test/", allow_private=True, resolver=resolver)


async def test_check_url_applies_syntax_check() -> None:
    with pytest.raises(URLRefused):
        await check_url("ftp://example.test/", allow_private=True, resolver=must_not_resolve)


async def test_system_resolver_numeric_hosts() -> None:
    # Numeric hosts are parsed locally by getaddrinfo: no DNS traffic.
    assert await system_resolver("127.0.0.1", 80) == ["127.0.0.1"]
    assert await system_resolver("2130706433", 80) == ["127.0.0.1"]
    assert await system_resolver("::1", 443) == ["::1"]


# --------------------------------------------------------------------------- guarded_request


async def test_get_returns_body_and_sends_original_host(
    server: LocalServer, client: httpx.AsyncClient
) -> None:
    resolver = FakeResolver({"localhost": ["127.0.0.1"]})
    url = server.url("/hello", host="localhost")
    response = await guarded_request(client, "GET", url, allow_private=True, resolver=resolver)
    assert isinstance(response, GuardedResponse)
    assert (response.status_code, response.content, response.url) == (200, b"hello world", url)
    assert response.headers["content-length"] == "11"
    assert resolver.calls == [("localhost", server.port)]
    assert [s.headers["host"] for s in server.seen] == [f"localhost:{server.port}"]


async def test_post_sends_body_and_headers(server: LocalServer, client: httpx.AsyncClient) -> None:
    response = await guarded_request(
        client,
        "POST",
        server.url("/echo"),
        allow_private=True,
        headers={"Content-Type": "application/json", "X-Signature": "abc"},
        content=b'{"id": 1}',
    )
    echoed = json.loads(response.content)
    assert echoed["method"] == "POST"
    assert echoed["body"] == '{"id": 1}'
    assert echoed["headers"]["x-signature"] == "abc"
    assert echoed["headers"]["content-type"] == "application/json"


async def test_connects_to_checked_ip_not_the_name() -> None:
    """Observed through MockTransport: nothing is connected at all."""
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, content=b"ok")

    resolver = FakeResolver({"files.example.test": [PUBLIC_V4], "v6.example.test": [PUBLIC_V6]})
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as mock_client:
        first = await guarded_request(
            mock_client,
            "GET",
            "https://files.example.test/a.png?x=1",
            allow_private=False,
            resolver=resolver,
        )
        await guarded_request(
            mock_client,
            "GET",
            "http://v6.example.test:8080/b",
            allow_private=False,
            resolver=resolver,
        )
    assert first.url == "https://files.example.test/a.png?x=1"
    https_request, http_request = sent
    assert str(https_request.url) == f"https://{PUBLIC_V4}/a.png?x=1"
    assert https_request.headers["host"] == "files.example.test"
    assert https_request.extensions["sni_hostname"] == "files.example.test"
    assert str(http_request.url) == f"http://[{PUBLIC_V6}]:8080/b"
    assert http_request.headers["host"] == "v6.example.test:8080"
    assert "sni_hostname" not in http_request.extensions


async def test_refuses_local_server_without_allow_private(
    server: LocalServer, client: httpx.AsyncClient
) -> None:
    with pytest.raises(URLRefused, match=HINT):
        await guarded_request(client, "GET", server.url("/hello"), allow_private=False)
    assert server.seen == []


async def test_falls_back_to_next_checked_address(
    server: LocalServer, client: httpx.AsyncClient
) -> None:
    # Nothing listens on 127.0.0.3/.4 (the server is bound to 127.0.0.1 only): the first
    # address is refused, the second answers, the third is never tried.
    resolver = FakeResolver({"multi.test": ["127.0.0.3", "127.0.0.1", "127.0.0.4"]})
    url = server.url("/hello", host="multi.test")
    response = await guarded_request(client, "GET", url, allow_private=True, resolver=resolver)
    assert response.content == b"hello world"


async def test_connect_error_passes_through(client: httpx.AsyncClient) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(httpx.ConnectError):
        await guarded_request(client, "GET", f"http://127.0.0.1:{port}/", allow_private=True)


async def test_max_bytes_allows_exact_size(server: LocalServer, client: httpx.AsyncClient) -> None:
    response = await guarded_request(
        client, "GET", server.url("/sized?n=1000"), allow_private=True, max_bytes=1000
    )
    assert response.content == b"x" * 1000


async def test_max_bytes_with_content_length(
    server: LocalServer, client: httpx.AsyncClient
) -> None:
    with pytest.raises(ResponseTooLarge) as info:
        await guarded_request(
            client, "GET", server.url("/sized?n=1001"), allow_private=True, max_bytes=1000
        )
    assert info.value.status_code == 200


async def test_max_bytes_rejects_declared_length_before_reading(
    server: LocalServer, client: httpx.AsyncClient
) -> None:
    # The server declares 10 MB and then sends nothing: only an early check can finish.
    started = time.monotonic()
    with pytest.raises(ResponseTooLarge):
        await guarded_request(
            client,
            "GET",
            server.url("/declared-huge"),
            allow_private=True,
            max_bytes=1000,
            timeout=5,
        )
    assert time.monotonic() - started < 2


async def test_max_bytes_without_content_length_reads_incrementally(
    server: LocalServer, client: httpx.AsyncClient
) -> None:
    # Chunked body of 2048 bytes that never ends: only an incremental check can finish.
    started = time.monotonic()
    with pytest.raises(ResponseTooLarge):
        await guarded_request(
            client, "GET", server.url("/stream"), allow_private=True, max_bytes=1000, timeout=5
        )
    assert time.monotonic() - started < 2


async def test_chunked_body_within_limit(server: LocalServer, client: httpx.AsyncClient) -> None:
    response = await guarded_request(
        client, "GET", server.url("/stream?finish=1"), allow_private=True, max_bytes=4096
    )
    assert response.content == b"y" * 2048


def redirect_path(to: str, status: int = 302) -> str:
    return "/redirect?" + urlencode({"to": to, "status": status})


async def test_redirect_returned_as_is_when_not_following(
    server: LocalServer, client: httpx.AsyncClient
) -> None:
    url = server.url(redirect_path("/hello"))
    response = await guarded_request(client, "GET", url, allow_private=True)
    assert response.status_code == 302
    assert response.headers["location"] == "/hello"
    assert response.url == url
    assert [s.path for s in server.seen] == ["/redirect"]


async def test_redirect_followed(server: LocalServer, client: httpx.AsyncClient) -> None:
    response = await guarded_request(
        client, "GET", server.url(redirect_path("/hello")), allow_private=True, max_redirects=1
    )
    assert (response.status_code, response.content) == (200, b"hello world")
    assert response.url == server.url("/hello")
    assert [s.path for s in server.seen] == ["/redirect", "/hello"]


async def test_absolute_redirect_is_resolved_and_pinned_again(
    server: LocalServer, client: httpx.AsyncClient
) -> None:
    resolver = FakeResolver({"other.test": ["127.0.0.1"]})
    target = server.url("/echo", host="other.test")
    response = await guarded_request(
        client,
        "GET",
        server.url(redirect_path(target)),
        allow_private=True,
        max_redirects=1,
        resolver=resolver,
    )
    assert response.url == target
    assert json.loads(response.content)["headers"]["host"] == f"other.test:{server.port}"
    assert resolver.calls == [("other.test", server.port)]


async def test_too_many_redirects(server: LocalServer, client: httpx.AsyncClient) -> None:
    url = server.url(redirect_path(redirect_path("/hello")))
    with pytest.raises(TooManyRedirects):
        await guarded_request(client, "GET", url, allow_private=True, max_redirects=1)
    response = await guarded_request(client, "GET", url, allow_private=True, max_redirects=2)
    assert response.content == b"hello world"


@pytest.mark.parametrize(
    ("status", "method", "expected_method", "keeps_body"),
    [
        (303, "POST", "GET", False),
        (303, "PUT", "GET", False),
        (302, "POST", "GET", False),
        (301, "POST", "GET", False),
        (302, "PUT", "PUT", True),
        (307, "POST", "POST", True),
        (308, "POST", "POST", True),
    ],
)
async def test_redirect_method_rewriting(
    server: LocalServer,
    client: httpx.AsyncClient,
    status: int,
    method: str,
    expected_method: str,
    keeps_body: bool,
) -> None:
    response = await guarded_request(
        client,
        method,
        server.url(redirect_path("/echo", status)),
        allow_private=True,
        headers={"Content-Type": "application/json"},
        content=b'{"a": 1}',
        max_redirects=1,
    )
    echoed = json.loads(response.content)
    assert echoed["method"] == expected_method
    assert echoed["body"] == ('{"a": 1}' if keeps_body else "")
    assert ("content-type" in echoed["headers"]) == keeps_body


async def test_redirect_to_other_scheme_is_refused(
    server: LocalServer, client: httpx.AsyncClient
) -> None:
    url = server.url(redirect_path("ftp://127.0.0.1/file"))
    with pytest.raises(URLRefused):
        await guarded_request(client, "GET", url, allow_private=True, max_redirects=3)
    response = await guarded_request(client, "GET", url, allow_private=True)
    assert response.status_code == 302


async def test_each_redirect_hop_is_checked(server: LocalServer, client: httpx.AsyncClient) -> None:
    # Hop 1 (127.0.0.1) is allowed by the test policy; the redirect target evil.test resolves
    # to 127.0.0.2, which the real policy refuses. Nothing is ever started on 127.0.0.2.
    resolver = FakeResolver({"evil.test": ["127.0.0.2"]})
    url = server.url(redirect_path(f"http://evil.test:{server.port}/hello"))
    with pytest.raises(URLRefused, match=r"127\.0\.0\.2"):
        await guarded_request(
            client,
            "GET",
            url,
            allow_private=False,
            max_redirects=3,
            resolver=resolver,
            _policy=allow_only_first_loopback,
        )
    assert resolver.calls == [("evil.test", server.port)]
    assert [s.path for s in server.seen] == ["/redirect"]


async def test_redirect_hop_to_localhost_name_is_refused(
    server: LocalServer, client: httpx.AsyncClient
) -> None:
    resolver = FakeResolver({"localhost": ["127.0.0.1"]})
    url = server.url(redirect_path(server.url("/hello", host="localhost")))
    with pytest.raises(URLRefused, match=HINT):
        await guarded_request(
            client,
            "GET",
            url,
            allow_private=False,
            max_redirects=3,
            resolver=resolver,
            _policy=allow_only_first_loopback,
        )
    assert [s.path for s in server.seen] == ["/redirect"]


async def test_allowed_redirect_hop_passes_policy(
    server: LocalServer, client: httpx.AsyncClient
) -> None:
    response = await guarded_request(
        client,
        "GET",
        server.url(redirect_path("/hello")),
        allow_private=False,
        max_redirects=1,
        _policy=allow_only_first_loopback,
    )
    assert response.content == b"hello world"


async def test_timeout_when_server_never_answers(
    server: LocalServer, client: httpx.AsyncClient
) -> None:
    started = time.monotonic()
    with pytest.raises(httpx.TimeoutException):
        await guarded_request(client, "GET", server.url("/hang"), allow_private=True, timeout=0.5)
    assert time.monotonic() - started < 3
    assert [s.path for s in server.seen] == ["/hang"]


async def test_overall_timeout_covers_resolution(client: httpx.AsyncClient) -> None:
    async def slow_resolver(host: str, port: int) -> list[str]:
        await asyncio.sleep(30)
        return ["127.0.0.1"]

    started = time.monotonic()
    with pytest.raises(httpx.TimeoutException):
        await guarded_request(
            client,
            "GET",
            "http://slow.test/",
            allow_private=True,
            timeout=0.3,
            resolver=slow_resolver,
        )
    assert time.monotonic() - started < 3


@pytest.mark.parametrize(
    "call",
    [
        lambda c: guarded_request(c, "GET", "ftp://x.test/", allow_private=True),
        lambda c: guarded_request(c, "GET", "http://u:p@x.test/", allow_private=True),
    ],
)
async def test_guarded_request_checks_syntax_first(
    client: httpx.AsyncClient,
    call: Callable[[httpx.AsyncClient], Awaitable[GuardedResponse]],
) -> None:
    with pytest.raises(URLRefused):
        await call(client)


async def test_negative_max_redirects_is_an_error(client: httpx.AsyncClient) -> None:
    with pytest.raises(ValueError, match="max_redirects"):
        await guarded_request(client, "GET", "http://x.test/", allow_private=True, max_redirects=-1)
