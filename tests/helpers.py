"""Real components for tests: a Hatchery server in a subprocess on 127.0.0.1, a webhook receiver,
and a small origin server for reference images. Everything listens on loopback only."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

FAST_SETTINGS = {
    "HATCHERY_ALLOW_PRIVATE_URLS": "1",
    "HATCHERY_LEASE_SECONDS": "2",
    "HATCHERY_REAPER_INTERVAL": "0.5",
    "HATCHERY_POLL_INTERVAL": "0.5",
    "HATCHERY_WEBHOOK_BACKOFF_BASE": "0.2",
    "HATCHERY_WEBHOOK_TIMEOUT": "5",
    "HATCHERY_WEBHOOK_ENDPOINT_TIMEOUT": "5",  # a claim's lease is twice the longer timeout
    "HATCHERY_SHUTDOWN_GRACE": "5",
    "HATCHERY_WORKERS": "4",
    "HATCHERY_HEARTBEAT_INTERVAL": "0.5",
    "HATCHERY_ROUTES_REFRESH": "0.5",
    "HATCHERY_LOG_LEVEL": "warning",
    "HATCHERY_METRICS_PORT": "0",  # workers on one host would share 9464 (a test sets its own)
    # tests sign in to the dashboard many times from one IP (the limit is tested on its own)
    "HATCHERY_DASHBOARD_SIGNIN_LIMIT": "1000/minute",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HATCHERY_")}
    env.update(extra)
    return env


def query(url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """Run one SQL statement on a Hatchery database (SQLite or PostgreSQL) and return its rows;
    ``:name`` placeholders take ``params``."""
    import sqlalchemy as sa

    from hatchery.store.db import Database

    async def run() -> list[tuple[Any, ...]]:
        db = Database.connect(url, pool_size=1)
        try:
            async with db.write() as conn:
                result = await conn.execute(sa.text(sql), params)
                return [tuple(r) for r in result] if result.returns_rows else []
        finally:
            await db.dispose()

    return asyncio.run(run())


def create_account(
    url: str, email: str, balance: str = "10.00", *, migrate: bool = False, admin: bool = False
) -> str:
    """Create an account and an API key on a Hatchery database, in this process (what
    ``hatchery users create`` and ``keys create`` do, without starting a subprocess for each);
    returns the key. ``migrate`` first brings the schema up to date; ``admin`` grants the role
    (``hatchery users grant-admin``)."""
    from hatchery import admin as actions
    from hatchery.domain.money import parse_dollars
    from hatchery.store import migrate as migrations
    from hatchery.store.db import Database

    async def run() -> str:
        db = Database.connect(url, pool_size=1)
        try:
            if migrate:
                await migrations.upgrade(db)
            await actions.create_user(db, email, parse_dollars(balance))
            if admin:
                await actions.set_role(db, email, "admin")
            return await actions.create_key(db, email)
        finally:
            await db.dispose()

    return asyncio.run(run())


def local_account(url: str) -> str:
    """Migrate a new PostgreSQL database and give it the account `serve` makes on a new SQLite
    one (local@localhost, $10.00); returns its key."""
    from hatchery import admin

    return create_account(url, admin.LOCAL_EMAIL, "10.00", migrate=True)


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{data_dir / 'hatchery.db'}"


@dataclass
class ServerProcess:
    """``hatchery serve`` (or another command) in a subprocess, with its data dir and database
    kept across restarts. ``database_url`` None means the embedded SQLite in ``data_dir``."""

    data_dir: Path
    settings: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[str] | None = None
    key: str | None = None
    output: list[str] = field(default_factory=list)
    database_url: str | None = None
    command: tuple[str, ...] = ("serve",)

    @property
    def db_url(self) -> str:
        return self.database_url or sqlite_url(self.data_dir)

    def query(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        return query(self.db_url, sql, **params)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        base = {
            **FAST_SETTINGS,
            "HATCHERY_HOST": "127.0.0.1",
            "HATCHERY_PORT": str(self.port),
            "HATCHERY_DATA_DIR": str(self.data_dir),
        }
        if self.database_url:
            base["HATCHERY_DATABASE_URL"] = self.database_url
        return clean_env({**base, **self.settings})

    def start(self, timeout: float = 30.0, *, wait: bool = True) -> ServerProcess:
        """Start it; with ``wait``, until it answers ``/healthz`` (an API process)."""
        self.output = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hatchery", *self.command],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._pump_thread = threading.Thread(target=self._pump, args=(self.proc,), daemon=True)
        self._pump_thread.start()
        if not wait:
            return self
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited:\n" + "".join(self.output))
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            time.sleep(0.1)
        raise RuntimeError("server did not start:\n" + "".join(self.output))

    def _pump(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.output.append(line)
            found = re.search(r"^\s+(hk_[A-Za-z0-9]+)$", line)
            if found and self.key is None:
                self.key = found.group(1)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self._close()

    def _close(self) -> None:
        if self.proc and self.proc.stdout:
            self._pump_thread.join(5)
            self.proc.stdout.close()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close()

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``hatchery ARGS`` against this server's database."""
        result = subprocess.run(
            [sys.executable, "-m", "hatchery", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"hatchery {' '.join(args)} failed: {result.stderr}")
        return result

    def change_access(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run an admin command that changes a key or an account's status or rate limit, then
        wait out the server's key cache (``HATCHERY_KEY_CACHE_SECONDS``, 1 s by default): on
        SQLite that is how long the server may go on using what it read before (on PostgreSQL
        it hears of the change at once)."""
        result = self.cli(*args)
        time.sleep(float(self.settings.get("HATCHERY_KEY_CACHE_SECONDS", "1")) + 0.05)
        return result

    def client(self, key: str | None = None) -> httpx.Client:
        token = key or self.key
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def new_account(self, email: str, balance: str = "10.00", *, admin: bool = False) -> str:
        return create_account(self.db_url, email, balance, admin=admin)


def wait_for_task(
    client: httpx.Client,
    task_id: str,
    timeout: float = 60.0,
    until: tuple[str, ...] = ("completed", "failed"),
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task: dict[str, Any] = client.get(f"/v1/tasks/{task_id}").json()["data"]
        if task["status"] in until:
            return task
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} not in {until} after {timeout}s: {task}")


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class ThreadingServer(ThreadingHTTPServer):
    daemon_threads = True


def reply(
    handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str], payload: bytes
) -> None:
    handler.send_response(status)
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    handler.wfile.write(payload)


class LocalHTTPServer:
    """A real HTTP server on 127.0.0.1 whose answers a test chooses. ``respond(path, method)``
    returns (status, headers, body)."""

    def __init__(self, respond: Callable[[str, str], tuple[int, dict[str, str], bytes]]) -> None:
        self.received: list[Received] = []
        self.respond = respond
        self._cond = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if len(body) < length:  # the sender died mid-request (SIGKILL): no request
                    self.close_connection = True
                    return
                with outer._cond:
                    outer.received.append(Received(self.path, dict(self.headers.items()), body))
                    outer._cond.notify_all()
                reply(self, *outer.respond(self.path, self.command))

            do_GET = do_POST = _handle

        self.httpd = ThreadingServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_for(
        self, count: int, timeout: float = 30.0, path: str | None = None
    ) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [r for r in self.received if path is None or r.path == path]
                if len(got) >= count:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} requests on {path}, got {len(got)}")
                self._cond.wait(left)

    def wait_for_tasks(
        self, task_ids: set[str], path: str, timeout: float = 60.0
    ) -> list[Received]:
        """Wait until a webhook for each of ``task_ids`` arrived on ``path`` (redeliveries may
        come too); returns every request received there."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [r for r in self.received if r.path == path]
                missing = task_ids - {r.json()["task_id"] for r in got}
                if not missing:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"no webhook for {len(missing)} task(s): {sorted(missing)[:5]}"
                    )
                self._cond.wait(left)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextlib.contextmanager
def running_server(data_dir: Path, **settings: str) -> Iterator[ServerProcess]:
    server = ServerProcess(data_dir, settings).start()
    try:
        yield server
    finally:
        server.stop()


ROOT = Path(__file__).resolve().parents[1]
SDK_PYTHON = Path(os.environ.get("VIDEOGEN_VENV", ROOT / ".venv-videogen")) / "bin" / "python"


def run_videogen_sdk(script: str, *args: str, timeout: float = 120) -> dict[str, Any]:
    """Run ``tests/sdk/SCRIPT`` with the VideoGen SDK's own virtual environment (made by
    ``scripts/ensure-videogen-sdk`` if missing); what it printed last, as JSON."""
    # Under a lock: pytest-xdist's workers may all get here on a fresh checkout, and one must not
    # use the environment while another is still making it.
    with open(Path(tempfile.gettempdir()) / "hatchery-videogen-sdk.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not SDK_PYTHON.exists():
            subprocess.run(
                ["bash", str(ROOT / "scripts" / "ensure-videogen-sdk")], check=True, cwd=ROOT
            )
    result = subprocess.run(
        [str(SDK_PYTHON), str(ROOT / "tests" / "sdk" / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")},
    )
    assert result.returncode == 0, result.stderr
    seen: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return seen
