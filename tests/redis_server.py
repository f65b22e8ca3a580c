"""A real Redis server for the tests, started from the machine's ``redis-server`` on 127.0.0.1 and
a free port, in a throw-away directory, with no persistence, and stopped at the end.

The binary is looked for in ``$REDIS_SERVER``, then ``PATH``, then ``/usr/bin``;
``scripts/ensure-redis`` installs it on a machine that has none."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.helpers import free_port


class RedisUnavailable(RuntimeError):
    pass


def find_redis_server() -> str:
    for candidate in (os.environ.get("REDIS_SERVER"), shutil.which("redis-server")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    if os.access("/usr/bin/redis-server", os.X_OK):
        return "/usr/bin/redis-server"
    raise RedisUnavailable(
        "redis-server was not found: run scripts/ensure-redis "
        "(Debian: apt-get install redis-server) or set REDIS_SERVER"
    )


class RedisServer:
    def __init__(self, port: int | None = None) -> None:
        self.binary = find_redis_server()
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="hatchery-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> RedisServer:
        self.proc = subprocess.Popen(
            [
                *(self.binary, "--bind", "127.0.0.1", "--port", str(self.port)),
                *("--save", "", "--appendonly", "no", "--dir", str(self.root)),
                *("--logfile", str(self.root / "redis.log"), "--daemonize", "no"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RedisUnavailable(f"redis-server exited: {self.log()}")
            if self.ping():
                return self
            time.sleep(0.05)
        raise RedisUnavailable(f"redis-server did not answer: {self.log()}")

    def log(self) -> str:
        path = self.root / "redis.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def command(self, *args: str) -> bytes:
        """One command in Redis's protocol; the first line of its answer."""
        request = f"*{len(args)}\r\n" + "".join(f"${len(a)}\r\n{a}\r\n" for a in args)
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as conn:
            conn.sendall(request.encode())
            return conn.recv(65536).split(b"\r\n", 1)[0]

    def ping(self) -> bool:
        try:
            return self.command("PING") == b"+PONG"
        except OSError:
            return False

    def flush(self) -> None:
        assert self.command("FLUSHALL") == b"+OK"

    def stop(self) -> None:
        """Stop the server (its port may be used by a new one); keep the directory."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
