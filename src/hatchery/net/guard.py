"""Outbound URL guard against server-side request forgery (SSRF).

Hatchery fetches URLs that users hand it (``webhook_url``, ``image_urls``). Without a guard a
user could make the server talk to itself, to the private network it runs in, or to a cloud
metadata service. The policy:

* Syntax: only ``http`` and ``https``; a host must be present; no ``user:pass@`` userinfo; the
  port must be in 1..65535 (:func:`check_url_syntax`).
* Names: ``localhost`` and ``*.localhost`` are refused outright. Every other name is resolved and
  refused if *any* of its addresses is refused, so a name cannot smuggle in a private address
  next to a public one.
* Addresses (:func:`address_refusal`): only globally routable unicast addresses are allowed.
  Loopback, private (RFC 1918, fc00::/7), link-local, cloud metadata, carrier-grade NAT,
  unspecified, multicast, reserved, site-local, documentation and benchmark ranges are refused.
  IPv4-mapped (::ffff:0:0/96) and NAT64 (64:ff9b::/96) addresses are judged by the IPv4
  address they stand for alone; 6to4, Teredo, IPv4-compatible and IPv4-translated addresses
  are refused if the embedded IPv4 address is refused, and otherwise judged as IPv6.
* IP literals, including the legacy ``inet_aton`` spellings (``2130706433``, ``0x7f.1``,
  ``0177.0.0.1``, ``127.1``), are normalised and judged without resolving.
* Connections (:func:`guarded_request`) go to the address that was checked, never to the name
  again, so DNS rebinding between check and connect is impossible. The ``Host`` header and, for
  https, the TLS SNI name / certificate check still use the original name. Every redirect hop
  is checked exactly like the first request. ``allow_private=True`` (the
  ``HATCHERY_ALLOW_PRIVATE_URLS=1`` development switch, read by the caller) skips only the
  address policy; resolution and connecting to the resolved address stay the same.

Exceptions raised by this module::

    Exception
     +-- ValueError
     |    +-- URLRefused          bad syntax, refused name/address, bad redirect target
     |         +-- HostUnresolvable   the name did not resolve (may succeed later)
     +-- ResponseTooLarge         body (or its declared Content-Length) exceeds max_bytes
     +-- TooManyRedirects         more than max_redirects hops (only when max_redirects > 0)
     +-- httpx.HTTPError          passed through unchanged from the transport
          +-- httpx.TransportError
               +-- httpx.TimeoutException   (also raised when the overall deadline expires)
               +-- httpx.ConnectError, httpx.RemoteProtocolError, ...

The ``httpx.AsyncClient`` handed to :func:`guarded_request` should be dedicated to guarded
traffic and created with ``trust_env=False`` and no proxy: with a proxy the proxy resolves and
connects, which bypasses the pinned address.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import httpx

__all__ = [
    "GuardedResponse",
    "Resolver",
    "ResponseTooLarge",
    "TooManyRedirects",
    "URLRefused",
    "address_refusal",
    "check_receiver_url",
    "check_url",
    "check_url_syntax",
    "guarded_request",
    "read_body",
    "system_resolver",
]

ALLOW_HINT = "set HATCHERY_ALLOW_PRIVATE_URLS=1 to allow private addresses for local development"


class URLRefused(ValueError):
    """A URL the guard will not let us reach.

    ``str(exc)`` says why; when an address or name was refused it also says how to allow it for
    local development (``HATCHERY_ALLOW_PRIVATE_URLS=1``).
    """


class HostUnresolvable(URLRefused):
    """The host name did not resolve (now): a later attempt may succeed."""


class ResponseTooLarge(Exception):
    """The response body (or its declared ``Content-Length``) exceeded ``max_bytes``.
    ``status_code`` is the status of the response that was too large."""

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


class TooManyRedirects(Exception):
    """The server redirected more than ``max_redirects`` times."""


Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``(host, port) -> IP address strings``; raise ``OSError`` or return ``[]`` if unresolvable."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_Rule = tuple[str, Callable[[IPAddress], bool]]


@dataclass(frozen=True)
class GuardedResponse:
    """A fully read response; ``url`` is the final URL (after redirects), with its real host."""

    status_code: int
    headers: httpx.Headers
    content: bytes
    url: str


# --------------------------------------------------------------------------- address policy

_METADATA = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_PRIVATE = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")

_RULES: tuple[_Rule, ...] = (
    ("cloud metadata address", lambda ip: ip in _METADATA),
    ("loopback address", lambda ip: ip.is_loopback),
    ("unspecified address", lambda ip: ip.is_unspecified or ip in _THIS_NETWORK),
    ("link-local address", lambda ip: ip.is_link_local),
    ("multicast address", lambda ip: ip.is_multicast),
    ("carrier-grade NAT address", lambda ip: ip in _CGNAT),
    ("private address", lambda ip: any(ip in net for net in _PRIVATE)),
    ("site-local address", lambda ip: isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local),
    ("reserved address", lambda ip: ip.is_reserved),
    ("non-public address", lambda ip: not ip.is_global),
)


def _own_refusal(ip: IPAddress) -> str | None:
    """The first rule that refuses ``ip`` itself, ignoring any embedded IPv4 address."""
    for label, refuses in _RULES:
        if refuses(ip):
            return f"{label} {ip}"
    return None


def _sole_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped or NAT64 (64:ff9b::/96) address stands for."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses embedded in 6to4, Teredo, IPv4-compatible and IPv4-translated addresses."""
    found: list[ipaddress.IPv4Address] = []
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    if ip in _IPV4_TRANSLATED or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def _parse_ip(ip: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(ip)
    except ValueError:
        return None


def address_refusal(ip: str) -> str | None:
    """Why the address ``ip`` may not be contacted, or ``None`` if it is public and allowed.

    The reason is short, e.g. ``"loopback address 127.0.0.1"``.
    """
    parsed = _parse_ip(ip)
    if parsed is None:
        return f"invalid IP address {ip!r}"
    if isinstance(parsed, ipaddress.IPv4Address):
        return _own_refusal(parsed)
    sole = _sole_ipv4(parsed)
    if sole is not None:
        reason = _own_refusal(sole)
        return None if reason is None else f"{reason} (embedded in {ip})"
    for embedded in _embedded_ipv4(parsed):
        reason = _own_refusal(embedded)
        if reason is not None:
            return f"{reason} (embedded in {ip})"
    return _own_refusal(parsed)


# --------------------------------------------------------------------------- URL checks

_HOST_CHARS = re.compile(r"[A-Za-z0-9._-]+|[0-9A-Fa-f:.]+")
_LEGACY_PART = re.compile(r"0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*")


def _legacy_part(part: str) -> int:
    if part[:2].lower() == "0x":
        return int(part[2:] or "0", 16)
    return int(part, 8) if part.startswith("0") else int(part)


def _legacy_ipv4(host: str) -> str | None:
    """Normalise the ``inet_aton`` spellings (``2130706433``, ``0x7f.1``, ``127.1``).

    Returns ``None`` if ``host`` is not written in that all-numeric form; raises
    :class:`URLRefused` if it is numeric but out of range.
    """
    parts = host.removesuffix(".").split(".")
    if len(parts) > 4 or not all(_LEGACY_PART.fullmatch(p) for p in parts):
        return None
    *head, last = (_legacy_part(p) for p in parts)
    if any(v > 255 for v in head) or last >= 256 ** (4 - len(head)):
        raise URLRefused(f"invalid IP address {host!r}")
    value = sum(v << (8 * (3 - i)) for i, v in enumerate(head)) + last
    return str(ipaddress.IPv4Address(value))


def _ip_literal(host: str) -> str | None:
    """The normalised IP address if ``host`` is written as an IP literal, else ``None``."""
    parsed = _parse_ip(host)
    if parsed is not None:
        return str(parsed)
    return _legacy_ipv4(host)


def _check_parsed_syntax(parsed: httpx.URL) -> httpx.URL:
    if parsed.scheme not in ("http", "https"):
        raise URLRefused(f"only http and https URLs are allowed, not {parsed.scheme or 'none'!r}")
    if not parsed.raw_host:
        raise URLRefused("URL has no host")
    if not _HOST_CHARS.fullmatch(parsed.raw_host.decode("ascii")):
        raise URLRefused(f"URL host {parsed.raw_host.decode('ascii')!r} is not a valid host name")
    if parsed.userinfo:
        raise URLRefused("URL must not contain credentials (user:password@)")
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        raise URLRefused(f"URL port {parsed.port} is out of range")
    return parsed


_PORT_DIGITS = re.compile(r"[0-9]*")


def _port_text(url: str) -> str:
    """The port as written in ``url`` ('' when there is none), before anything parses it."""
    authority = url.partition("//")[2]
    for end in "/?#":
        authority = authority.partition(end)[0]
    host_port = authority.rpartition("@")[2]
    if host_port.startswith("["):  # an IPv6 literal: the port follows its closing bracket
        return host_port.partition("]")[2].removeprefix(":")
    return host_port.partition(":")[2]


def check_url_syntax(url: str, *, max_length: int | None = None) -> httpx.URL:
    """Parse ``url`` and check its form (scheme, host, no userinfo, port); no network access."""
    if max_length is not None and len(url) > max_length:
        raise URLRefused(f"URL is longer than {max_length} characters")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise URLRefused(f"invalid URL: {exc}") from exc
    if not _PORT_DIGITS.fullmatch(port := _port_text(url)):
        raise URLRefused(f"URL port {port!r} is not a number from 1 to 65535")
    return _check_parsed_syntax(parsed)


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve ``host`` with the event loop's ``getaddrinfo``; unique IP strings, in order."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    ips = (
        str(sockaddr[0])
        for family, _, _, _, sockaddr in infos
        if family in (socket.AF_INET, socket.AF_INET6)
    )
    return list(dict.fromkeys(ips))


def _refused(host: str, reason: str) -> URLRefused:
    return URLRefused(f"refusing host {host!r}: {reason}; {ALLOW_HINT}")


def _is_local_name(host: str) -> bool:
    name = host.removesuffix(".").lower()
    return name == "localhost" or name.endswith(".localhost")


async def _resolve(host: str, port: int, resolver: Resolver) -> list[str]:
    try:
        answers = await resolver(host, port)
    except OSError as exc:
        raise HostUnresolvable(f"cannot resolve host {host!r}: {exc}") from exc
    if not answers:
        raise HostUnresolvable(f"cannot resolve host {host!r}: no addresses")
    ips = [_parse_ip(a) for a in answers]
    if any(ip is None for ip in ips):
        raise URLRefused(f"cannot resolve host {host!r}: invalid address in {answers!r}")
    return list(dict.fromkeys(str(ip) for ip in ips))


def _default_port(url: httpx.URL) -> int:
    if url.port is not None:
        return url.port
    return 443 if url.scheme == "https" else 80


async def _checked_ips(
    url: httpx.URL,
    *,
    allow_private: bool,
    resolver: Resolver,
    policy: Callable[[str], str | None],
) -> list[str]:
    """The addresses of a syntactically checked URL that policy allows; raises URLRefused."""
    host = url.raw_host.decode("ascii")
    literal = _ip_literal(host)
    if not allow_private and literal is None and _is_local_name(host):
        raise _refused(host, "local host name")
    ips = [literal] if literal else await _resolve(host, _default_port(url), resolver)
    if not allow_private:
        for ip in ips:
            reason = policy(ip)
            if reason is not None:
                raise _refused(host, reason if literal else f"it resolves to {reason}")
    return ips


async def check_url(
    url: str, *, allow_private: bool, resolver: Resolver = system_resolver
) -> list[str]:
    """Check ``url`` fully (syntax, name, every resolved address); return the allowed IPs.

    With ``allow_private=True`` only the syntax is checked, but the host is still resolved so
    that an unresolvable host gives ``URLRefused("cannot resolve host ...")``.
    """
    parsed = check_url_syntax(url)
    return await _checked_ips(
        parsed, allow_private=allow_private, resolver=resolver, policy=address_refusal
    )


async def check_receiver_url(
    url: str, *, allow_private: bool, resolver: Resolver = system_resolver, max_length: int = 2048
) -> None:
    """A registered webhook endpoint's URL: ``https`` (checked as :func:`check_url` does), or
    plain ``http`` only where the operator allows private addresses and only to addresses that
    are not public (a development receiver); URLRefused says why not."""
    parsed = check_url_syntax(url, max_length=max_length)
    if parsed.scheme == "https":
        await check_url(url, allow_private=allow_private, resolver=resolver)
        return
    if not allow_private:
        raise URLRefused("the URL must be https")
    ips = await _checked_ips(parsed, allow_private=True, resolver=resolver, policy=address_refusal)
    public = [ip for ip in ips if address_refusal(ip) is None]
    if public:
        raise URLRefused(
            f"plain http is allowed only to private addresses, and {public[0]} is public; use https"
        )


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class _Hop:
    method: str
    url: httpx.URL
    headers: httpx.Headers
    content: bytes | None


@dataclass(frozen=True)
class _Settings:
    allow_private: bool
    timeout: float
    max_bytes: int | None
    resolver: Resolver
    policy: Callable[[str], str | None]


_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_BODY_HEADERS = ("content-type", "content-length", "transfer-encoding", "content-encoding")
_CREDENTIAL_HEADERS = ("authorization", "cookie", "proxy-authorization")


def _build_request(client: httpx.AsyncClient, hop: _Hop, ip: str, timeout: float) -> httpx.Request:
    """A request to ``ip`` that still names the original host (Host header, TLS SNI)."""
    headers = httpx.Headers(hop.headers)
    headers["Host"] = hop.url.netloc.decode("ascii")
    # Never leave a pinned connection in the pool: another name could reuse it unchecked.
    headers["Connection"] = "close"
    extensions: dict[str, object] = {}
    if hop.url.scheme == "https":
        extensions["sni_hostname"] = hop.url.raw_host.decode("ascii").removesuffix(".")
    return client.build_request(
        hop.method,
        hop.url.copy_with(host=ip),
        headers=headers,
        content=hop.content,
        timeout=httpx.Timeout(timeout),
        extensions=extensions,
    )


async def _open(client: httpx.AsyncClient, hop: _Hop, settings: _Settings) -> httpx.Response:
    """Check the hop's URL, then send it to the first checked address that accepts."""
    ips = await _checked_ips(
        hop.url,
        allow_private=settings.allow_private,
        resolver=settings.resolver,
        policy=settings.policy,
    )
    for ip in ips[:-1]:
        with contextlib.suppress(httpx.ConnectError):
            request = _build_request(client, hop, ip, settings.timeout)
            return await client.send(request, stream=True, follow_redirects=False)
    request = _build_request(client, hop, ips[-1], settings.timeout)
    return await client.send(request, stream=True, follow_redirects=False)


def _declared_length(headers: httpx.Headers) -> int | None:
    try:
        return int(headers.get("content-length", ""))
    except ValueError:
        return None


async def read_body(response: httpx.Response, method: str, max_bytes: int | None) -> bytes:
    """A streamed response's body, refused (ResponseTooLarge) as soon as it is known to be larger
    than ``max_bytes``: by its Content-Length, or while it arrives."""
    if max_bytes is None:
        return await response.aread()
    declared = _declared_length(response.headers)
    if method != "HEAD" and declared is not None and declared > max_bytes:
        raise ResponseTooLarge(
            f"response declares {declared} bytes, limit is {max_bytes}", response.status_code
        )
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > max_bytes:
            raise ResponseTooLarge(
                f"response is larger than the limit of {max_bytes} bytes", response.status_code
            )
    return bytes(body)


def _redirect_location(response: httpx.Response) -> str | None:
    if response.status_code not in _REDIRECTS:
        return None
    location: str | None = response.headers.get("location")
    return location


def _redirect_target(url: httpx.URL, location: str) -> httpx.URL:
    """The checked-for-syntax URL a ``Location`` header points to, relative to ``url``."""
    try:
        target = url.join(location)
    except httpx.InvalidURL as exc:
        raise URLRefused(f"invalid redirect location: {exc}") from exc
    return _check_parsed_syntax(target)


def _next_hop(hop: _Hop, status: int, target: httpx.URL) -> _Hop:
    """The request to make after a redirect, with browser-like method rewriting."""
    headers = httpx.Headers(hop.headers)
    method, content = hop.method, hop.content
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method, content = "GET", None
        for name in _BODY_HEADERS:
            headers.pop(name, None)
    if (target.scheme, target.raw_host, target.port) != (
        hop.url.scheme,
        hop.url.raw_host,
        hop.url.port,
    ):
        for name in _CREDENTIAL_HEADERS:
            headers.pop(name, None)
    return _Hop(method, target, headers, content)


async def _exchange(
    client: httpx.AsyncClient, hop: _Hop, max_redirects: int, settings: _Settings
) -> GuardedResponse:
    redirects = 0
    while True:
        response = await _open(client, hop, settings)
        try:
            location = _redirect_location(response)
            if location is None or max_redirects == 0:
                content = await read_body(response, hop.method, settings.max_bytes)
                return GuardedResponse(
                    response.status_code, response.headers, content, str(hop.url)
                )
            if redirects >= max_redirects:
                raise TooManyRedirects(f"more than {max_redirects} redirects")
            target = _redirect_target(hop.url, location)
        finally:
            await response.aclose()
        redirects += 1
        hop = _next_hop(hop, response.status_code, target)


async def guarded_request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    allow_private: bool,
    headers: Mapping[str, str] | None = None,
    content: bytes | None = None,
    timeout: float = 30.0,
    max_bytes: int | None = None,
    max_redirects: int = 0,
    resolver: Resolver = system_resolver,
    _policy: Callable[[str], str | None] = address_refusal,
) -> GuardedResponse:
    """Send one request through the guard and read the whole (bounded) response.

    Each hop is checked with the same rules as :func:`check_url` and sent to the checked IP.
    ``timeout`` bounds the whole exchange including resolution and redirects; when it expires
    ``httpx.TimeoutException`` is raised. With ``max_redirects == 0`` a 3xx response is
    returned as is; with ``max_redirects > 0`` exceeding it raises :class:`TooManyRedirects`.
    ``_policy`` replaces :func:`address_refusal` and exists for tests only.
    """
    if max_redirects < 0:
        raise ValueError("max_redirects must not be negative")
    first = _Hop(method.upper(), check_url_syntax(url), httpx.Headers(headers), content)
    settings = _Settings(allow_private, timeout, max_bytes, resolver, _policy)
    deadline = asyncio.timeout(timeout)
    try:
        async with deadline:
            return await _exchange(client, first, max_redirects, settings)
    except TimeoutError as exc:
        if not deadline.expired():
            raise
        raise httpx.TimeoutException(f"request not completed within {timeout} s") from exc
