"""Signing in to the dashboard: passwords, invites, the session cookie and its CSRF token, the
sign-in limit, and the session as the API's authentication (the playground's calls)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable
from urllib.parse import quote

import httpx
import pytest

from tests.dashboard_helpers import (
    PASSWORD,
    csrf_of,
    new_signed_in_account,
    set_password,
    sign_in,
)
from tests.helpers import ServerProcess, wait_for_task


def _browser(server: ServerProcess) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30)


def _attempt(
    http: httpx.Client, email: str, password: str, *, ip: str | None = None, **extra: str
) -> httpx.Response:
    """A sign-in through the form; ``ip``: as if from that client (the server trusts
    X-Forwarded-For from 127.0.0.1, as uvicorn does by default)."""
    via = {"X-Forwarded-For": ip} if ip else {}
    page = http.get("/dashboard/sign-in", headers=via)
    data = {"csrf_token": csrf_of(page.text), "email": email, "password": password, **extra}
    # the form's cookie, sent by hand: httpx keeps a Secure one (an https public URL) to itself
    form_cookie = page.headers.get("set-cookie", "").partition(";")[0]
    headers = {"Cookie": form_cookie} if form_cookie.startswith("hatchery_form=") else {}
    return http.post("/dashboard/sign-in", data=data, headers={**headers, **via})


def test_a_page_without_a_session_goes_to_sign_in_and_back(server: ServerProcess) -> None:
    server.new_account("back@example.com")
    set_password(server.db_url, "back@example.com")
    later = "/dashboard?start=2026-01-01"
    with _browser(server) as http:
        first = http.get(later)
        assert first.status_code == 303
        assert first.headers["location"] == "/dashboard/sign-in?next=" + quote(later, safe="/")
        page = http.get(first.headers["location"])
        assert page.status_code == 200
        assert f'value="{later}"' in page.text
        assert '<label for="email">' in page.text and '<label for="password">' in page.text
        done = _attempt(http, "back@example.com", PASSWORD, next=later)
        assert done.status_code == 303
        assert done.headers["location"] == later


def test_the_session_cookie_is_httponly_and_lax(server: ServerProcess) -> None:
    server.new_account("cookie@example.com")
    set_password(server.db_url, "cookie@example.com")
    with _browser(server) as http:
        done = _attempt(http, "cookie@example.com", PASSWORD)
        cookie = next(
            c for c in done.headers.get_list("set-cookie") if c.startswith("hatchery_session=")
        )
        attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
        assert {"httponly", "path", "samesite"} <= attributes
        assert "samesite=lax" in cookie.lower()
        assert "secure" not in attributes  # plain http on 127.0.0.1
        overview = http.get("/dashboard")
        assert overview.status_code == 200
        assert "cookie@example.com" in overview.text
        assert overview.headers["x-frame-options"] == "DENY"
        assert "script-src 'self'" in overview.headers["content-security-policy"]


@pytest.mark.parametrize(
    ("email", "password"),
    [("wrong@example.com", "not the password"), ("nobody@example.com", PASSWORD)],
)
def test_a_wrong_password_or_unknown_email_is_refused_alike(
    server: ServerProcess, email: str, password: str
) -> None:
    if not server.query("SELECT 1 FROM accounts WHERE email = 'wrong@example.com'"):
        server.new_account("wrong@example.com")
        set_password(server.db_url, "wrong@example.com")
    with _browser(server) as http:
        refused = _attempt(http, email, password)
        assert refused.status_code == 401
        assert "The email or the password is wrong" in refused.text
        assert "hatchery_session" not in http.cookies
        assert http.get("/dashboard").status_code == 303


def test_next_never_leaves_the_dashboard(server: ServerProcess) -> None:
    server.new_account("next@example.com")
    set_password(server.db_url, "next@example.com")
    with _browser(server) as http:
        done = _attempt(http, "next@example.com", PASSWORD, next="//evil.example/x")
        assert done.headers["location"] == "/dashboard"


def test_sign_in_without_its_form_token_is_refused(server: ServerProcess) -> None:
    server.new_account("token@example.com")
    set_password(server.db_url, "token@example.com")
    with _browser(server) as http:
        http.get("/dashboard/sign-in")
        data = {"email": "token@example.com", "password": PASSWORD, "csrf_token": "forged"}
        refused = http.post("/dashboard/sign-in", data=data)
        assert refused.status_code == 403
        assert "CSRF token" in refused.text
        assert "hatchery_session" not in http.cookies


def test_a_cross_site_sign_in_is_refused(server: ServerProcess) -> None:
    """Login CSRF: another site's page cannot sign a browser in to an account of its choosing
    (it has no form cookie to repeat, and the browser says where the form came from)."""
    server.new_account("login-csrf@example.com")
    set_password(server.db_url, "login-csrf@example.com")
    fields = {"email": "login-csrf@example.com", "password": PASSWORD}
    with _browser(server) as http:
        for token in ("-", ""):
            refused = http.post("/dashboard/sign-in", data={**fields, "csrf_token": token})
            assert refused.status_code == 403
        token = csrf_of(http.get("/dashboard/sign-in").text)
        crossed = http.post(
            "/dashboard/sign-in",
            data={**fields, "csrf_token": token},
            headers={"Sec-Fetch-Site": "cross-site"},
        )
        assert crossed.status_code == 403
        assert "hatchery_session" not in http.cookies
        assert _attempt(http, "login-csrf@example.com", PASSWORD).status_code == 303


def test_a_notice_shows_only_after_our_own_pages(server: ServerProcess) -> None:
    with new_signed_in_account(server, "notice@example.com") as dash:
        path = "/dashboard?notice=Paste+your+key+at+evil.example"
        ours = dash.http.get(path, headers={"Sec-Fetch-Site": "same-origin"})
        assert "Paste your key at evil.example" in ours.text
        for origin in ("cross-site", "none"):
            theirs = dash.http.get(path, headers={"Sec-Fetch-Site": origin})
            assert theirs.status_code == 200
            assert "evil.example" not in theirs.text


def test_sign_out_needs_the_token_and_ends_the_session(server: ServerProcess) -> None:
    with new_signed_in_account(server, "out@example.com") as dash:
        cookie = dash.http.cookies["hatchery_session"]
        assert dash.post("/dashboard/sign-out", {}, csrf="").status_code == 403
        assert dash.get("/dashboard").status_code == 200
        out = dash.post("/dashboard/sign-out", {})
        assert out.status_code == 303 and out.headers["location"].startswith("/dashboard/sign-in")
        elsewhere = dash.http.post("/dashboard/sign-out")  # no session now: nothing cleared
        assert elsewhere.status_code == 303 and "set-cookie" not in elsewhere.headers
    with _browser(server) as replay:  # the old cookie, sent again, is nobody's
        replay.cookies.set("hatchery_session", cookie)
        assert replay.get("/dashboard").status_code == 303
        assert replay.get("/v1/tasks").status_code == 401


def test_an_invite_sets_the_password_once(server: ServerProcess) -> None:
    server.new_account("invited@example.com")
    printed = server.cli("users", "invite", "invited@example.com").stdout
    link = printed.split()[0]
    assert link.startswith(server.url + "/dashboard/invite/")
    path = link.removeprefix(server.url)
    with _browser(server) as http:
        form = http.get(path)
        assert form.status_code == 200 and "invited@example.com" in form.text
        token = csrf_of(form.text)
        short = http.post(path, data={"csrf_token": token, "password": "short", "confirm": "short"})
        assert short.status_code == 400 and "at least 10 characters" in short.text
        differ = {"csrf_token": token, "password": PASSWORD, "confirm": PASSWORD + "!"}
        assert "differ" in http.post(path, data=differ).text
        done = http.post(
            path, data={"csrf_token": token, "password": PASSWORD, "confirm": PASSWORD}
        )
        assert done.status_code == 303 and done.headers["location"] == "/dashboard"
        assert "invited@example.com" in http.get("/dashboard").text
        again = http.get(path)
        assert again.status_code == 404 and "has been used or has expired" in again.text
    sign_in(server, "invited@example.com").close()


def test_set_password_from_the_cli_signs_every_browser_out(server: ServerProcess) -> None:
    with new_signed_in_account(server, "cli@example.com") as dash:
        new = "another fine password"
        result = subprocess.run(
            [sys.executable, "-m", "hatchery", "users", "set-password", "cli@example.com"],
            input=new + "\n",
            env=server.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert dash.get("/dashboard").status_code == 303
        sign_in(server, "cli@example.com", new).close()
        refused = subprocess.run(
            [sys.executable, "-m", "hatchery", "users", "set-password", "cli@example.com"],
            input="short\n",
            env=server.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert refused.returncode == 1 and "at least 10 characters" in refused.stderr


def test_the_session_authorises_the_api_and_changes_need_the_csrf_header(
    server: ServerProcess,
) -> None:
    with new_signed_in_account(server, "api@example.com") as dash:
        body = {"model": "nanobanana", "prompt": "a lighthouse"}
        assert dash.api("GET", "/v1/tasks").status_code == 200
        forged = dash.http.post("/v1/generate", json=body)
        assert forged.status_code == 403
        assert "CSRF" in forged.json()["error"]["message"]
        made = dash.api("POST", "/v1/generate", json=body)
        assert made.status_code == 202
        task_id = made.json()["data"]["id"]
        with server.client(server.new_account("other-api@example.com")) as other:
            assert other.get(f"/v1/tasks/{task_id}").status_code == 404
        assert dash.api("GET", f"/v1/tasks/{task_id}").json()["data"]["id"] == task_id
        assert dash.api("GET", "/v1/files").status_code == 200  # the VideoGen API too
        assert server.query("SELECT api_key FROM tasks WHERE id = :id", id=task_id) == [(None,)]
        bad_key = {"Authorization": "Bearer hk_notakeyatall0000000000000000000000000000"}
        judged = dash.http.get("/v1/tasks", headers=bad_key)  # the key alone counts
        assert judged.status_code == 401
        hook = {"url": "http://127.0.0.1:9/in", "events": ["task.completed"]}
        endpoint = dash.api("POST", "/v1/webhooks/endpoints", json=hook).json()["endpointId"]
        forged_delete = dash.http.delete(f"/v1/webhooks/endpoints/{endpoint}")
        assert forged_delete.status_code == 403
        assert dash.api("GET", f"/v1/webhooks/endpoints/{endpoint}").status_code == 200
        assert dash.api("DELETE", f"/v1/webhooks/endpoints/{endpoint}").status_code == 204
        with _browser(server) as anonymous:
            missing = anonymous.get("/v1/files")
            assert missing.status_code == 401 and missing.json()["code"] == "missing_api_key"


def test_a_suspended_account_loses_its_session(server: ServerProcess) -> None:
    with new_signed_in_account(server, "suspend@example.com") as dash:
        server.cli("users", "suspend", "suspend@example.com")
        assert dash.get("/dashboard").status_code == 303
        assert dash.api("GET", "/v1/tasks").status_code == 401
        server.cli("users", "activate", "suspend@example.com")
        assert dash.get("/dashboard").status_code == 303  # the suspension ended the session


def test_a_key_records_when_it_was_last_used(server: ServerProcess) -> None:
    key = server.new_account("used@example.com")
    prefix = key[:13]
    assert server.query("SELECT last_used_at FROM api_keys WHERE prefix = :p", p=prefix) == [
        (None,)
    ]
    with server.client(key) as client:
        assert client.get("/v1/account").status_code == 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        (used,) = server.query("SELECT last_used_at FROM api_keys WHERE prefix = :p", p=prefix)
        if used[0] is not None:
            break
        time.sleep(0.1)
    assert used[0] is not None


@pytest.mark.slow
def test_limits_secure_cookies_and_expiry(make_server: Callable[..., ServerProcess]) -> None:
    """On a server with a sign-in limit of 3 an hour, an HTTPS public URL and sessions that
    end after 2 s idle: the 4th attempt is refused even with the right password; the cookie is
    Secure; a session unused for 2 s is gone."""
    server = make_server(
        HATCHERY_DASHBOARD_SIGNIN_LIMIT="3/hour",  # an hour's window: none ends mid-test
        HATCHERY_DASHBOARD_SESSION_HOURS=str(2 / 3600),
        HATCHERY_PUBLIC_URL="https://dash.example",
    )
    set_password(server.db_url, "local@localhost")
    with _browser(server) as http:
        done = _attempt(http, "local@localhost", PASSWORD)
        assert done.status_code == 303
        assert "secure" in done.headers["set-cookie"].lower()
        session = next(
            c for c in done.headers.get_list("set-cookie") if c.startswith("hatchery_session=")
        )
        cookie = {"Cookie": session.partition(";")[0]}
    with _browser(server) as http:  # httpx keeps no Secure cookie over http: send it by hand
        assert http.get("/dashboard", headers=cookie).status_code == 200
        time.sleep(2.5)
        assert http.get("/dashboard", headers=cookie).status_code == 303
    with _browser(server) as http:
        for _ in range(2):
            assert _attempt(http, "local@localhost", "wrong password").status_code == 401
        limited = _attempt(http, "local@localhost", PASSWORD)
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        assert "sign-in attempts" in limited.text
        # the two limits are counted apart: this email from a fresh IP is still refused, and
        # this IP with a fresh email too, while a fresh IP with a fresh email is not
        elsewhere = _attempt(http, "local@localhost", PASSWORD, ip="192.0.2.7")
        assert elsewhere.status_code == 429 and "per email" in elsewhere.text
        other_email = _attempt(http, "nobody@example.com", "wrong password")
        assert other_email.status_code == 429 and "per client IP" in other_email.text
        fresh = _attempt(http, "nobody@example.com", "wrong password", ip="192.0.2.8")
        assert fresh.status_code == 401


def test_a_task_of_the_session_completes_and_shows_on_the_overview(server: ServerProcess) -> None:
    with new_signed_in_account(server, "overview@example.com") as dash:
        made = dash.api("POST", "/v1/generate", json={"model": "nanobanana", "prompt": "a fox"})
        task_id = made.json()["data"]["id"]
        cost = wait_for_task(dash.http, task_id)["cost"]  # "$0.01"
        page = dash.get("/dashboard").text
        assert task_id in page
        left = f"${10 - float(cost.removeprefix('$')):.4f}"  # of the $10.00 it started with
        figures = re.findall(r'<div class="stat"[^>]*>([^<]+)</div>', page)
        assert figures == [left, "$0.0000", left]  # balance, reserved, available
