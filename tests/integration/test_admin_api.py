"""The admin API (``/admin/v1``) against a running server, on both databases: who may use it,
accounts and money (reconciled with the ledger), keys, model routes applied without a restart,
the health views, the audit log; every answer as the OpenAPI document describes it."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema_rs
import pytest

from hatchery.api.admin import PREFIX
from hatchery.api.admin import router as admin_router
from tests.dashboard_helpers import set_password, sign_in
from tests.helpers import ServerProcess, wait_for_task

pytestmark = pytest.mark.slow
_emails = itertools.count()


def _email(what: str) -> str:
    return f"{what}-{next(_emails)}-{time.monotonic_ns()}@example.com"


@pytest.fixture(scope="module")
def admin_key(server: ServerProcess) -> str:
    return server.new_account(_email("admin"), "100.00", admin=True)


@pytest.fixture(scope="module")
def doc(server: ServerProcess) -> dict[str, Any]:
    with server.client() as client:
        document: dict[str, Any] = client.get("/openapi.json").json()
    return document


@pytest.fixture
def admin(server: ServerProcess, admin_key: str, doc: dict[str, Any]) -> Iterator[AdminClient]:
    with server.client(admin_key) as http:
        yield AdminClient(http, doc)


class AdminClient:
    """Calls the admin API and checks each answer against the document's schema for it."""

    def __init__(self, http: httpx.Client, doc: dict[str, Any]) -> None:
        self.http = http
        self.doc = doc

    def call(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        answer = self.http.request(method, PREFIX + path, **kwargs)
        assert answer.status_code == status, answer.text
        self.check(method, path, answer)
        return answer.json()["data"] if status < 400 else answer.json()["error"]

    def check(self, method: str, path: str, answer: httpx.Response) -> None:
        operation = self.doc["paths"][PREFIX + _template(path)][method.lower()]
        schema = operation["responses"][str(answer.status_code)]["content"]["application/json"]
        validator = jsonschema_rs.validator_for(
            {"allOf": [schema["schema"]], "components": self.doc["components"]}
        )
        validator.validate(answer.json())

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.call("GET", path, **kwargs)


def _template(path: str) -> str:
    """The documented path of a concrete one (``/accounts/acct_1/ledger``)."""
    path = path.split("?")[0]
    for route in admin_router.routes:
        template = route.path.removeprefix(PREFIX)  # type: ignore[attr-defined]
        parts, concrete = template.split("/"), path.split("/")
        if len(parts) == len(concrete) and all(
            p.startswith("{") or p == c for p, c in zip(parts, concrete, strict=True)
        ):
            return template
    raise AssertionError(f"no admin route for {path}")


def _account_id(admin: AdminClient, email: str) -> str:
    (found,) = admin.get("/accounts", params={"query": email})["items"]
    assert found["email"] == email
    return str(found["id"])


# -- who may use it


def test_a_non_admin_gets_403_and_no_key_401_on_every_admin_route(
    server: ServerProcess, admin: AdminClient
) -> None:
    email = _email("user")
    user_key = server.new_account(email)
    values = {
        "account_id": _account_id(admin, email),
        "prefix": user_key[:13],
        "kind": "model",
        "name": "nanobanana",
    }
    routes = [
        (route.path, method)
        for route in admin_router.routes
        for method in route.methods  # type: ignore[attr-defined]
    ]
    documented = [
        (path, method.upper())
        for path, item in admin.doc["paths"].items()
        if path.startswith(PREFIX)
        for method in item
    ]
    assert sorted(routes) == sorted(documented)
    with server.client(user_key) as user, httpx.Client(base_url=server.url) as nobody:
        for path, method in routes:
            url = path.format(**values)
            refused = user.request(method, url, json={})
            assert refused.status_code == 403, (method, path, refused.text)
            assert refused.json()["error"]["code"] == "FORBIDDEN"
            assert "grant-admin" in refused.json()["error"]["message"]
            assert refused.headers["RateLimit-Limit"]  # counted like any API request
            assert nobody.request(method, url, json={}).status_code == 401, (method, path)
    # nothing changed: the user's key still works and its account is as it was
    with server.client(user_key) as user:
        assert user.get("/v1/account").status_code == 200
    assert admin.get(f"/accounts/{values['account_id']}")["status"] == "active"


def test_an_admin_signed_in_to_the_dashboard_uses_the_api_with_its_session(
    server: ServerProcess, admin: AdminClient
) -> None:
    email = _email("session-admin")
    server.new_account(email, admin=True)
    set_password(server.db_url, email)
    with sign_in(server, email) as dash:
        dash.get("/dashboard")
        assert dash.http.get(PREFIX + "/queue").status_code == 200
        target = _account_id(admin, email)
        body = {"amount_micros": 1_000_000, "reason": "from the browser"}
        missing_csrf = dash.http.post(PREFIX + f"/accounts/{target}/balance", json=body)
        assert missing_csrf.status_code == 403
        done = dash.api("POST", PREFIX + f"/accounts/{target}/balance", json=body)
        assert done.status_code == 200, done.text
    (entry,) = admin.get("/audit", params={"target": f"account:{target}", "limit": 1})["items"]
    assert (entry["actor"], entry["via"], entry["reason"]) == (email, "session", body["reason"])


# -- accounts and money


def test_accounts_are_created_found_suspended_and_activated(
    server: ServerProcess, admin: AdminClient
) -> None:
    email = _email("new")
    created = admin.call(
        "POST", "/accounts", 201, json={"email": email, "balance_micros": 2_500_000}
    )
    assert (created["email"], created["balance_micros"], created["role"]) == (
        email,
        2_500_000,
        "user",
    )
    assert created["ledger_total_micros"] == 2_500_000
    again = admin.call("POST", "/accounts", 400, json={"email": email})
    assert "already exists" in again["message"]
    bad = admin.call("POST", "/accounts", 400, json={"email": email, "balance": 5})
    assert "balance: Extra inputs are not permitted" in bad["message"]

    key = server.new_account(suspended := _email("suspended"))
    target = _account_id(admin, suspended)
    assert admin.call("POST", f"/accounts/{target}/suspend")["status"] == "suspended"
    listed = admin.get("/accounts", params={"status": "suspended"})["items"]
    assert target in {a["id"] for a in listed}
    time.sleep(1.1)  # the server's key cache (HATCHERY_KEY_CACHE_SECONDS) on SQLite
    with server.client(key) as user:
        assert user.get("/v1/account").status_code == 403
        admin.call("POST", f"/accounts/{target}/activate")
        time.sleep(1.1)
        assert user.get("/v1/account").status_code == 200
    assert admin.get("/accounts/acct_nobody", status=404)["code"] == "NOT_FOUND"
    assert admin.get("/accounts", params={"query": "%"})["items"] == []  # not a wildcard
    n = next(_emails)
    under = admin.call("POST", "/accounts", 201, json={"email": f"a_b{n}@x.io"})
    admin.call("POST", "/accounts", 201, json={"email": f"axb{n}@x.io"})  # "_" is no wildcard
    found = admin.get("/accounts", params={"query": f"a_b{n}@"})["items"]
    assert [a["id"] for a in found] == [under["id"]]


def test_the_rate_limit_and_flags_are_set_and_bad_ones_refused(admin: AdminClient) -> None:
    admin.call("POST", "/accounts", 201, json={"email": (email := _email("limits"))})
    target = _account_id(admin, email)
    changed = admin.call(
        "PATCH", f"/accounts/{target}", json={"rate_limit": "5/second", "flags": ["no-watermark"]}
    )
    assert (changed["rate_limit"], changed["flags"]) == ("5/second", ["no-watermark"])
    unknown = admin.call("PATCH", f"/accounts/{target}", 400, json={"flags": ["gold"]})
    assert "no flag gold" in unknown["message"] and "no-watermark" in unknown["message"]
    bad = admin.call("PATCH", f"/accounts/{target}", 400, json={"rate_limit": "fast"})
    assert "fast" in bad["message"]
    nothing = admin.call("PATCH", f"/accounts/{target}", 400, json={})
    assert "nothing to change" in nothing["message"]
    # the refused changes changed nothing
    assert admin.get(f"/accounts/{target}")["flags"] == ["no-watermark"]


def test_credits_and_debits_reconcile_with_the_ledger_and_tasks_charges(
    server: ServerProcess, admin: AdminClient
) -> None:
    email = _email("money")
    key = server.new_account(email, "1.00")
    target = _account_id(admin, email)
    with server.client(key) as user:
        submitted = user.post("/v1/generate", json={"model": "nanobanana", "prompt": "a fox"})
        task = wait_for_task(user, submitted.json()["data"]["id"])
    assert task["status"] == "completed"
    credit = admin.call(
        "POST",
        f"/accounts/{target}/balance",
        json={"amount_micros": 3_000_001, "reason": "goodwill"},
    )
    assert credit["entry"]["kind"] == "credit" and credit["entry"]["note"] == "goodwill"
    debit = admin.call(
        "POST", f"/accounts/{target}/balance", json={"amount_micros": -500_000, "reason": "fee"}
    )
    assert debit["entry"]["amount_micros"] == -500_000
    too_much = admin.call(
        "POST",
        f"/accounts/{target}/balance",
        400,
        json={"amount_micros": -100_000_000, "reason": "all of it"},
    )
    assert "available" in too_much["message"]
    zero = admin.call(
        "POST", f"/accounts/{target}/balance", 400, json={"amount_micros": 0, "reason": "x"}
    )
    assert "cannot be zero" in zero["message"]
    for huge in (2**63, 10**15 + 1):  # beyond what a balance may hold: refused, nothing kept
        refused = admin.call(
            "POST", f"/accounts/{target}/balance", 400, json={"amount_micros": huge, "reason": "x"}
        )
        assert "amount_micros" in refused["message"]
    no_reason = admin.call(
        "POST", f"/accounts/{target}/balance", 400, json={"amount_micros": 5, "reason": "  "}
    )
    assert "reason" in no_reason["message"]

    detail = admin.get(f"/accounts/{target}")
    (usage,) = server.query(
        "SELECT cost_micros FROM usage_records WHERE task_id = :t", t=task["id"]
    )
    expected = 1_000_000 + 3_000_001 - 500_000 - usage[0]
    assert detail["balance_micros"] == detail["ledger_total_micros"] == expected
    kinds = [entry["kind"] for entry in detail["ledger"]]
    assert kinds == ["debit", "credit", "charge", "credit"]
    # paged: one entry at a time, newest first, until the first
    seen, before = [], None
    while True:
        params = {"limit": 1} | ({"before": before} if before else {})
        page = admin.get(f"/accounts/{target}/ledger", params=params)
        seen += [entry["seq"] for entry in page["items"]]
        if page["next"] is None:
            break
        before = page["next"]
    assert seen == [entry["seq"] for entry in detail["ledger"]]
    audit = admin.get("/audit", params={"target": f"account:{target}"})["items"]
    assert [(e["action"], e["reason"]) for e in audit[:2]] == [
        ("account.debit", "fee"),
        ("account.credit", "goodwill"),
    ]
    assert audit[0]["before"]["balance_micros"] - audit[0]["after"]["balance_micros"] == 500_000


# -- keys


def test_an_admin_revokes_any_accounts_key(server: ServerProcess, admin: AdminClient) -> None:
    email = _email("keys")
    key = server.new_account(email)
    target = _account_id(admin, email)
    (listed,) = admin.get("/keys", params={"account_id": target})["items"]
    assert (listed["prefix"], listed["status"], listed["email"]) == (key[:13], "active", email)
    revoked = admin.call("POST", f"/keys/{key[:13]}/revoke")
    assert revoked["status"] == "revoked"
    assert admin.call("POST", f"/keys/{key[:13]}/revoke", 404)["code"] == "NOT_FOUND"
    time.sleep(1.1)  # the key cache, on SQLite
    with server.client(key) as user:
        assert user.get("/v1/account").status_code == 401
    active = admin.get("/keys", params={"status": "active", "limit": 200})["items"]
    assert key[:13] not in {k["prefix"] for k in active}


# -- model routes


def _submit(server: ServerProcess, key: str, **body: Any) -> httpx.Response:
    with server.client(key) as user:
        return user.post("/v1/generate", json={"model": "nanobanana", "prompt": "a hen"} | body)


def test_a_route_change_applies_at_once_and_a_breaking_one_is_refused(
    server: ServerProcess, admin: AdminClient
) -> None:
    key = server.new_account(_email("routes"))
    before = admin.get("/routes/model/nanobanana")
    assert (before["source"], before["running"]) == ("catalog", ["local"])
    try:
        changed = admin.call(
            "PATCH",
            "/routes/model/nanobanana",
            json={
                "unit_price_micros": 70_000,
                "price_rules": [{"when": {"resolution": "2k"}, "unit_price_micros": 90_000}],
                "synchronous": True,
                "reason": "new prices",
            },
        )
        assert (changed["source"], changed["unit_price_micros"]) == ("admin", 70_000)
        waited = _submit(server, key)  # synchronous now: the answer is the ended task
        assert waited.status_code == 200 and waited.json()["data"]["status"] == "completed"
        (price,) = server.query(
            "SELECT price_micros FROM tasks WHERE id = :t", t=waited.json()["data"]["id"]
        )
        assert price[0] == 70_000
        big = _submit(server, key, resolution="2k", num_outputs=2)
        (price,) = server.query(
            "SELECT price_micros FROM tasks WHERE id = :t", t=big.json()["data"]["id"]
        )
        assert price[0] == 180_000
        refusals = {
            "fal": ({"providers": [{"name": "local"}, {"name": "fal"}]}, "HATCHERY_FAL_KEY"),
            "none": ({"providers": [{"name": "local", "enabled": False}]}, "at least one"),
            "twice": ({"providers": [{"name": "local"}, {"name": "local"}]}, "more than once"),
            "rule": (
                {"price_rules": [{"when": {"prompt": "x"}, "unit_price_micros": 1}]},
                "prices can depend on",
            ),
            "empty": ({}, "nothing to change"),
        }
        for body, reason in refusals.values():
            refused = admin.call("PATCH", "/routes/model/nanobanana", 400, json=body)
            assert refused["code"] == "VALIDATION_ERROR" and reason in refused["message"], body
        sync_tool = admin.call(
            "PATCH", "/routes/tool/upscale-image", 400, json={"synchronous": True}
        )
        assert "models" in sync_tool["message"]
        assert admin.get("/routes/model/nanobanana")["revision"] == changed["revision"]
        stale = {"unit_price_micros": 1, "revision": before["revision"]}  # read before the change
        conflict = admin.call("PATCH", "/routes/model/nanobanana", 409, json=stale)
        assert conflict["code"] == "CONFLICT" and "has changed since" in conflict["message"]
        fresh = {"unit_price_micros": 70_000, "revision": changed["revision"]}
        changed = admin.call("PATCH", "/routes/model/nanobanana", json=fresh)
        assert admin.get("/routes/model/no-such", status=404)["code"] == "NOT_FOUND"
        assert admin.get("/routes/engine/nanobanana", status=404)["code"] == "NOT_FOUND"
    finally:
        reset = admin.call("POST", "/routes/model/nanobanana/reset")
    assert (reset["source"], reset["unit_price_micros"]) == ("catalog", before["unit_price_micros"])
    assert reset["synchronous"] is False and reset["price_rules"] == before["price_rules"]
    audit = admin.get("/audit", params={"target": "model:nanobanana", "limit": 3})["items"]
    # the reset, the change at the revision it read (the stale one wrote nothing), the first
    assert [e["action"] for e in audit] == ["route.reset", "route.update", "route.update"]
    assert audit[2]["reason"] == "new prices"
    assert audit[2]["before"]["unit_price_micros"] == before["unit_price_micros"]
    assert audit[2]["after"]["unit_price_micros"] == 70_000
    with server.client() as anyone:
        document = anyone.get("/openapi.json").text
    assert "0.0700" not in document  # the document follows the routes back


# -- health


def test_the_health_views_show_workers_providers_the_queue_and_the_outbox(
    server: ServerProcess, admin: AdminClient
) -> None:
    key = server.new_account(_email("health"))
    task = _submit(server, key).json()["data"]
    with server.client(key) as user:
        assert wait_for_task(user, task["id"])["status"] == "completed"
    deadline = time.monotonic() + 20
    while True:  # the next heartbeat carries the attempt
        (local,) = [p for p in admin.get("/providers")["items"] if p["name"] == "local"]
        if local["completed"] >= 1 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert local["completed"] >= 1 and local["p50_ms"] is not None
    assert "nanobanana" in local["models"] and local["open_breakers"] == 0
    queue = admin.get("/queue")
    (worker,) = queue["workers"]
    assert worker["alive"] and worker["concurrency"] == 4 and "local" in worker["providers"]
    assert set(queue["by_status"]) <= {"pending", "processing"}


def test_the_outbox_shows_its_backlog_and_a_failing_endpoint(
    server: ServerProcess, admin: AdminClient
) -> None:
    email = _email("hooks")
    key = server.new_account(email)
    dead = {"url": "http://127.0.0.1:9/hook", "events": ["task.completed"]}  # nothing listens
    with server.client(key) as user:
        endpoint = user.post("/v1/webhooks/endpoints", json=dead)
        assert endpoint.status_code == 201, endpoint.text
        task = _submit(server, key).json()["data"]
        assert wait_for_task(user, task["id"])["status"] == "completed"
    deadline = time.monotonic() + 20
    while True:  # its first attempt fails, and the message waits for the next
        outbox = admin.get("/outbox")
        failing = [e for e in outbox["failing_endpoints"] if e["email"] == email]
        if failing or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    (shown,) = failing
    assert (shown["url"], shown["status"], shown["pending"]) == (dead["url"], "enabled", 1)
    assert shown["failing_since"] is not None
    assert outbox["pending"] >= 1 and outbox["oldest_due_at"] is not None


def test_the_audit_log_filters_and_pages(admin: AdminClient) -> None:
    for _ in range(3):
        admin.call("POST", "/accounts", 201, json={"email": _email("audited")})
    first = admin.get("/audit", params={"action": "account.create", "limit": 2})
    assert len(first["items"]) == 2 and first["next"]
    second = admin.get("/audit", params={"action": "account.", "before": first["next"]})
    assert all(e["seq"] < int(first["next"]) for e in second["items"])
    assert all(e["action"].startswith("account.") for e in second["items"])
    bad = admin.get("/audit", status=400, params={"limit": "0"})
    assert "limit" in bad["message"]


# -- the same verbs on the command line


def test_the_cli_grants_admin_changes_routes_and_money_and_is_audited(
    server: ServerProcess, admin: AdminClient
) -> None:
    email = _email("cli")
    key = server.new_account(email)
    with server.client(key) as user:
        assert user.get(PREFIX + "/queue").status_code == 403
        assert "is an admin" in server.change_access("users", "grant-admin", email).stdout
        assert user.get(PREFIX + "/queue").status_code == 200
        server.change_access("users", "revoke-admin", email)
        assert user.get(PREFIX + "/queue").status_code == 403

    debited = server.cli("balance", "debit", email, "2.50", "--reason", "chargeback")
    assert "$7.5000" in debited.stdout
    refused = server.cli("balance", "debit", email, "100", "--reason", "x", check=False)
    assert refused.returncode == 1 and "available" in refused.stderr

    try:
        changed = server.cli("routes", "price", "nanobanana", "0.09", "--reason", "cli test")
        assert '"unit_price_micros": 90000' in changed.stdout
        deadline = time.monotonic() + 20
        while True:  # the server reads the routes again within HATCHERY_ROUTES_REFRESH
            task = _submit(server, key).json()["data"]
            (price,) = server.query("SELECT price_micros FROM tasks WHERE id = :t", t=task["id"])
            if price[0] == 90_000 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert price[0] == 90_000
        broken = server.cli("routes", "disable", "nanobanana", "local", check=False)
        assert broken.returncode == 1 and "at least one provider" in broken.stderr
        unknown = server.cli("routes", "providers", "nanobanana", "local", "fal", check=False)
        assert unknown.returncode == 1 and "HATCHERY_FAL_KEY" in unknown.stderr
        listed = server.cli("routes", "list").stdout
        assert any(
            line.split()[1] == "nanobanana" and "[admin]" in line for line in listed.splitlines()
        )
    finally:
        server.cli("routes", "reset", "nanobanana")
    assert admin.get("/routes/model/nanobanana")["source"] == "catalog"
    audit = server.cli("audit", "--target", "model:nanobanana", "--limit", "2").stdout
    assert "route.reset" in audit and "route.update" in audit and "(cli test)" in audit
    assert "via cli" in audit
