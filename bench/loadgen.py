"""An HTTP/1.1 load generator, run as its own process so that it does not share an event loop (or
a core's worth of Python) with the server it measures. Stdlib only (uvloop if importable).

It speaks raw HTTP/1.1 over keep-alive TCP connections: request bytes are built once from the
spec, responses are parsed by an ``asyncio.Protocol`` (status line, headers, a body delimited by
``Content-Length``, chunked encoding or the connection's end). Requests are taken round-robin
from the spec's ``requests`` list.

    python bench/loadgen.py SPEC.json        # or "-" to read the spec from stdin

The spec is a JSON object:

    {"port": 8000,                           # required; "host" defaults to 127.0.0.1
     "requests": [{"method": "POST", "path": "/v1/tasks",
                   "headers": {"Content-Type": "application/json"}, "body": "{}"}],
     "mode": "closed",                       # or "open"
     "connections": 32,                      # closed: in flight; open: pool (lazy); default 1
     "rate": 500,                            # open only: requests scheduled per second
     "duration": 10, "count": 100000,        # bound on sending; whichever comes first
     "warmup": 2,                            # seconds sent but not recorded (default 0)
     "drain": 2,                             # open only: seconds to wait for answers after
                                             # the last send (default: until "timeout")
     "timeout": 40,                          # abandon the run ("aborted": true); duration+30
     "record_bodies": false,                 # return each recorded response's body
     "pid": 1234}                            # server process: report its CPU per request

``Host`` and ``Content-Length`` are added unless the template sets them. ``count`` caps every
request sent, warm-up included. ``closed`` mode keeps ``connections`` requests in flight, each
connection sending its next request when the previous response has arrived. ``open`` mode
schedules requests at exact intervals of ``1/rate`` whatever the responses; a request that finds
no free connection waits for one, and its latency runs from its *scheduled* start, so a slow
server is not hidden by the generator backing off (coordinated omission). (The loop's timers
have a 1 ms resolution, so a request may be written up to about 1 ms before its time rather than
after it; its latency then runs from the write.) A connection error or a request that takes
longer than 30 s counts as an error; the connection is replaced. Without ``duration``, the
default ``timeout`` is the open schedule's length (5 min in closed mode) + 30 s. In open mode,
``drain`` bounds the wait after the last request was scheduled: a server that falls behind the
rate builds a backlog that would otherwise take it long to work off. Whatever is still queued or
in flight then is given up: counted as ``unfinished`` (if scheduled in the recorded window), with
its latency so far (from its scheduled start to the give-up) among the latencies, so that the
percentiles are lower bounds of what the server would have taken.

It prints one JSON object: ``mode``, ``requests`` (recorded responses), ``errors``, ``status``
(code -> count), ``elapsed_s`` (the recorded window: from the end of the warm-up to the last
response), ``throughput_rps``, ``latency_ms`` (nearest-rank ``p50``, ``p90``, ``p99``, and
``max``, ``mean``), ``loadgen_cpu_s`` and ``loadgen_cpu_us_per_request`` (this process, same
window), ``connections_opened``, ``aborted``; with ``pid``, ``server_cpu_s`` and
``server_cpu_us_per_request``; in open mode ``target_rate`` and ``achieved_send_rate`` (recorded
responses and errors / ``elapsed_s``: below the target when the server falls behind or the pool
is exhausted) and ``unfinished``; with ``record_bodies``,
``responses``: ``[{"t": wall time of the scheduled start, "latency_ms", "status", "body"}]``.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

REQUEST_TIMEOUT_S = 30.0
CONNECT_RETRY_PAUSE_S = 0.01
EARLY_S = 0.001  # open mode: how early a request may be handed to a connection
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
NO_BODY_STATUSES = frozenset({204, 304})
CONTENT_LENGTH = b"\r\ncontent-length:"
TRANSFER_ENCODING = b"\r\ntransfer-encoding:"
CONNECTION = b"\r\nconnection:"

Prepared = tuple[bytes, bool]  # request bytes, whether the response has no body (HEAD)
Result = tuple[int, bytes]  # status, body
Exchange = tuple["Conn | None", Result | None, float]  # connection to reuse, result, write time


# --------------------------------------------------------------------------------------- spec


@dataclass(frozen=True, slots=True)
class Spec:
    host: str
    port: int
    requests: list[Prepared]
    mode: str
    connections: int
    rate: float
    duration: float
    count: int
    warmup: float
    drain: float
    timeout: float
    record_bodies: bool
    pid: int | None


def build_request(template: dict[str, Any], host: str, port: int) -> Prepared:
    """The bytes of one request, with ``Host`` and ``Content-Length`` added when missing."""
    method = str(template.get("method", "GET")).upper()
    text = template.get("body")
    body = b"" if text is None else str(text).encode("utf-8")
    headers: dict[str, Any] = dict(template.get("headers") or {})
    names = {name.lower() for name in headers}
    lines = [f"{method} {template.get('path', '/')} HTTP/1.1"]
    if "host" not in names:
        lines.append(f"Host: {host}:{port}")
    lines.extend(f"{name}: {value}" for name, value in headers.items())
    if "content-length" not in names and (body or method in BODY_METHODS):
        lines.append(f"Content-Length: {len(body)}")
    head = "\r\n".join(lines) + "\r\n\r\n"
    return head.encode("utf-8") + body, method == "HEAD"


def default_timeout(raw: dict[str, Any]) -> float:
    """``duration`` + 30 s; without a duration, the open schedule's length (or 5 min) + 30 s."""
    if raw.get("duration") is not None:
        return float(raw["duration"]) + 30.0
    if raw.get("mode") == "open":
        return int(raw["count"]) / float(raw["rate"]) + 30.0
    return 330.0


def check_spec(raw: dict[str, Any]) -> None:
    if raw.get("mode", "closed") not in ("closed", "open"):
        raise ValueError('"mode" must be "closed" or "open"')
    if not raw.get("requests"):
        raise ValueError('"requests" must list at least one request')
    if raw.get("duration") is None and raw.get("count") is None:
        raise ValueError('give "duration" and/or "count"')
    if raw.get("mode") == "open" and float(raw.get("rate") or 0) <= 0:
        raise ValueError('open mode needs a positive "rate"')
    if "port" not in raw:
        raise ValueError('"port" is required')


def load_spec(raw: dict[str, Any]) -> Spec:
    check_spec(raw)
    host, port = str(raw.get("host", "127.0.0.1")), int(raw["port"])
    duration, count = raw.get("duration"), raw.get("count")
    return Spec(
        host=host,
        port=port,
        requests=[build_request(template, host, port) for template in raw["requests"]],
        mode=str(raw.get("mode", "closed")),
        connections=max(1, int(raw.get("connections", 1))),
        rate=float(raw.get("rate") or 0),
        duration=math.inf if duration is None else float(duration),
        count=sys.maxsize if count is None else int(count),
        warmup=float(raw.get("warmup", 0)),
        drain=math.inf if raw.get("drain") is None else float(raw["drain"]),
        timeout=float(raw.get("timeout") or default_timeout(raw)),
        record_bodies=bool(raw.get("record_bodies", False)),
        pid=None if raw.get("pid") is None else int(raw["pid"]),
    )


# ---------------------------------------------------------------------------------- protocol


def header_value(head: bytearray, key: bytes) -> bytes | None:
    """The value of a header in a lower-cased head; ``key`` is ``b"\\r\\nname:"``."""
    at = head.find(key)
    if at < 0:
        return None
    start = at + len(key)
    end = head.find(b"\r\n", start)
    return bytes(head[start : end if end >= 0 else len(head)]).strip()


def chunked_trailer(buf: bytearray, pos: int, parts: list[bytes]) -> tuple[bytes, int] | None:
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        if eol == pos:
            return b"".join(parts), eol + 2
        pos = eol + 2


def decode_chunked(buf: bytearray, pos: int) -> tuple[bytes, int] | None:
    """A complete chunked body from ``pos`` and the index after it, or None if incomplete."""
    parts: list[bytes] = []
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(bytes(buf[pos:eol]).split(b";", 1)[0], 16)
        if size == 0:
            return chunked_trailer(buf, eol + 2, parts)
        end = eol + 2 + size
        if len(buf) < end + 2:
            return None
        parts.append(bytes(buf[eol + 2 : end]))
        pos = end + 2


class Conn(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[Result] | None = None
        self.head_only = False
        self.sent_at = 0.0
        self.closed = False
        self.keep_alive = True
        self.until_close: tuple[int, int] | None = None  # status, body start

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.until_close is not None:
            status, start = self.until_close
            self.resolve(status, bytes(self.buf[start:]))
        self.fail(ConnectionError("connection closed by the server"))

    def request(self, data: bytes, head_only: bool) -> asyncio.Future[Result]:
        if self.closed or self.transport is None:
            raise ConnectionError("connection is closed")
        waiter = self.loop.create_future()
        self.waiter, self.head_only, self.sent_at = waiter, head_only, time.perf_counter()
        self.transport.write(data)
        return waiter

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.waiter is None:
            return
        try:
            self.parse()
        except ValueError:
            self.fail(ConnectionError("malformed response"))
            self.close()

    def parse(self) -> None:
        buf = self.buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = buf[:end].lower()
        if not head.startswith(b"http/1."):
            raise ValueError("not an HTTP/1.x response")
        status = int(head[9:12])
        if status < 200:  # interim (100 Continue): skip it
            del buf[: end + 4]
            self.parse()
            return
        framed = self.body(head, status, end + 4)
        if framed is None:
            return
        body, consumed = framed
        del buf[:consumed]
        self.keep_alive = header_value(head, CONNECTION) != b"close"
        self.resolve(status, body)

    def body(self, head: bytearray, status: int, start: int) -> tuple[bytes, int] | None:
        if self.head_only or status in NO_BODY_STATUSES:
            return b"", start
        length = header_value(head, CONTENT_LENGTH)
        if length is not None:
            end = start + int(length)
            return (bytes(self.buf[start:end]), end) if len(self.buf) >= end else None
        if b"chunked" in (header_value(head, TRANSFER_ENCODING) or b""):
            return decode_chunked(self.buf, start)
        self.until_close = (status, start)
        return None

    def resolve(self, status: int, body: bytes) -> None:
        waiter, self.waiter, self.until_close = self.waiter, None, None
        if waiter is not None and not waiter.done():
            waiter.set_result((status, body))
        if not self.keep_alive:
            self.close()

    def fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def expire(self, now: float) -> None:
        if self.waiter is not None and now - self.sent_at > REQUEST_TIMEOUT_S:
            self.fail(TimeoutError("no response within the request timeout"))
            self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


# ------------------------------------------------------------------------------- statistics


def proc_cpu_s(pid: int | None) -> float | None:
    """utime + stime of a process, in seconds (None if there is no such process)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def latency_summary(latencies: list[float]) -> dict[str, float | None]:
    if not latencies:
        return dict.fromkeys(("p50", "p90", "p99", "max", "mean"))
    ordered = sorted(latencies)
    summary = {f"p{q}": percentile(ordered, q) for q in (50, 90, 99)}
    summary["max"], summary["mean"] = ordered[-1], sum(ordered) / len(ordered)
    return {key: round(value * 1000, 3) for key, value in summary.items()}


def per_request_us(cpu_s: float | None, requests: int) -> float | None:
    return None if cpu_s is None or not requests else round(cpu_s / requests * 1e6, 1)


def cpu_delta(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else round(end - start, 3)


# ------------------------------------------------------------------------------------- run


class Run:
    """The state of one run: what was sent, what was recorded, the open connections."""

    def __init__(self, spec: Spec, loop: asyncio.AbstractEventLoop) -> None:
        self.spec, self.loop = spec, loop
        self.t0, self.wall0 = time.perf_counter(), time.time()
        self.window_start = self.t0 + spec.warmup
        self.send_end = self.t0 + spec.duration
        self.end = self.window_start
        self.sent = 0
        self.latencies: list[float] = []
        self.status: dict[int, int] = {}
        self.errors = 0
        self.unfinished = 0
        self.responses: list[dict[str, Any]] = []
        self.conns: set[Conn] = set()
        self.opened = 0
        self.cpu: dict[str, float | None] = {}

    def open_window(self) -> None:
        self.cpu["server0"] = proc_cpu_s(self.spec.pid)
        self.cpu["self0"] = time.process_time()

    def close_window(self) -> None:
        self.end = max(time.perf_counter(), self.window_start)
        self.cpu["server1"] = proc_cpu_s(self.spec.pid)
        self.cpu["self1"] = time.process_time()

    def take(self) -> int | None:
        """The next request's index in closed mode, or None when sending is over."""
        if self.sent >= self.spec.count or time.perf_counter() >= self.send_end:
            return None
        self.sent += 1
        return self.sent - 1

    async def connect(self) -> Conn:
        spec = self.spec
        connecting = self.loop.create_connection(lambda: Conn(self.loop), spec.host, spec.port)
        _, conn = await asyncio.wait_for(connecting, REQUEST_TIMEOUT_S)
        self.conns.add(conn)
        self.opened += 1
        return conn

    def drop(self, conn: Conn) -> None:
        conn.close()
        self.conns.discard(conn)

    async def exchange(self, conn: Conn | None, index: int) -> Exchange:
        """Send request ``index`` (on a new connection if needed) and wait for its response;
        also say when the request was written."""
        data, head_only = self.spec.requests[index % len(self.spec.requests)]
        written = time.perf_counter()
        try:
            if conn is None or conn.closed:
                conn = await self.connect()
            written = time.perf_counter()
            result = await conn.request(data, head_only)
        except (OSError, TimeoutError):
            if conn is not None:
                self.drop(conn)
            await asyncio.sleep(CONNECT_RETRY_PAUSE_S)
            return None, None, written
        if not conn.keep_alive:
            self.drop(conn)
            return None, result, written
        return conn, result, written

    def record(self, scheduled: float, started: float, result: Result | None) -> None:
        """Record a response (or an error) if it was scheduled in the recorded window; its
        latency runs from ``started``."""
        if scheduled < self.window_start:
            return
        if result is None:
            self.errors += 1
            return
        latency = time.perf_counter() - started
        status, body = result
        self.latencies.append(latency)
        self.status[status] = self.status.get(status, 0) + 1
        if self.spec.record_bodies:
            self.responses.append(
                {
                    "t": round(self.wall0 + scheduled - self.t0, 6),
                    "latency_ms": round(latency * 1000, 3),
                    "status": status,
                    "body": body.decode("utf-8", errors="replace"),
                }
            )

    def give_up(self, scheduled: float, now: float) -> None:
        """Count a request that got no answer before the drain ended, if it was scheduled in
        the recorded window; its latency so far is a lower bound of its latency."""
        if scheduled < self.window_start:
            return
        self.unfinished += 1
        self.latencies.append(now - scheduled)

    async def watch(self) -> None:
        """Fail the requests that have waited longer than the per-request timeout."""
        while True:
            await asyncio.sleep(1.0)
            now = time.perf_counter()
            for conn in list(self.conns):
                conn.expire(now)
                if conn.closed:
                    self.conns.discard(conn)

    def close_all(self) -> None:
        for conn in list(self.conns):
            self.drop(conn)

    def report(self, aborted: bool) -> dict[str, Any]:
        requests, elapsed = len(self.latencies) - self.unfinished, self.end - self.window_start
        server_cpu = cpu_delta(self.cpu.get("server0"), self.cpu.get("server1"))
        own_cpu = cpu_delta(self.cpu.get("self0"), self.cpu.get("self1"))
        out: dict[str, Any] = {
            "mode": self.spec.mode,
            "requests": requests,
            "errors": self.errors,
            "status": dict(sorted(self.status.items())),
            "elapsed_s": round(elapsed, 3),
            "throughput_rps": round(requests / elapsed, 1) if elapsed > 0 else None,
            "latency_ms": latency_summary(self.latencies),
        }
        if self.spec.mode == "open":
            out["target_rate"] = self.spec.rate
            sent = requests + self.errors
            out["achieved_send_rate"] = round(sent / elapsed, 1) if elapsed > 0 else None
            out["unfinished"] = self.unfinished
        if self.spec.pid is not None:
            out["server_cpu_s"] = server_cpu
            out["server_cpu_us_per_request"] = per_request_us(server_cpu, requests)
        out["loadgen_cpu_s"] = own_cpu
        out["loadgen_cpu_us_per_request"] = per_request_us(own_cpu, requests)
        out["connections_opened"] = self.opened
        out["aborted"] = aborted
        if self.spec.record_bodies:
            out["responses"] = self.responses
        return out


# ------------------------------------------------------------------------------------ modes


async def closed_worker(run: Run) -> None:
    conn: Conn | None = None
    while (index := run.take()) is not None:
        started = time.perf_counter()
        conn, result, _ = await run.exchange(conn, index)
        run.record(started, started, result)
    if conn is not None:
        run.drop(conn)


async def run_closed(run: Run) -> None:
    await asyncio.gather(*(closed_worker(run) for _ in range(run.spec.connections)))


class OpenPool:
    """Up to ``connections`` workers, each with its connection, serving a FIFO of due requests."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.queue: asyncio.Queue[tuple[float, int] | None] = asyncio.Queue()
        self.workers: list[asyncio.Task[None]] = []
        self.idle = 0
        self.pending: dict[int, float] = {}  # index -> scheduled, until recorded

    def submit(self, scheduled: float, index: int) -> None:
        self.pending[index] = scheduled
        self.queue.put_nowait((scheduled, index))
        if self.queue.qsize() > self.idle and len(self.workers) < self.run.spec.connections:
            self.idle += 1
            self.workers.append(asyncio.ensure_future(self.worker()))

    async def worker(self) -> None:
        run, conn = self.run, None
        while (item := await self.queue.get()) is not None:
            self.idle -= 1
            scheduled, index = item
            conn, result, written = await run.exchange(conn, index)
            run.record(scheduled, min(scheduled, written), result)
            del self.pending[index]
            self.idle += 1
        if conn is not None:
            run.drop(conn)

    async def finish(self) -> None:
        for _ in self.workers:
            self.queue.put_nowait(None)
        await asyncio.gather(*self.workers)

    def give_up(self) -> None:
        """Stop waiting: what is queued or in flight is unfinished."""
        for task in self.workers:
            task.cancel()
        now = time.perf_counter()
        for scheduled in self.pending.values():
            self.run.give_up(scheduled, now)
        self.pending.clear()


async def run_open(run: Run) -> None:
    """Hand each request to the pool at its scheduled time, or about ``EARLY_S`` before it (the
    loop's timers have a resolution of 1 ms, and waking late would be charged to the server);
    between two batches, sleep at least ``EARLY_S`` so that the dispatcher never spins."""
    pool, interval, index = OpenPool(run), 1.0 / run.spec.rate, 0
    try:
        while index < run.spec.count:
            scheduled = run.t0 + index * interval
            if scheduled >= run.send_end:
                break
            delay = scheduled - EARLY_S - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(max(delay, EARLY_S))
            pool.submit(scheduled, index)
            index += 1
        run.sent = index
        drain = None if math.isinf(run.spec.drain) else run.spec.drain
        try:
            await asyncio.wait_for(pool.finish(), drain)
        except TimeoutError:
            pool.give_up()
    finally:
        for task in pool.workers:
            task.cancel()


async def execute(spec: Spec) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    run = Run(spec, loop)
    watchdog = asyncio.ensure_future(run.watch())
    window = loop.call_later(spec.warmup, run.open_window)
    drive = run_closed if spec.mode == "closed" else run_open
    aborted = False
    try:
        await asyncio.wait_for(drive(run), spec.timeout)
    except TimeoutError:
        aborted = True
    finally:
        window.cancel()
        if "self0" not in run.cpu:  # ended within the warm-up
            run.open_window()
        run.close_window()
        watchdog.cancel()
        run.close_all()
    return run.report(aborted)


# -------------------------------------------------------------------------------------- cli


def run_async(main: Callable[[], Coroutine[Any, Any, dict[str, Any]]]) -> dict[str, Any]:
    try:
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main())


def read_spec(argument: str) -> dict[str, Any]:
    text = sys.stdin.read() if argument == "-" else Path(argument).read_text()
    raw = json.loads(text)
    if not isinstance(raw, dict):
        raise ValueError("the spec must be a JSON object")
    return raw


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} SPEC.json|-", file=sys.stderr)
        return 2
    try:
        spec = load_spec(read_spec(argv[1]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"bad spec: {exc}", file=sys.stderr)
        return 2
    result = run_async(lambda: execute(spec))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
