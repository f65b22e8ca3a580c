"""The dashboard's API keys page over HTTP: a key made there is shown once and works on the API;
the list shows each key by prefix with its name, expiry, last use and spend (and the dashboard
session's own spend); revoking reaches the API, needs the CSRF token, and touches only the
account's own keys."""

from __future__ import annotations

import asyncio
import html
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx

from tests.dashboard_helpers import Dashboard, SignIn
from tests.helpers import ServerProcess, wait_for_task

NEW_KEY = re.compile(r'id="new-key"[^>]*value="(hk_[A-Za-z0-9]+)"')


def create_key(dash: Dashboard, name: str, **fields: str) -> str:
    """Make a key through the page's form; the key the page shows."""
    dash.get("/dashboard/keys")
    response = dash.post("/dashboard/keys", {"name": name, **fields})
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert "will not be shown again" in response.text
    found = NEW_KEY.search(response.text)
    assert found, response.text
    return found.group(1)


def row(page: str, row_id: str) -> str:
    """The text of one row of the keys table (``key-<prefix>`` or ``key-session``)."""
    found = re.search(rf'<tr id="{re.escape(row_id)}">(.*?)</tr>', page, re.S)
    assert found, f"no row {row_id}"
    return html.unescape(found.group(1))


def page_rows(page: str) -> list[str]:
    return re.findall(r'<tr id="key-(hk_[^"]+)">', page)


def cell(row_text: str, label: str) -> str:
    found = re.search(rf'data-label="{label}"[^>]*>(.*?)</td>', row_text, re.S)
    assert found, f"no cell {label} in {row_text}"
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()


def wait_until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def not_revoked(server: ServerProcess, prefix: str) -> bool:
    found = server.query("SELECT revoked_at FROM api_keys WHERE prefix = :p", p=prefix)
    return found == [(None,)]


def account_status(server: ServerProcess, key: str) -> int:
    with server.client(key=key) as client:
        return client.get("/v1/account").status_code


def test_a_new_key_is_shown_once_and_works_on_the_api(
    server: ServerProcess, sign_in: SignIn
) -> None:
    dash = sign_in("keys-once@example.com")
    key = create_key(dash, "render farm")
    prefix = key[:13]
    with server.client(key=key) as client:
        account = client.get("/v1/account")
    assert account.status_code == 200
    assert account.json()["data"]["email"] == "keys-once@example.com"
    again = dash.get("/dashboard/keys").text
    assert key not in again
    assert cell(row(again, f"key-{prefix}"), "Prefix") == f"{prefix}…"
    assert cell(row(again, f"key-{prefix}"), "Name") == "render farm"
    assert cell(row(again, f"key-{prefix}"), "State") == "active"
    assert cell(row(again, f"key-{prefix}"), "Expires") == "never"


def test_the_list_shows_last_use_and_spend_of_each_key(
    server: ServerProcess, sign_in: SignIn
) -> None:
    dash = sign_in("keys-spend@example.com")
    key = create_key(dash, "spender")
    idle = create_key(dash, "idle")
    prefix = key[:13]
    before = row(dash.get("/dashboard/keys").text, f"key-{prefix}")
    assert cell(before, "Last used") == "never"
    assert cell(before, "Spend") == "$0.00"
    with server.client(key=key) as client:
        submitted = client.post("/v1/generate", json={"model": "nanobanana", "prompt": "a fox"})
        assert submitted.status_code == 202, submitted.text
        task = wait_for_task(client, submitted.json()["data"]["id"])
    assert task["status"] == "completed"

    def used() -> bool:
        return cell(row(dash.get("/dashboard/keys").text, f"key-{prefix}"), "Last used") != "never"

    wait_until(used)
    page = dash.get("/dashboard/keys").text
    spent = row(page, f"key-{prefix}")
    assert cell(spent, "Spend") == task["cost"] != "$0.00"
    assert cell(spent, "Tasks") == "1"
    assert cell(row(page, f"key-{idle[:13]}"), "Spend") == "$0.00"
    assert cell(row(page, f"key-{idle[:13]}"), "Last used") == "never"
    assert "key-session" not in page  # the session has spent nothing


def test_the_dashboard_sessions_own_spend_is_a_row(server: ServerProcess, sign_in: SignIn) -> None:
    dash = sign_in("keys-session@example.com")
    dash.get("/dashboard/keys")
    submitted = dash.api("POST", "/v1/generate", json={"model": "nanobanana", "prompt": "owl"})
    assert submitted.status_code == 202, submitted.text
    task_id = submitted.json()["data"]["id"]
    task = wait_for_task(dash.http, task_id)  # the session's cookie authenticates the GET
    assert task["status"] == "completed"
    cost = task["cost"]
    session = row(dash.get("/dashboard/keys").text, "key-session")
    assert cell(session, "Name") == "Dashboard (playground)"
    assert cell(session, "Spend") == cost
    assert cell(session, "Tasks") == "1"


def test_a_key_can_expire_after_a_period_or_on_a_date(
    server: ServerProcess, sign_in: SignIn
) -> None:
    dash = sign_in("keys-expiry@example.com")
    week = create_key(dash, "for a week", expires="7d")
    day = (datetime.now(UTC) + timedelta(days=40)).date()
    dated = create_key(dash, "dated", expires_on=day.isoformat())
    page = dash.get("/dashboard/keys").text
    in_a_week = (datetime.now(UTC) + timedelta(days=7)).strftime("%Y-%m-%d")
    assert cell(row(page, f"key-{week[:13]}"), "Expires").startswith(in_a_week)
    assert cell(row(page, f"key-{dated[:13]}"), "Expires") == f"{day.isoformat()} 00:00 UTC"
    assert account_status(server, week) == 200
    assert account_status(server, dated) == 200


def test_bad_key_forms_are_refused_with_what_to_fix(server: ServerProcess, sign_in: SignIn) -> None:
    dash = sign_in("keys-bad@example.com")
    dash.get("/dashboard/keys")
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    cases = [
        ({"name": "  "}, "Give the key a name"),
        ({"name": "x" * 129}, "at most 128"),
        ({"name": "k", "expires": "forever"}, "expires must be one of"),
        ({"name": "k", "expires_on": yesterday}, "after today"),
        ({"name": "k", "expires_on": "soon"}, "must be a date"),
        ({"name": "k", "expires": "30d", "expires_on": "2999-01-01"}, "not both"),
    ]
    for fields, problem in cases:
        response = dash.post("/dashboard/keys", fields)
        assert response.status_code == 400, fields
        assert problem in html.unescape(response.text), fields
        assert 'id="new-key"' not in response.text
    assert len(page_rows(dash.get("/dashboard/keys").text)) == 1  # the account's first key only


def test_a_key_made_elsewhere_that_expired_is_listed_as_expired(
    server: ServerProcess, sign_in: SignIn
) -> None:
    from hatchery import admin
    from hatchery.store.db import Database

    dash = sign_in("keys-expired@example.com")

    async def short_key() -> str:
        db = Database.connect(server.db_url, pool_size=1)
        try:
            return await admin.create_key(db, "keys-expired@example.com", timedelta(seconds=1))
        finally:
            await db.dispose()

    key = asyncio.run(short_key())
    time.sleep(1.1)
    listed = row(dash.get("/dashboard/keys").text, f"key-{key[:13]}")
    assert cell(listed, "State") == "expired"
    assert cell(listed, "Name") == "—"


def test_revoking_a_key_reaches_the_api(server: ServerProcess, sign_in: SignIn) -> None:
    dash = sign_in("keys-revoke@example.com")
    key = create_key(dash, "doomed")
    kept = create_key(dash, "kept")
    prefix = key[:13]
    assert account_status(server, key) == 200  # now in the server's key cache
    page = dash.get("/dashboard/keys").text
    assert f'action="/dashboard/keys/{prefix}/revoke"' in page
    response = dash.post(f"/dashboard/keys/{prefix}/revoke", {})
    assert response.status_code == 303
    assert response.headers["location"].startswith("/dashboard/keys?notice=")
    # at once, with no wait for the cache's lifetime: the revoking process forgets the key
    assert account_status(server, key) == 401
    assert account_status(server, kept) == 200
    page = dash.get("/dashboard/keys").text
    assert cell(row(page, f"key-{prefix}"), "State") == "revoked"
    assert f'action="/dashboard/keys/{prefix}/revoke"' not in page
    assert dash.post(f"/dashboard/keys/{prefix}/revoke", {}).status_code == 303  # already is


def test_revoking_needs_the_csrf_token(server: ServerProcess, sign_in: SignIn) -> None:
    dash = sign_in("keys-csrf@example.com")
    key = create_key(dash, "guarded")
    prefix = key[:13]
    assert dash.post(f"/dashboard/keys/{prefix}/revoke", {}, csrf="").status_code == 403
    assert dash.post(f"/dashboard/keys/{prefix}/revoke", {}, csrf="wrong").status_code == 403
    assert not_revoked(server, prefix)
    assert account_status(server, key) == 200
    assert cell(row(dash.get("/dashboard/keys").text, f"key-{prefix}"), "State") == "active"


def test_another_accounts_key_cannot_be_revoked(server: ServerProcess, sign_in: SignIn) -> None:
    other_key = server.new_account("keys-victim@example.com")
    dash = sign_in("keys-intruder@example.com")
    dash.get("/dashboard/keys")
    response = dash.post(f"/dashboard/keys/{other_key[:13]}/revoke", {})
    assert response.status_code == 404
    assert "text/html" in response.headers["content-type"]
    assert dash.post("/dashboard/keys/hk_unknown000/revoke", {}).status_code == 404
    assert dash.post("/dashboard/keys/nonsense/revoke", {}).status_code == 404
    assert other_key[:13] not in dash.get("/dashboard/keys").text
    assert not_revoked(server, other_key[:13])
    assert account_status(server, other_key) == 200


def test_the_keys_page_needs_a_session(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url) as anonymous:
        page = anonymous.get("/dashboard/keys")
        assert page.status_code == 303
        assert page.headers["location"].startswith("/dashboard/sign-in")
        assert anonymous.post("/dashboard/keys", data={"name": "x"}).status_code == 401
