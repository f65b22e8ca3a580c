"""Authentication and account state, with seed 003's messages, through the CLI and real HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.helpers import ServerProcess

GEN = {"model": "nanobanana", "prompt": "auth check"}


def error_of(response: object) -> tuple[int, str, str]:
    body = response.json()  # type: ignore[attr-defined]
    assert body["data"] is None
    return response.status_code, body["error"]["code"], body["error"]["message"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", ["/v1/tasks", "/v1/account", "/v1/tasks/gen_abcdefabcdef"])
def test_missing_header(server: ServerProcess, path: str) -> None:
    with server.client(key="") as client:
        client.headers.pop("Authorization", None)
        assert error_of(client.get(path)) == (401, "UNAUTHORIZED", "Missing Authorization header")


@pytest.mark.parametrize(
    "header", ["Token abc", "Bearer", "Bearer a b", "hk_abc", "Basic dXNlcjpwYXNz"]
)
def test_wrong_format(server: ServerProcess, header: str) -> None:
    with server.client() as client:
        response = client.post("/v1/generate", json=GEN, headers={"Authorization": header})
    assert error_of(response) == (
        401,
        "UNAUTHORIZED",
        "Invalid Authorization format, expected 'Bearer <token>'",
    )


@pytest.mark.parametrize("token", ["hk_unknownunknownunknownunknownunknown123", "sk-other", "x"])
def test_unknown_key(server: ServerProcess, token: str) -> None:
    with server.client(key=token) as client:
        status, code, _ = error_of(client.get("/v1/account"))
    assert (status, code) == (401, "UNAUTHORIZED")


def test_key_with_right_prefix_but_wrong_secret(server: ServerProcess) -> None:
    assert server.key
    forged = server.key[:-4] + ("AAAA" if not server.key.endswith("AAAA") else "BBBB")
    with server.client(key=forged) as client:
        assert error_of(client.get("/v1/account"))[:2] == (401, "UNAUTHORIZED")


def refused(client: object, within: float, path: str = "/v1/account") -> int:
    """The first refusal (401 or 403) a request to ``path`` gets within ``within`` seconds; 200
    if none did."""
    deadline = time.monotonic() + within
    while True:
        status: int = client.get(path).status_code  # type: ignore[attr-defined]
        if status in (401, 403) or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


# A process keeps a key in memory for HATCHERY_KEY_CACHE_SECONDS (1 s by default): a change made
# by another process reaches it within that on SQLite, and at once on PostgreSQL (NOTIFY). The
# extra seconds are for a slow machine, not part of the promise.
LIFETIME_AND_SLACK = 1.0 + 2.0


def test_revoked_key(server: ServerProcess) -> None:
    key = server.new_account("revoke@example.com")
    with server.client(key=key) as client:
        assert client.get("/v1/account").status_code == 200
        server.cli("keys", "revoke", key[:13])
        assert refused(client, LIFETIME_AND_SLACK) == 401
        assert error_of(client.get("/v1/account"))[:2] == (401, "UNAUTHORIZED")


def test_a_key_revoked_by_hand_is_refused_within_the_cache_lifetime(server: ServerProcess) -> None:
    key = server.new_account("revoke-sql@example.com")
    with server.client(key=key) as client:
        assert client.get("/v1/account").status_code == 200  # now in the process's cache
        server.query(
            "UPDATE api_keys SET revoked_at = created_at WHERE prefix = :prefix", prefix=key[:13]
        )
        assert refused(client, LIFETIME_AND_SLACK) == 401


@pytest.mark.postgresql_only
@pytest.mark.slow
def test_postgresql_key_changes_reach_every_process_through_notify(
    make_server: Callable[..., ServerProcess],
) -> None:
    """Two API processes that keep keys for a minute: a revocation and a suspension, made by
    hand-written SQL, are refused by both within seconds (migration 0007's triggers)."""
    first = make_server(HATCHERY_KEY_CACHE_SECONDS="60", HATCHERY_WORKERS="0")
    second = make_server(first.data_dir, HATCHERY_KEY_CACHE_SECONDS="60", HATCHERY_WORKERS="0")
    revoked, suspended = first.new_account("n1@example.com"), first.new_account("n2@example.com")
    clients = [p.client(key=k) for p in (first, second) for k in (revoked, suspended)]
    try:
        assert [c.get("/v1/account").status_code for c in clients] == [200] * 4
        first.query(
            "UPDATE api_keys SET revoked_at = now() WHERE prefix = :prefix", prefix=revoked[:13]
        )
        first.query("UPDATE accounts SET status = 'suspended' WHERE email = 'n2@example.com'")
        assert [refused(c, 3.0, "/v1/tasks") for c in clients] == [401, 403, 401, 403]
        first.query("UPDATE accounts SET status = 'active' WHERE email = 'n2@example.com'")
        deadline = time.monotonic() + 3.0
        while clients[3].get("/v1/tasks").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert clients[3].get("/v1/tasks").status_code == 200  # reactivated: let in again
    finally:
        for client in clients:
            client.close()


def test_expired_key(server: ServerProcess) -> None:
    server.cli("users", "create", "expiring@example.com")
    key = server.cli("keys", "create", "expiring@example.com", "--expires-in", "2s").stdout.strip()
    with server.client(key=key) as client:
        assert client.get("/v1/account").status_code == 200
        time.sleep(2.2)
        assert error_of(client.get("/v1/account"))[:2] == (401, "UNAUTHORIZED")


def test_suspended_account_is_forbidden_and_can_be_reactivated(server: ServerProcess) -> None:
    key = server.new_account("suspend@example.com")
    with server.client(key=key) as client:
        server.change_access("users", "suspend", "suspend@example.com")
        status, code, _ = error_of(client.post("/v1/generate", json=GEN))
        assert (status, code) == (403, "FORBIDDEN")
        server.change_access("users", "activate", "suspend@example.com")
        assert client.post("/v1/generate", json=GEN).status_code == 202


def test_insufficient_balance_creates_nothing(server: ServerProcess) -> None:
    key = server.new_account("poor@example.com", balance="0.015")
    with server.client(key=key) as client:
        assert client.post("/v1/generate", json=GEN).status_code == 202  # $0.0100
        status, code, message = error_of(client.post("/v1/generate", json=GEN))
        assert (status, code) == (403, "INSUFFICIENT_BALANCE")
        assert "balance" in message
        pricey = {**GEN, "model": "veo3.1", "duration": 60}
        assert error_of(client.post("/v1/generate", json=pricey))[1] == "INSUFFICIENT_BALANCE"
        assert client.get("/v1/tasks").json()["data"]["pagination"]["total"] == 1


def test_validation_runs_before_the_balance_check(server: ServerProcess) -> None:
    key = server.new_account("empty@example.com", balance="0")
    with server.client(key=key) as client:
        _, code, _ = error_of(client.post("/v1/generate", json={**GEN, "num_outputs": 7}))
    assert code == "VALIDATION_ERROR"


def test_balance_add_and_account_view(server: ServerProcess) -> None:
    key = server.new_account("topup@example.com", balance="1.50")
    assert (
        server.cli("balance", "add", "topup@example.com", "2.25").stdout.strip().endswith("$3.7500")
    )
    with server.client(key=key) as client:
        account = client.get("/v1/account").json()["data"]
    assert account["email"] == "topup@example.com"
    assert account["status"] == "active"
    assert account["balance"] == "$3.7500"
    assert account["id"].startswith("acct_")


def test_cli_errors_exit_non_zero(server: ServerProcess) -> None:
    result = server.cli("users", "suspend", "nobody@example.com", check=False)
    assert result.returncode == 1
    assert "no account" in result.stderr
    assert server.cli("keys", "create", "nobody@example.com", check=False).returncode == 1
    assert server.cli("balance", "add", "local@localhost", "abc", check=False).returncode == 1
    dup = server.cli("users", "create", "local@localhost", check=False)
    assert dup.returncode == 1 and "already exists" in dup.stderr
