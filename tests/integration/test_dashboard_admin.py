"""The operator's pages (``/dashboard/admin``) over HTTP, on both databases: only an admin sees
them (403 for everyone else on every page and form, and no "Admin" in their navigation); an
admin credits and debits an account and its ledger shows it, creates, suspends and activates
accounts and sets their limits and flags, revokes any key, reorders, disables and reprices a
model's providers and sees the route change, has a breaking change refused with the reason, and
finds every change in the audit log with its before and after."""

from __future__ import annotations

import html
import itertools
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from hatchery.api.dashboard import router as dashboard_router
from tests.dashboard_helpers import Dashboard, SignIn, new_signed_in_account
from tests.fake_upstreams import FAL_KEY, FakeFal
from tests.helpers import ServerProcess

pytestmark = pytest.mark.slow

MODEL = "nanobanana"
ROUTE = f"/dashboard/admin/routes/model/{MODEL}"
CATALOG = f"""
[models.{MODEL}]
type = "image"
price_per_output = "0.0100"
providers = ["local", "fal"]
"""
_numbers = itertools.count()


def _email(what: str) -> str:
    return f"{what}-{next(_numbers)}-{time.monotonic_ns()}@example.com"


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    new_database: Callable[[], tuple[str | None, str | None]],
    fal: FakeFal,
) -> Iterator[ServerProcess]:
    """One server per backend, with a model routed to two providers (local, then fal: the
    strict fake, never called here)."""
    url, key = new_database()
    data = tmp_path_factory.mktemp("admin-pages")
    catalog = data / "catalog.toml"
    catalog.write_text(CATALOG)
    settings = {
        "HATCHERY_CATALOG": str(catalog),
        "HATCHERY_FAL_KEY": FAL_KEY,
        "HATCHERY_FAL_BASE_URL": fal.base,
    }
    proc = ServerProcess(data, settings, database_url=url, key=key).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def admin(server: ServerProcess) -> Iterator[Dashboard]:
    """An admin signed in to the dashboard."""
    with new_signed_in_account(server, _email("ops"), "100.00", admin=True) as dash:
        yield dash


# -- reading the pages


def text(fragment: str) -> str:
    """What a piece of a page says, without its tags."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def element(page: str, element_id: str) -> str:
    """The text of the element ``id`` (up to its closing tag of the same name)."""
    found = re.search(rf'<(\w+)[^>]*\bid="{re.escape(element_id)}"[^>]*>(.*?)</\1>', page, re.S)
    assert found, f"no element {element_id}"
    return text(found.group(2))


def row(page: str, row_id: str) -> str:
    found = re.search(rf'<tr id="{re.escape(row_id)}">(.*?)</tr>', page, re.S)
    assert found, f"no row {row_id}"
    return text(found.group(1))


def ids(page: str, pattern: str) -> list[str]:
    return re.findall(rf'<tr id="({pattern})">', page)


def _notice(page: str) -> str:
    found = re.search(r'<p class="notice" role="status">(.*?)</p>', page, re.S)
    assert found, "no notice on the page"
    return text(found.group(1))


def problem(page: str) -> str:
    return element(page, "problem")


def follow(dash: Dashboard, response: httpx.Response) -> str:
    """The page a change's redirect goes to, with its notice."""
    assert response.status_code == 303, response.text
    page = dash.get(response.headers["location"])
    assert page.status_code == 200
    return page.text


def account_id(server: ServerProcess, email: str) -> str:
    ((found,),) = server.query("SELECT id FROM accounts WHERE email = :e", e=email)
    return str(found)


def balance(server: ServerProcess, target: str) -> tuple[int, int]:
    """The account's balance and the sum of its ledger."""
    ((micros,),) = server.query("SELECT balance_micros FROM accounts WHERE id = :a", a=target)
    ((total,),) = server.query(
        "SELECT COALESCE(SUM(amount_micros), 0) FROM ledger WHERE account_id = :a", a=target
    )
    return int(micros), int(total)


def revision(page: str) -> str:
    return element(page, "route-revision")


def provider_order(page: str) -> list[str]:
    table = re.search(r'id="route-providers".*?</table>', page, re.S)
    assert table
    return re.findall(r'<tr id="provider-([^"]+)">', table.group(0))


def change_route(
    dash: Dashboard, form: str, fields: dict[str, str], *, at: str | None = None
) -> httpx.Response:
    """Post a route form with the revision of the route's page as it is now (or ``at``)."""
    current = revision(dash.get(ROUTE).text)
    return dash.post(f"{ROUTE}/{form}", {"revision": at or current, **fields})


# -- who may see them


def _routes(routes: list[Any]) -> Iterator[Any]:
    """Each route, those of included routers too (FastAPI includes them as branches)."""
    for route in routes:
        if hasattr(route, "effective_route_contexts"):
            yield from route.effective_route_contexts()
        else:
            yield route


def admin_routes() -> list[tuple[str, str]]:
    """Every page and form under /dashboard/admin, as the app routes them."""
    return sorted(
        (route.path, method)
        for route in _routes(dashboard_router.routes)
        if route.path.startswith("/dashboard/admin")
        for method in route.methods
    )


def test_a_non_admin_gets_403_on_every_admin_page_and_form(
    server: ServerProcess, admin: Dashboard, sign_in: SignIn
) -> None:
    email = _email("user")
    user = sign_in(email)
    other_key = server.new_account(_email("bystander"))
    target = account_id(server, email)
    values = {"account_id": target, "prefix": other_key[:13], "kind": "model", "name": MODEL}
    routes = admin_routes()
    assert ("/dashboard/admin", "GET") in routes
    assert ("/dashboard/admin/accounts/{account_id}/balance", "POST") in routes
    assert len(routes) >= 20
    before = (balance(server, target), revision(admin.get(ROUTE).text))
    fields = {"amount": "5.00", "reason": "x", "email": _email("sneaky"), "provider": "fal"}
    assert 'href="/dashboard/admin"' not in user.get("/dashboard").text
    for path, method in routes:
        url = path.format(**values)
        if method == "GET":
            answer = user.get(url)
        else:
            answer = user.post(url, {**fields, "action": "up", "revision": before[1]})
        assert answer.status_code == 403, (method, path, answer.text[:300])
        assert "Not allowed" in answer.text and "grant-admin" in answer.text, (method, path)
        assert answer.headers["content-security-policy"].startswith("default-src 'self'")
    # nothing changed
    assert (balance(server, target), revision(admin.get(ROUTE).text)) == before
    assert server.query("SELECT revoked_at FROM api_keys WHERE prefix = :p", p=other_key[:13]) == [
        (None,)
    ]
    assert server.query("SELECT status FROM accounts WHERE id = :a", a=target) == [("active",)]
    # an admin is shown the section; someone signed out is sent to sign in
    assert 'href="/dashboard/admin"' in admin.get("/dashboard").text
    with httpx.Client(base_url=server.url) as nobody:
        signed_out = nobody.get("/dashboard/admin/accounts")
    assert signed_out.status_code == 303
    assert signed_out.headers["location"].startswith("/dashboard/sign-in")


# -- accounts and money


def test_an_admin_credits_and_debits_and_the_ledger_shows_it(
    server: ServerProcess, admin: Dashboard
) -> None:
    email = _email("customer")
    server.new_account(email, "10.00")
    target = account_id(server, email)
    found = admin.get("/dashboard/admin/accounts", query=email).text
    assert ids(found, 'account-acct_[^"]+') == [f"account-{target}"]
    assert "$10.0000" in row(found, f"account-{target}")
    page = f"/dashboard/admin/accounts/{target}"
    admin.get(page)

    credited = admin.post(f"{page}/balance", {"amount": "5.00", "reason": "goodwill"})
    assert _notice(follow(admin, credited)) == "Credited $5.0000: the balance is $15.0000"
    debited = admin.post(f"{page}/balance", {"amount": "-2.50", "reason": "refund reversed"})
    shown = follow(admin, debited)
    assert _notice(shown) == "Debited $2.5000: the balance is $12.5000"
    assert element(shown, "balance") == "$12.5000"
    assert element(shown, "ledger-total") == "$12.5000"
    assert element(shown, "reconciled") == "Equal to the balance"
    entries = ids(shown, r"ledger-\d+")
    assert [row(shown, e) for e in entries[:3]] == [
        f"{_when(shown, entries[0])} debit -$2.5000 refund reversed",
        f"{_when(shown, entries[1])} credit $5.0000 goodwill",
        f"{_when(shown, entries[2])} credit $10.0000 initial balance",
    ]
    assert balance(server, target) == (12_500_000, 12_500_000)

    refusals = {
        "abc": ("reason", "write dollars"),
        "0.0000001": ("reason", "more than 6 decimal places"),
        "0": ("reason", "cannot be zero"),
        "-100.00": ("reason", "cannot debit $100.0000"),
        "1.00": ("", "say why"),
    }
    for amount, (why, message) in refusals.items():
        refused = admin.post(f"{page}/balance", {"amount": amount, "reason": why})
        assert refused.status_code == 400, amount
        assert message in problem(refused.text), (amount, problem(refused.text))
        assert f'value="{amount}"' in refused.text  # the form keeps what was typed
    assert balance(server, target) == (12_500_000, 12_500_000)


def _when(page: str, row_id: str) -> str:
    found = re.search(rf'<tr id="{row_id}">\s*<td data-label="When"[^>]*>([^<]*)</td>', page, re.S)
    assert found
    return found.group(1).strip()


def test_accounts_are_created_suspended_activated_limited_and_flagged(
    server: ServerProcess, admin: Dashboard
) -> None:
    email = _email("created")
    admin.get("/dashboard/admin/accounts")
    created = admin.post("/dashboard/admin/accounts", {"email": email, "balance": "2.50"})
    page = follow(admin, created)
    assert _notice(page) == f"Account {email} is created"
    target = account_id(server, email)
    assert element(page, "balance") == "$2.5000"
    again = admin.post("/dashboard/admin/accounts", {"email": email, "balance": ""})
    assert again.status_code == 400 and "already exists" in problem(again.text)
    bad = admin.post("/dashboard/admin/accounts", {"email": _email("x"), "balance": "lots"})
    assert bad.status_code == 400 and "starting balance" in problem(bad.text)

    key = server.new_account(user := _email("suspended"))
    target = account_id(server, user)
    url = f"/dashboard/admin/accounts/{target}"
    admin.get(url)
    assert element(follow(admin, admin.post(f"{url}/suspend", {})), "account-status") == (
        "suspended"
    )
    listed = admin.get("/dashboard/admin/accounts", status="suspended", query=user).text
    assert ids(listed, 'account-acct_[^"]+') == [f"account-{target}"]
    with server.client(key) as client:
        _until(lambda: client.get("/v1/account").status_code == 403)
        page = follow(admin, admin.post(f"{url}/activate", {}))
        assert element(page, "account-status") == "active"
        _until(lambda: client.get("/v1/account").status_code == 200)

    limited = follow(admin, admin.post(f"{url}/rate-limit", {"rate_limit": "5/second"}))
    assert element(limited, "rate-limit") == "5/second"
    refused = admin.post(f"{url}/rate-limit", {"rate_limit": "fast"})
    assert refused.status_code == 400 and "fast" in problem(refused.text)
    flagged = follow(admin, admin.post(f"{url}/flags", {"flag:no-watermark": "1"}))
    assert element(flagged, "flags") == "no-watermark"
    unknown = admin.post(f"{url}/flags", {"flag:gold": "1"})
    assert unknown.status_code == 400 and "no flag gold" in problem(unknown.text)
    assert element(follow(admin, admin.post(f"{url}/flags", {})), "flags") == "none"
    assert admin.get("/dashboard/admin/accounts/acct_nobody").status_code == 404
    assert admin.get("/dashboard/admin/accounts", status="gone").status_code == 400


def _until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_an_admin_revokes_any_accounts_key(server: ServerProcess, admin: Dashboard) -> None:
    key = server.new_account(owner := _email("keyholder"))
    prefix = key[:13]
    listed = admin.get("/dashboard/admin/keys").text
    assert owner in row(listed, f"key-{prefix}") and "active" in row(listed, f"key-{prefix}")
    revoked = admin.post(f"/dashboard/admin/keys/{prefix}/revoke", {})
    page = follow(admin, revoked)
    assert _notice(page).startswith(f"Key {prefix}… is revoked")
    assert "revoked" in row(page, f"key-{prefix}")
    with server.client(key) as client:
        _until(lambda: client.get("/v1/account").status_code == 401)
    active = admin.get("/dashboard/admin/keys", status="active").text
    assert f"key-{prefix}" not in active
    assert admin.post(f"/dashboard/admin/keys/{prefix}/revoke", {}).status_code == 404
    # from the account's page, back to it
    second = server.new_account(other := _email("keyholder"))
    holder = account_id(server, other)
    own = admin.get("/dashboard/admin/keys", account=holder).text
    assert ids(own, 'key-hk_[^"]+') == [f"key-{second[:13]}"]
    assert admin.get("/dashboard/admin/keys", account="someone").status_code == 400
    back = admin.post(f"/dashboard/admin/keys/{second[:13]}/revoke", {"account": holder})
    assert back.headers["location"].startswith(f"/dashboard/admin/accounts/{holder}?")


# -- model routes


def test_an_admin_reorders_disables_and_reprices_a_route_and_breaking_changes_are_refused(
    server: ServerProcess, admin: Dashboard
) -> None:
    listing = admin.get("/dashboard/admin/routes").text
    assert row(listing, f"route-model-{MODEL}").startswith(f"{MODEL} image $0.0100 per image")
    page = admin.get(ROUTE).text
    assert provider_order(page) == ["local", "fal"]
    assert element(page, "route-running") == "local, fal"
    stale = revision(page)
    try:
        moved = follow(admin, change_route(admin, "providers", {"provider": "fal", "action": "up"}))
        assert _notice(moved) == "fal is moved up: fal, local"
        assert provider_order(moved) == ["fal", "local"]
        assert element(moved, "route-running") == "fal, local"
        assert element(moved, "route-source") == "admin"
        disabled = follow(
            admin, change_route(admin, "providers", {"provider": "local", "action": "disable"})
        )
        assert "disabled" in row(disabled, "provider-local")
        assert element(disabled, "route-running") == "fal"
        api = admin.http.get(f"/admin/v1/routes/model/{MODEL}").json()["data"]
        assert [(p["name"], p["enabled"]) for p in api["providers"]] == [
            ("fal", True),
            ("local", False),
        ]
        _refusals(admin, stale)
        priced = follow(
            admin, change_route(admin, "price", {"unit_price": "0.0250", "reason": "dearer"})
        )
        assert element(priced, "route-price") == "$0.0250 per image"
        ruled = follow(
            admin,
            change_route(admin, "rules", {"rule-0-when": "resolution=4k", "rule-0-price": "0.05"}),
        )
        assert 'value="resolution=4k"' in ruled and 'value="0.0500"' in ruled
        synced = follow(admin, change_route(admin, "synchronous", {"synchronous": "on"}))
        assert element(synced, "route-synchronous").startswith("yes")
    finally:
        reset = follow(admin, change_route(admin, "reset", {}))
    assert provider_order(reset) == ["local", "fal"]
    assert element(reset, "route-source") == "catalog"
    assert element(reset, "route-price") == "$0.0100 per image"
    assert 'value="resolution=4k"' not in reset
    # each change is in the audit log, by the admin's session, with its before and after
    audit = admin.get("/dashboard/admin/audit", target=f"model:{MODEL}").text
    entries = [row(audit, e) for e in ids(audit, r"audit-\d+")]
    by = f"{_admin_email(admin)} session"
    assert f"{by} route.reset model:{MODEL}" in entries[0]
    assert f"{by} route.update model:{MODEL} providers : local, fal → fal, local" in entries[-1]
    assert any("dearer unit_price_micros : $0.0100 → $0.0250" in e for e in entries)
    assert len(entries) == 6  # up, disable, price, rules, synchronous, reset: nothing refused


def _refusals(admin: Dashboard, stale: str) -> None:
    """Changes that would break the route, or were made on an old page, are refused with the
    reason, and change nothing."""
    before = admin.get(ROUTE).text
    refusals = [
        ("providers", {"provider": "fal", "action": "disable"}, 400, "at least one provider"),
        ("providers", {"provider": "fal", "action": "up"}, 400, "fal is already first"),
        ("providers", {"provider": "gemini", "action": "up"}, 400, "has no provider 'gemini'"),
        ("price", {"unit_price": "-1.00"}, 400, "cannot be negative"),
        ("price", {"unit_price": "free"}, 400, "write dollars"),
        ("rules", {"rule-0-when": "prompt=x", "rule-0-price": "0.01"}, 400, "prices can depend"),
        ("rules", {"rule-0-when": "resolution", "rule-0-price": "0.01"}, 400, "name=value"),
        ("rules", {"rule-0-when": "resolution=4k", "rule-0-price": ""}, 400, "give both"),
        ("rules", {"rule-0-when": "duration=" + "9" * 5000, "rule-0-price": "1"}, 400, "at most"),
        ("rules", {"rule-0-when": "duration=long", "rule-0-price": "1"}, 400, "whole number"),
        ("rules", {"rule-50-when": "resolution=4k", "rule-50-price": "1"}, 400, "at most 50"),
        ("price", {"unit_price": "1e999999"}, 400, "not an amount"),
        ("price", {"unit_price": "1e-999999999"}, 400, "not an amount"),
        ("price", {"unit_price": "1000.000001"}, 400, "at most"),
    ]
    for form, fields, status, reason in refusals:
        refused = change_route(admin, form, fields)
        assert refused.status_code == status, (form, fields, refused.text[:300])
        assert reason in problem(refused.text), (form, fields, problem(refused.text))
    old = change_route(admin, "providers", {"provider": "local", "action": "up"}, at=stale)
    assert old.status_code == 409 and "has changed since" in problem(old.text)
    assert admin.get(f"/dashboard/admin/routes/engine/{MODEL}").status_code == 404
    assert admin.get("/dashboard/admin/routes/model/no-such").status_code == 404
    after = admin.get(ROUTE).text
    assert revision(after) == revision(before)
    assert provider_order(after) == provider_order(before)


# -- the audit log and the health views


def test_the_audit_page_lists_each_change_with_before_and_after(
    server: ServerProcess, admin: Dashboard
) -> None:
    email = _email("audited")
    server.new_account(email, "10.00")
    target = account_id(server, email)
    admin.get(f"/dashboard/admin/accounts/{target}")
    follow(
        admin,
        admin.post(
            f"/dashboard/admin/accounts/{target}/balance", {"amount": "5.00", "reason": "audit me"}
        ),
    )
    me = _admin_email(admin)
    page = admin.get("/dashboard/admin/audit", target=f"account:{target}").text
    entry, *older = ids(page, r"audit-\d+")  # newest first: the credit, then its creation
    assert [row(page, e).split()[5] for e in older] == ["key.create", "account.create"]
    shown = row(page, entry)
    assert f"{me} session account.credit account:{target} audit me" in shown
    assert "balance_micros : $10.0000 → $15.0000" in shown
    assert f'href="/dashboard/admin/accounts/{target}"' in page
    by_actor = admin.get("/dashboard/admin/audit", actor=me, action="account.").text
    assert entry in ids(by_actor, r"audit-\d+")
    other = admin.get("/dashboard/admin/audit", actor="someone@example.com").text
    assert ids(other, r"audit-\d+") == [] and "No entries match" in other
    routes = admin.get("/dashboard/admin/audit", action="route.").text
    assert all("route." in row(routes, e) for e in ids(routes, r"audit-\d+"))


def _admin_email(admin: Dashboard) -> str:
    found = re.search(r'<span class="email">([^<]+)</span>', admin.get("/dashboard").text)
    assert found
    return html.unescape(found.group(1))


def test_the_health_pages_show_providers_the_queue_and_the_outbox(
    server: ServerProcess, admin: Dashboard
) -> None:
    summary = admin.get("/dashboard/admin").text
    assert int(element(summary, "summary-accounts")) >= 1
    providers = admin.get("/dashboard/admin/providers").text
    assert MODEL in row(providers, "provider-fal") and MODEL in row(providers, "provider-local")

    def worker_shown() -> bool:
        page = admin.get("/dashboard/admin/queue").text
        return 'id="workers"' in page and "alive" in element(page, "workers")

    _until(worker_shown, timeout=30)
    queue = admin.get("/dashboard/admin/queue").text
    assert element(queue, "queue-pending").isdigit()
    (worker,) = ids(queue, 'worker-[^"]+')
    assert "alive" in row(queue, worker) and "ago" in row(queue, worker)
    outbox = admin.get("/dashboard/admin/outbox").text
    assert element(outbox, "outbox-pending").isdigit()
    assert "failing-none" in outbox or "failing-endpoints" in outbox


def test_every_admin_form_wants_the_sessions_csrf_token(
    server: ServerProcess, admin: Dashboard
) -> None:
    target = account_id(server, _admin_email(admin))
    values = {"account_id": target, "prefix": "hk_0123456789", "kind": "model", "name": MODEL}
    current = revision(admin.get(ROUTE).text)
    forms = [path for path, method in admin_routes() if method == "POST"]
    assert forms
    for path in forms:
        for token in ("", "wrong"):
            fields = {"amount": "5.00", "reason": "x", "revision": current, "unit_price": "9"}
            refused = admin.post(path.format(**values), fields, csrf=token)
            assert refused.status_code == 403, (path, token, refused.text[:200])
    assert revision(admin.get(ROUTE).text) == current  # nothing changed


def test_a_route_changes_once_per_revision_and_a_reset_of_nothing_writes_nothing(
    admin: Dashboard,
) -> None:
    shown = revision(admin.get(ROUTE).text)
    first = change_route(admin, "price", {"unit_price": "0.0200"}, at=shown)
    second = change_route(admin, "price", {"unit_price": "0.0300"}, at=shown)
    assert (first.status_code, second.status_code) == (303, 409)
    reset = change_route(admin, "reset", {})
    assert reset.status_code == 303
    after_reset = revision(admin.get(ROUTE).text)
    again = change_route(admin, "reset", {})  # already as the file has it: nothing to write
    assert again.status_code == 303 and revision(admin.get(ROUTE).text) == after_reset
    page = admin.get("/dashboard/admin/keys", before="ZGFrMS45OTk5OTk5OTk5OTk5OTk5OTk")
    assert page.status_code == 400
