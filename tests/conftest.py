from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import LocalHTTPServer, ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server per test module, on the embedded default (SQLite) with fast timings."""
    proc = ServerProcess(tmp_path_factory.mktemp("hatchery")).start()
    yield proc
    proc.stop()


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start servers with settings of the test's own; all are stopped afterwards."""
    started: list[ServerProcess] = []

    def start(data_dir: Path | None = None, **settings: str) -> ServerProcess:
        proc = ServerProcess(data_dir or tmp_path / f"data{len(started)}", settings).start()
        started.append(proc)
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
