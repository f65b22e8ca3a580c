"""A real PostgreSQL server for the tests, started from the machine's own binaries (``initdb`` and
``pg_ctl``) on 127.0.0.1 and a free port, in a throw-away directory, and stopped at the end.

The binaries are looked for in ``$PG_BINDIR``, then ``pg_config --bindir``, then Debian's
``/usr/lib/postgresql/*/bin``, then ``PATH``; ``scripts/ensure-postgres`` installs them on a
machine that has none. PostgreSQL refuses to run as root, so as root the server runs as the
``postgres`` user (``runuser``)."""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.helpers import free_port

SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "max_connections": "300",
    # A test cluster thrown away at the end: durability buys nothing here.
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


DURABLE_KEEPS = ("listen_addresses", "max_connections")


class PostgresUnavailable(RuntimeError):
    pass


def find_bindir() -> Path:
    candidates: list[str] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(os.environ["PG_BINDIR"])
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        candidates.append(out.stdout.strip())
    debian = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True
    )
    candidates += debian
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(on_path).resolve().parent))
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    raise PostgresUnavailable(
        "PostgreSQL's server binaries (initdb, pg_ctl) were not found: run scripts/ensure-postgres "
        "(Debian: apt-get install postgresql) or set PG_BINDIR"
    )


class PostgresServer:
    def __init__(self, *, durable: bool = False) -> None:
        """``durable`` keeps PostgreSQL's own fsync settings (benchmarks); tests turn them off."""
        self.durable = durable
        self.bindir = find_bindir()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="hatchery-pg-"))
        self.data = self.root / "data"
        self._names = itertools.count(1)
        self._as_root = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise PostgresUnavailable(f"{' '.join(args[:2])} failed: {result.stderr}")

    def start(self) -> PostgresServer:
        if self._as_root:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        settings = {k: v for k, v in SETTINGS.items() if not self.durable or k in DURABLE_KEEPS}
        options = " ".join(f"-c {k}={v}" for k, v in settings.items())
        options += f" -p {self.port} -k {self.root}"
        log = str(self.root / "server.log")
        self._run(
            "pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data), "-l", log, "-o", options
        )
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        result = subprocess.run(
            [
                *(str(self.bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.port)),
                *("-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode != 0:
            raise AssertionError(f"psql {sql!r} failed: {result.stderr}")
        return result.stdout.strip()

    def create_database(self, prefix: str = "hatchery") -> str:
        """A new empty database; returns its URL."""
        name = f"{prefix}_{os.getpid()}_{next(self._names)}"
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w")
        except PostgresUnavailable:
            pass
        shutil.rmtree(self.root, ignore_errors=True)
