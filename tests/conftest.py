"""Fixtures. Every test that touches a database runs twice: on SQLite (the embedded default) and on
a real PostgreSQL server started from the machine's binaries (``tests/pg.py``). Set
``TEST_BACKENDS=sqlite`` (or ``postgresql``) to run one of them while working on something."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from pathlib import Path

import httpx
import pytest

from hatchery.store import migrate
from hatchery.store.db import Database
from tests.dashboard_helpers import Dashboard, SignIn, new_signed_in_account
from tests.fake_upstreams import (
    FAL_KEY,
    GOOGLE_KEY,
    REPLICATE_TOKEN,
    FakeFal,
    FakeFiles,
    FakeGoogle,
    FakeReplicate,
)
from tests.helpers import LocalHTTPServer, ServerProcess, local_account
from tests.pg import PostgresServer
from tests.redis_server import RedisServer
from tests.s3_server import S3Server

BACKENDS = ("sqlite", "postgresql")


def _backends() -> list[str]:
    chosen = os.environ.get("TEST_BACKENDS", ",".join(BACKENDS)).split(",")
    unknown = set(chosen) - set(BACKENDS)
    if unknown:
        raise pytest.UsageError(f"TEST_BACKENDS: unknown backend(s) {sorted(unknown)}")
    return [b for b in BACKENDS if b in chosen]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``@pytest.mark.sqlite_only`` tests (about the embedded database itself) do not run on
    PostgreSQL, and ``@pytest.mark.postgresql_only`` ones not on SQLite; ``any_backend`` ones
    (that the database makes no difference to) run on the first backend only."""
    keep, drop = [], []
    first = _backends()[0] if _backends() else None
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("backend") if callspec else None
        other = {"sqlite": "postgresql_only", "postgresql": "sqlite_only"}.get(backend or "")
        elsewhere = backend not in (None, first) and item.get_closest_marker("any_backend")
        (drop if (other and item.get_closest_marker(other)) or elsewhere else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test whose server (a fixture's ``ServerProcess``) is no longer running shows how
    that server ended: its exit code and the last of its output."""
    report: pytest.TestReport = yield
    if report.failed:
        for name, value in getattr(item, "funcargs", {}).items():
            code = value.proc.poll() if isinstance(value, ServerProcess) and value.proc else None
            if code is not None:
                tail = "".join(value.output[-40:])
                report.sections.append((f"{name}: server exited with {code}", tail))
    return report


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real Redis server (``tests/redis_server.py``); tests that use it flush it first."""
    server = RedisServer().start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A real S3-compatible server, SeaweedFS (``tests/s3_server.py``), with one bucket; tests
    that use it keep to prefixes of their own."""
    server = S3Server().start()
    yield server
    server.close()


@pytest.fixture(scope="module", params=_backends())
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def new_database(
    backend: str, request: pytest.FixtureRequest
) -> Callable[[], tuple[str | None, str | None]]:
    """Makes the database for one server: (URL, key of local@localhost); (None, None) on SQLite,
    where the server makes both in its data dir."""

    def make() -> tuple[str | None, str | None]:
        if backend == "sqlite":
            return None, None
        pg: PostgresServer = request.getfixturevalue("postgres")
        url = pg.create_database()
        return url, local_account(url)

    return make


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    new_database: Callable[[], tuple[str | None, str | None]],
) -> Iterator[ServerProcess]:
    """One server per test module and backend, with fast timings."""
    url, key = new_database()
    proc = ServerProcess(tmp_path_factory.mktemp("hatchery"), database_url=url, key=key).start()
    yield proc
    proc.stop()


@pytest.fixture
def make_server(
    tmp_path: Path, new_database: Callable[[], tuple[str | None, str | None]]
) -> Iterator[Callable[..., ServerProcess]]:
    """Start servers with settings of the test's own; all are stopped afterwards. Starting one
    again on the same data dir reuses its database (a restart)."""
    started: list[ServerProcess] = []
    databases: dict[Path, tuple[str | None, str | None]] = {}

    def start(data_dir: Path | None = None, **settings: str) -> ServerProcess:
        data_dir = data_dir or tmp_path / f"data{len(started)}"
        restart = data_dir in databases
        if not restart:
            databases[data_dir] = new_database()
        url, key = databases[data_dir]
        proc = ServerProcess(data_dir, settings, database_url=url, key=None if restart else key)
        started.append(proc.start())
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def receiver() -> Iterator[LocalHTTPServer]:
    """A webhook receiver answering 200 to everything (tests may replace ``respond``)."""
    server = LocalHTTPServer(lambda path, method: (200, {}, b"ok"))
    yield server
    server.close()


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """An empty database (no schema) on the module's backend, for in-process store tests."""
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'q.db'}"
    pg: PostgresServer = request.getfixturevalue("postgres")
    return pg.create_database()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """The store in this process, on a fresh database at the current schema."""
    database = Database.connect(database_url)
    await migrate.upgrade(database)
    yield database
    await database.dispose()


# Fake upstream vendors (tests/fake_upstreams.py), one set per test module; a module that uses
# them marks itself ``pytest.mark.usefixtures("fresh_fakes")``.


@pytest.fixture(scope="module")
def files() -> Iterator[FakeFiles]:
    fake = FakeFiles()
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def google(files: FakeFiles) -> Iterator[FakeGoogle]:
    fake = FakeGoogle(GOOGLE_KEY, files)
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def fal(files: FakeFiles) -> Iterator[FakeFal]:
    fake = FakeFal(FAL_KEY, files)
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def replicate(files: FakeFiles) -> Iterator[FakeReplicate]:
    fake = FakeReplicate(REPLICATE_TOKEN, files)
    yield fake
    fake.close()


@pytest.fixture
def fresh_fakes(
    files: FakeFiles, google: FakeGoogle, fal: FakeFal, replicate: FakeReplicate
) -> Iterator[None]:
    """Each test starts with empty fakes, and ends with none of them having seen a request that
    breaks its vendor's protocol."""
    fakes = (files, google, fal, replicate)
    for fake in fakes:
        fake.reset()
    google.pending_polls = fal.pending_polls = replicate.pending_polls = 0
    google.hold_operations = False
    google.release.clear()
    fal.hold.clear()
    yield
    google.release.set()
    fal.hold.clear()
    for fake in fakes:
        assert fake.violations == []


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for a provider adapter under test (tests/adapter_helpers.py)."""
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


@pytest.fixture
def sign_in(server: ServerProcess) -> Iterator[SignIn]:
    """Makes a new account with a dashboard password and signs it in (on the module's server);
    the clients are closed after the test."""
    made: list[Dashboard] = []

    def make(email: str) -> Dashboard:
        made.append(new_signed_in_account(server, email))
        return made[-1]

    yield make
    for dash in made:
        dash.close()
