"""Settings that change what the server does: a catalog file, the stored usage and webhook
attempts, SIGTERM, and the envelope on an unexpected error."""

from __future__ import annotations

import hashlib
import json
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from hatchery.api.app import create_app
from hatchery.services import Services
from hatchery.settings import Settings
from tests.helpers import LocalHTTPServer, ServerProcess, wait_for_task

CATALOG = """
[models.sketch]
type = "image"
price_per_output = "0.0020"
providers = ["local"]

[models.clip]
type = "video"
price_per_second = "0.0100"
providers = ["local"]
"""


def test_catalog_file_replaces_the_models(
    make_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(CATALOG)
    server = make_server(HATCHERY_CATALOG=str(catalog))
    with server.client() as client:
        refused = client.post("/v1/generate", json={"model": "nanobanana", "prompt": "p"})
        assert refused.status_code == 400
        assert "must be one of: sketch, clip" in refused.json()["error"]["message"]
        task_id = client.post(
            "/v1/generate", json={"model": "clip", "prompt": "p", "duration": 2, "num_outputs": 2}
        ).json()["data"]["id"]
        task = wait_for_task(client, task_id)
    assert task["status"] == "completed" and task["type"] == "video_generate"
    assert task["cost"] == "$0.0400"
    assert len(task["output"]["urls"]) == 2


def test_usage_and_webhook_attempts_are_recorded(
    make_server: Callable[..., ServerProcess], receiver: LocalHTTPServer
) -> None:
    server = make_server(HATCHERY_WEBHOOK_BACKOFF_BASE="0.05")
    answers = iter([500, 200])
    receiver.respond = lambda path, method: (next(answers, 200), {}, b"")
    with server.client() as client:
        body = {
            "model": "nanobanana-pro",
            "prompt": "usage",
            "num_outputs": 3,
            "aspect_ratio": "9:16",
            "webhook_url": receiver.url("/u"),
        }
        task_id = client.post("/v1/generate", json=body).json()["data"]["id"]
        wait_for_task(client, task_id)
    receiver.wait_for(2, path="/u")
    deadline = time.monotonic() + 10
    usage = server.query("SELECT usage FROM tasks WHERE id = :id", id=task_id)[0][0]
    usage = json.loads(usage) if isinstance(usage, str) else usage
    while time.monotonic() < deadline:
        attempts = server.query(
            "SELECT a.attempt, a.status_code FROM webhook_attempts a JOIN webhook_deliveries d "
            "ON d.id = a.delivery_id WHERE d.subject_id = :id ORDER BY a.attempt",
            id=task_id,
        )
        if len(attempts) == 2:
            break
        time.sleep(0.1)
    status = server.query(
        "SELECT status FROM webhook_deliveries WHERE subject_id = :id", id=task_id
    )
    assert usage["outputs"] == 3
    assert usage["pixels"] == 3 * 576 * 1024
    assert usage["provider"] == "local"
    assert usage["elapsed_ms"] >= 0
    assert attempts == [(1, 500), (2, 200)]
    assert status == [("delivered",)]


def test_sigterm_finishes_running_work_and_exits(make_server: Callable[..., ServerProcess]) -> None:
    server = make_server(HATCHERY_WORKERS="1")
    with server.client() as client:
        task_id = client.post(
            "/v1/generate", json={"model": "veo3.1", "prompt": "term", "duration": 3}
        ).json()["data"]["id"]
        wait_for_task(client, task_id, until=("processing",))
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught
        assert server.proc.wait(20) in (0, -signal.SIGTERM)
    [(status, owner)] = server.query(
        "SELECT status, lease_owner FROM tasks WHERE id = :id", id=task_id
    )
    assert status == "completed"
    assert owner is None


@pytest.fixture
def crashing_app(tmp_path: Path) -> FastAPI:
    services = Services.build(Settings(data_dir=tmp_path))
    app = create_app(services, run_workers=False)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaboom")

    return app


async def test_unexpected_error_uses_the_envelope(crashing_app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=crashing_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/boom")
    assert response.status_code == 500
    assert response.json() == {
        "data": None,
        "error": {
            "code": "INTERNAL_ERROR",
            "message": "Internal server error; the request was not completed",
        },
    }
    assert "kaboom" not in response.text


def test_serve_refuses_a_catalog_with_an_unknown_provider(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.helpers import clean_env

    catalog = tmp_path / "catalog.toml"
    catalog.write_text(
        '[models.x]\ntype = "image"\nprice_per_output = "0.01"\nproviders = ["nope"]\n'
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "hatchery",
            "serve",
            "--catalog",
            str(catalog),
            "--data-dir",
            str(tmp_path / "d"),
            "--port",
            "1",
        ],
        env=clean_env({}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "unknown provider(s) nope" in result.stderr


@pytest.mark.sqlite_only
def test_keys_are_stored_only_as_hashes_and_the_first_key_is_printed_once(
    make_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    data = tmp_path / "keys"
    first = make_server(data)
    assert first.key is not None
    extra = first.new_account("hashes@example.com")
    first.stop()
    raw = b"".join(p.read_bytes() for p in data.glob("hatchery.db*"))
    assert first.key.encode() not in raw and extra.encode() not in raw
    assert hashlib.sha256(extra.encode()).hexdigest().encode() in raw

    again = make_server(data)
    assert again.key is None  # nothing printed on the second start
    assert not any("shown once" in line for line in again.output)
    with again.client(key=first.key) as client:
        assert client.get("/v1/account").json()["data"]["email"] == "local@localhost"
    assert again.query("SELECT count(*) FROM accounts") == [(2,)]


def test_reference_images_over_the_size_cap_fail_the_task(
    make_server: Callable[..., ServerProcess], receiver: LocalHTTPServer
) -> None:
    receiver.respond = lambda path, method: (
        200,
        {"Content-Type": "image/png"},
        b"\x89PNG" + b"0" * 5000,
    )
    server = make_server(HATCHERY_REFERENCE_MAX_BYTES="4096")
    with server.client() as client:
        body = {"model": "nanobanana", "prompt": "cap", "image_urls": [receiver.url("/big.png")]}
        task = wait_for_task(client, client.post("/v1/generate", json=body).json()["data"]["id"])
    assert task["status"] == "failed" and task["cost"] == "$0.00"
    assert "image_urls[0] could not be fetched" in task["error"]
    assert "4096" in task["error"]


async def test_healthz_answers_503_while_the_database_is_unreachable(tmp_path: Path) -> None:
    from tests.helpers import free_port

    nowhere = f"postgresql://hatchery@127.0.0.1:{free_port()}/hatchery"  # nothing listens there
    services = Services.build(Settings(data_dir=tmp_path, database_url=nowhere))
    app = create_app(services, run_workers=False)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/healthz")
    finally:
        await services.close()
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "SERVICE_UNAVAILABLE"
    assert error["message"].startswith("the database is unreachable")


async def test_an_api_request_while_the_database_is_unreachable_is_503(tmp_path: Path) -> None:
    from tests.helpers import free_port

    nowhere = f"postgresql://hatchery@127.0.0.1:{free_port()}/hatchery"  # nothing listens there
    services = Services.build(Settings(data_dir=tmp_path, database_url=nowhere))
    app = create_app(services, run_workers=False)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    from hatchery.domain.keys import new_api_key

    headers = {"Authorization": f"Bearer {new_api_key()}"}  # well-formed: it is looked up
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/v1/account", headers=headers)
    finally:
        await services.close()
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "SERVICE_UNAVAILABLE"
    assert error["message"].startswith("The database is unavailable")
