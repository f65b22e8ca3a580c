"""What the benchmark scripts share: free ports, a server process with its output kept, CPU and
memory read from ``/proc``, a Hatchery stack (data directory, database, an account and its key),
and a PostgreSQL server from the machine's binaries (the tests' ``tests/pg.py``)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.loadgen import proc_cpu_s
from hatchery.worker.loopwatch import percentile

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
HATCHERY = [sys.executable, "-m", "hatchery"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    used = proc_cpu_s(pid)
    if used is None:
        raise ProcessLookupError(pid)
    return used


def summary(values: list[float]) -> dict[str, float | None]:
    """p50, p99 and max of some milliseconds, rounded to 0.1 ms."""
    if not values:
        return {"p50": None, "p99": None, "max": None}
    return {
        "p50": round(percentile(values, 0.5), 1),
        "p99": round(percentile(values, 0.99), 1),
        "max": round(max(values), 1),
    }


def load(spec: dict[str, Any]) -> dict[str, Any]:
    """One run of the load generator (``bench/loadgen.py``) in its own process; its report."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.loadgen", "-"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the load generator failed: {done.stderr.strip()[-500:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def request(method: str, path: str, key: str | None = None, body: Any = None) -> dict[str, Any]:
    """A load generator's request template."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    template: dict[str, Any] = {"method": method, "path": path, "headers": headers}
    if body is not None:
        template["body"] = json.dumps(body)
    return template


def one_at_a_time(
    port: int, pid: int, path: str, key: str | None, duration: float
) -> dict[str, Any]:
    """A load spec: ``GET path`` one request at a time (a closed loop on one connection), for
    ``duration`` s after 0.5 s of warm-up, at most 5,000 requests; ``pid``'s CPU measured."""
    spec = {"port": port, "pid": pid, "mode": "closed", "connections": 1, "warmup": 0.5}
    spec |= {"duration": duration, "count": 5000, "requests": [request("GET", path, key)]}
    return spec


class Proc:
    """A child process whose output is read (and kept) by a thread, so it never blocks."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        threading.Thread(target=self._pump, daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def hatchery(env: dict[str, str], *args: str) -> str:
    """Run a ``hatchery`` admin command; its last line of output."""
    done = subprocess.run([*HATCHERY, *args], env=env, check=True, capture_output=True, text=True)
    lines = done.stdout.strip().splitlines()
    return lines[-1] if lines else ""


@dataclass
class Stack:
    """A fresh data directory and database with one funded account: what a server runs on."""

    env: dict[str, str]
    database_url: str
    key: str
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @contextmanager
    def server(self, **settings: str) -> Iterator[Proc]:
        """``hatchery serve`` on this stack, up and answering, stopped at the end."""
        proc = Proc([*HATCHERY, "serve"], self.env | settings)
        try:
            wait_http(f"{self.url}/healthz")
            yield proc
        finally:
            proc.stop()


def make_stack(database_url: str = "", balance: str = "1000000", **settings: str) -> Stack:
    """A new data directory (and the given database, else SQLite in it), migrated, with the
    account bench@example.com funded with ``balance`` dollars and a key for it; rate limits off
    unless ``settings`` turn them on."""
    data = Path(tempfile.mkdtemp(prefix="hatchery-bench-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HATCHERY_")}
    env |= {"HATCHERY_DATA_DIR": str(data), "HATCHERY_PORT": str(port)}
    # The benchmarks measure the request path at full speed from one IP with one key.
    env |= {"HATCHERY_RATE_LIMIT": "off", "HATCHERY_RATE_LIMIT_IP": "off", **settings}
    if database_url:
        env["HATCHERY_DATABASE_URL"] = database_url
    hatchery(env, "db", "upgrade")
    hatchery(env, "users", "create", "bench@example.com", "--balance", balance)
    key = hatchery(env, "keys", "create", "bench@example.com")
    db_url = database_url or f"sqlite+aiosqlite:///{data / 'hatchery.db'}"
    return Stack(env, db_url, key, port)


@contextmanager
def postgres(durable: bool = True) -> Iterator[object]:
    """A PostgreSQL server from the machine's binaries, with its default durability (fsync on)."""
    sys.path.insert(0, str(ROOT))
    from tests.pg import PostgresServer

    server = PostgresServer(durable=durable).start()
    try:
        yield server
    finally:
        server.stop()
