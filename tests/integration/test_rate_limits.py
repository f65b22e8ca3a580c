"""Rate limits over real HTTP: per API key (the server's default or the account's own), per client
IP, off; counted in memory per process or in one real Redis shared by two API processes; and
requests still served while Redis is down.

The limits are per day: the windows are aligned to the clock, and a test stays clear of midnight
UTC so that no window resets in the middle of it."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.helpers import ServerProcess
from tests.redis_server import RedisServer

pytestmark = pytest.mark.slow

HEADERS = (
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
)
DAY = 86400
API_ONLY = {"HATCHERY_WORKERS": "0"}


@pytest.fixture(autouse=True)
def clear_of_midnight() -> None:
    left = DAY - time.time() % DAY
    if left < 60:
        time.sleep(left + 1)


def limits_of(response: httpx.Response) -> tuple[int, int, int]:
    """(limit, remaining, seconds to reset), after checking the two sets of headers agree."""
    headers = response.headers
    assert all(name in headers for name in HEADERS), dict(headers)
    limit, remaining, reset = (
        int(headers[f"RateLimit-{n}"]) for n in ("Limit", "Remaining", "Reset")
    )
    assert int(headers["X-RateLimit-Limit"]) == limit
    assert int(headers["X-RateLimit-Remaining"]) == remaining
    assert abs(int(headers["X-RateLimit-Reset"]) - (time.time() + reset)) <= 2
    assert 1 <= reset <= DAY
    return limit, remaining, reset


def no_limit_headers(response: httpx.Response) -> bool:
    return not any(name in response.headers for name in HEADERS)


def assert_refused(response: httpx.Response, who: str) -> None:
    assert response.status_code == 429
    body = response.json()
    assert body["data"] is None
    assert body["error"]["code"] == "RATE_LIMITED"
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= DAY
    assert body["error"]["message"].startswith(f"Rate limit exceeded: {who} ")
    assert f"retry in {retry_after} s" in body["error"]["message"]
    assert limits_of(response)[1] == 0


def test_key_limit_refuses_with_the_envelope_and_every_response_has_the_headers(
    make_server: Callable[..., ServerProcess],
) -> None:
    server = make_server(HATCHERY_RATE_LIMIT="3/day", HATCHERY_RATE_LIMIT_IP="1000/day")
    with server.client() as client:
        seen = [limits_of(client.get("/v1/account")) for _ in range(3)]
        assert [(limit, left) for limit, left, _ in seen] == [(3, 2), (3, 1), (3, 0)]
        refused = client.get("/v1/account")
        assert_refused(refused, "per API key")
        assert "per API key 3 per 1 day" in refused.json()["error"]["message"]
        assert math.isclose(int(refused.headers["Retry-After"]), DAY - time.time() % DAY, abs_tol=3)
        assert_refused(client.get("/v1/tasks"), "per API key")  # every route of the key
        # the key's limit reached, the IP's is still reported where no key is checked
        unauthenticated = client.get("/v1/account", headers={"Authorization": ""})
        assert unauthenticated.status_code == 401
        assert limits_of(unauthenticated)[:2] == (1000, 1000 - 6)
        route = client.get("/v1/nowhere")
        assert route.status_code == 404
        assert limits_of(route)[0] == 1000
        # /healthz and /files are neither limited nor counted
        assert no_limit_headers(client.get("/healthz"))
        assert no_limit_headers(client.get("/files/abc/def.png"))
        assert limits_of(client.get("/v1/nowhere"))[1] == 1000 - 8


def test_headers_on_success_and_error_answers_of_a_key_under_its_limit(
    make_server: Callable[..., ServerProcess],
) -> None:
    server = make_server(HATCHERY_RATE_LIMIT="50/day", HATCHERY_RATE_LIMIT_IP="1000/day")
    with server.client() as client:
        ok = client.get("/v1/account")
        assert ok.status_code == 200 and limits_of(ok)[:2] == (50, 49)
        missing = client.get("/v1/tasks/gen_k3v9x0q2m8a1b7c4")
        assert missing.status_code == 404 and limits_of(missing)[:2] == (50, 48)
        bad = client.get("/v1/tasks", params={"per_page": "0"})
        assert bad.status_code == 400 and limits_of(bad)[:2] == (50, 47)
        wrong_key = client.get("/v1/account", headers={"Authorization": "Bearer hk_nope"})
        assert wrong_key.status_code == 401 and limits_of(wrong_key)[:2] == (1000, 996)


def test_each_key_has_its_own_budget_and_an_account_its_own_limit(
    make_server: Callable[..., ServerProcess],
) -> None:
    server = make_server(HATCHERY_RATE_LIMIT="4/day", HATCHERY_RATE_LIMIT_IP="off")
    other = server.new_account("other@example.com")
    with server.client() as client, server.client(other) as other_client:
        for _ in range(4):
            assert client.get("/v1/account").status_code == 200
        assert_refused(client.get("/v1/account"), "per API key")
        assert limits_of(other_client.get("/v1/account"))[:2] == (4, 3)

        done = server.change_access("users", "rate-limit", "local@localhost", "10/day")
        assert done.stdout.strip() == "local@localhost: rate limit per API key 10 per 1 day"
        assert limits_of(client.get("/v1/account"))[:2] == (10, 9)  # a new limit, a new count
        assert limits_of(other_client.get("/v1/account"))[:2] == (4, 2)  # others keep theirs

        server.change_access("users", "rate-limit", "local@localhost", "off")
        answers = [client.get("/v1/account") for _ in range(12)]
        assert all(a.status_code == 200 and no_limit_headers(a) for a in answers)

        done = server.change_access("users", "rate-limit", "local@localhost", "default")
        assert done.stdout.strip().endswith("per API key the server default")
        assert_refused(client.get("/v1/account"), "per API key")  # back to 4/day, used up


def test_an_invalid_account_limit_is_refused_by_the_cli(
    make_server: Callable[..., ServerProcess],
) -> None:
    server = make_server(HATCHERY_RATE_LIMIT="5/day")
    for bad in ("lots", "0/second"):  # the notation itself: tests/unit/test_rate_limits.py
        done = server.cli("users", "rate-limit", "local@localhost", bad, check=False)
        assert done.returncode == 1
        assert done.stderr.startswith(f"error: {bad!r} ")
    done = server.cli("users", "rate-limit", "nobody@example.com", "5/day", check=False)
    assert done.returncode == 1 and "no account with email nobody@example.com" in done.stderr
    [(stored,)] = server.query("SELECT rate_limit FROM accounts WHERE email = 'local@localhost'")
    assert stored is None
    with server.client() as client:
        assert limits_of(client.get("/v1/account"))[0] == 5


def test_ip_limit_counts_every_request_from_the_address(
    make_server: Callable[..., ServerProcess],
) -> None:
    server = make_server(HATCHERY_RATE_LIMIT="off", HATCHERY_RATE_LIMIT_IP="4/day")
    with server.client() as client:
        assert client.get("/v1/account", headers={"Authorization": ""}).status_code == 401
        assert client.get("/v1/nowhere").status_code == 404
        assert limits_of(client.get("/v1/account"))[:2] == (4, 1)
        assert client.get("/v1/tasks").status_code == 200
        refused = client.get("/v1/account")
        assert_refused(refused, "per client IP")
        assert "per client IP 4 per 1 day" in refused.json()["error"]["message"]
        assert_refused(client.get("/v1/account", headers={"Authorization": ""}), "per client IP")
        assert_refused(client.post("/v1/generate", json={}), "per client IP")
        # the address is the one uvicorn reports: a proxy on 127.0.0.1 may name the client
        proxied = client.get("/v1/account", headers={"X-Forwarded-For": "203.0.113.7"})
        assert proxied.status_code == 200 and limits_of(proxied)[:2] == (4, 3)


def test_the_tighter_of_the_ip_and_key_limits_is_reported(
    make_server: Callable[..., ServerProcess],
) -> None:
    server = make_server(HATCHERY_RATE_LIMIT="3/day", HATCHERY_RATE_LIMIT_IP="100/day;7/day")
    anonymous = {"Authorization": ""}
    with server.client() as client:
        assert limits_of(client.get("/v1/account", headers=anonymous))[:2] == (7, 6)
        assert limits_of(client.get("/v1/account", headers=anonymous))[:2] == (7, 5)
        assert limits_of(client.get("/v1/account"))[:2] == (3, 2)  # the IP has 4 left
        assert limits_of(client.get("/v1/account"))[:2] == (3, 1)
        assert limits_of(client.get("/v1/account"))[:2] == (3, 0)
        assert_refused(client.get("/v1/account"), "per API key")  # the IP has 1 left
        assert limits_of(client.get("/v1/account", headers=anonymous))[:2] == (7, 0)
        assert_refused(client.get("/v1/account", headers=anonymous), "per client IP")


def test_off_turns_the_limits_off(make_server: Callable[..., ServerProcess]) -> None:
    server = make_server(HATCHERY_RATE_LIMIT="off", HATCHERY_RATE_LIMIT_IP="off")
    with server.client() as client:
        answers = [client.get("/v1/account") for _ in range(30)]
        answers.append(client.get("/v1/account", headers={"Authorization": ""}))
    assert [a.status_code for a in answers] == [200] * 30 + [401]
    assert all(no_limit_headers(a) for a in answers)


@pytest.fixture
def pair(
    make_server: Callable[..., ServerProcess], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., tuple[ServerProcess, ServerProcess]]]:
    """Two API processes on one database, with the same settings."""

    def start(**settings: str) -> tuple[ServerProcess, ServerProcess]:
        data_dir = tmp_path_factory.mktemp("shared")
        first = make_server(data_dir, **API_ONLY, **settings)
        second = make_server(data_dir, **API_ONLY, **settings)
        second.key = first.key
        return first, second

    yield start


def take_turns(first: ServerProcess, second: ServerProcess, each: int) -> list[int]:
    statuses = []
    with first.client() as one, second.client() as two:
        for _ in range(each):
            statuses += [one.get("/v1/account").status_code, two.get("/v1/account").status_code]
    return statuses


def test_two_processes_sharing_redis_count_against_one_limit(
    pair: Callable[..., tuple[ServerProcess, ServerProcess]], redis_server: RedisServer
) -> None:
    redis_server.flush()
    first, second = pair(
        HATCHERY_RATE_LIMIT="10/day",
        HATCHERY_RATE_LIMIT_IP="off",
        HATCHERY_REDIS_URL=redis_server.url,
    )
    statuses = take_turns(first, second, 6)
    assert statuses == [200] * 10 + [429] * 2
    with second.client() as client:
        assert_refused(client.get("/v1/tasks"), "per API key")


def test_two_processes_without_redis_count_each_on_its_own(
    pair: Callable[..., tuple[ServerProcess, ServerProcess]],
) -> None:
    first, second = pair(HATCHERY_RATE_LIMIT="10/day", HATCHERY_RATE_LIMIT_IP="off")
    assert take_turns(first, second, 6) == [200] * 12
    with first.client() as one, second.client() as two:
        assert limits_of(one.get("/v1/account"))[:2] == (10, 3)
        assert limits_of(two.get("/v1/account"))[:2] == (10, 3)


def test_requests_pass_while_redis_is_down_and_are_limited_once_it_is_back(
    make_server: Callable[..., ServerProcess],
) -> None:
    redis = RedisServer().start()
    try:
        server = make_server(
            HATCHERY_RATE_LIMIT="3/day", HATCHERY_RATE_LIMIT_IP="off", HATCHERY_REDIS_URL=redis.url
        )
        with server.client() as client:
            assert limits_of(client.get("/v1/account"))[:2] == (3, 2)
            redis.stop()
            answers = [client.get("/v1/account") for _ in range(6)]
            assert [a.status_code for a in answers] == [200] * 6
            assert all(no_limit_headers(a) for a in answers)
            assert any("rate limit storage unreachable" in line for line in server.output)

            redis.start()  # empty, on the same port: counting starts again
            deadline = time.monotonic() + 10
            while no_limit_headers(answer := client.get("/v1/account")):
                assert time.monotonic() < deadline, "the limits did not come back"
                time.sleep(0.2)
            assert limits_of(answer)[:2] == (3, 2)
            assert [client.get("/v1/account").status_code for _ in range(2)] == [200, 200]
            assert_refused(client.get("/v1/account"), "per API key")
    finally:
        redis.close()
