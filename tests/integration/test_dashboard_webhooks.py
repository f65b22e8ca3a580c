"""The dashboard's webhooks page over HTTP, with real deliveries to a receiver on 127.0.0.1: the
account's signing secret (generated and rotated, shown once, then only its last 4 characters)
signs task webhooks; endpoints registered there (their secret shown once) get their events,
test events, and are enabled and deleted; the delivery log lists messages and sends them again;
nothing of another account's can be touched."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from standardwebhooks.webhooks import Webhook

from hatchery.webhooks import verify as egg_verify
from tests.dashboard_helpers import Dashboard, SignIn
from tests.helpers import LocalHTTPServer, Received, ServerProcess, wait_for_task

NEW_SECRET = re.compile(r'id="new-secret"[^>]*value="(whsec_[^"]+)"')
NEW_ENDPOINT_SECRET = re.compile(r'id="new-endpoint-secret"[^>]*value="(whsec_[^"]+)"')
ENDPOINT_ROW = re.compile(r'<tr id="endpoint-(ep_[^"]+)">')
DELIVERY_ROW = re.compile(r'<tr id="delivery-(whd_[^"]+)">')
PAGE = "/dashboard/webhooks"


def row(page: str, row_id: str) -> str:
    found = re.search(rf'<tr id="{re.escape(row_id)}">(.*?)</tr>', page, re.S)
    assert found, f"no row {row_id}"
    return html.unescape(found.group(1))


def cell(row_text: str, label: str) -> str:
    found = re.search(rf'data-label="{label}"[^>]*>(.*?)</td>', row_text, re.S)
    assert found, f"no cell {label} in {row_text}"
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split())


def stored_secret(server: ServerProcess, email: str) -> str | None:
    ((secret,),) = server.query("SELECT webhook_secret FROM accounts WHERE email = :e", e=email)
    return secret  # type: ignore[no-any-return]


def submit(dash: Dashboard, webhook_url: str | None = None) -> dict[str, Any]:
    """A task of the session's account, to its end."""
    body = {"model": "nanobanana", "prompt": "a heron", "webhook_url": webhook_url}
    submitted = dash.api("POST", "/v1/generate", json={k: v for k, v in body.items() if v})
    assert submitted.status_code == 202, submitted.text
    task = wait_for_task(dash.http, submitted.json()["data"]["id"])
    assert task["status"] == "completed"
    return task


def add_endpoint(dash: Dashboard, url: str, *events: str, description: str = "") -> str:
    """Register an endpoint through the page's form; the signing secret it shows."""
    dash.get(PAGE)
    fields = {"url": url, "description": description, **{f"event:{e}": "1" for e in events}}
    response = dash.post(f"{PAGE}/endpoints", fields)
    assert response.status_code == 200, response.text
    assert "will not be shown again" in response.text
    found = NEW_ENDPOINT_SECRET.search(response.text)
    assert found, response.text
    return found.group(1)


def only_endpoint(page: str) -> str:
    (endpoint_id,) = ENDPOINT_ROW.findall(page)
    return str(endpoint_id)


def settled(dash: Dashboard, check: Callable[[str], bool], timeout: float = 15.0) -> str:
    """The page once ``check`` holds of it."""
    deadline = time.monotonic() + timeout
    while True:
        page = dash.get(PAGE).text
        if check(page):
            return page
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_the_secret_is_generated_and_rotated_shown_once(
    server: ServerProcess, sign_in: SignIn, receiver: LocalHTTPServer
) -> None:
    email = "hooks-secret@example.com"
    dash = sign_in(email)
    page = dash.get(PAGE).text
    assert "No secret is set" in page and "Generate secret" in page
    made = dash.post(f"{PAGE}/secret", {})
    assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
    first = NEW_SECRET.search(made.text)
    assert first and "will not be shown again" in made.text
    assert stored_secret(server, email) == first.group(1)
    again = dash.get(PAGE).text
    assert first.group(1) not in again
    assert f"…{first.group(1)[-4:]}" in html.unescape(again)
    assert "receivers verifying with the old one will fail" in again.lower()  # the confirm

    rotated = dash.post(f"{PAGE}/secret", {})
    second = NEW_SECRET.search(rotated.text)
    assert second and second.group(1) != first.group(1)
    assert stored_secret(server, email) == second.group(1)
    task = submit(dash, receiver.url("/signed"))
    (hook,) = receiver.wait_for(1, path="/signed")
    assert egg_verify(hook.body, hook.headers, second.group(1))["task_id"] == task["id"]


def test_the_secret_needs_the_csrf_token(server: ServerProcess, sign_in: SignIn) -> None:
    email = "hooks-secret-csrf@example.com"
    dash = sign_in(email)
    dash.get(PAGE)
    assert dash.post(f"{PAGE}/secret", {}, csrf="").status_code == 403
    assert dash.post(f"{PAGE}/secret", {}, csrf="forged").status_code == 403
    assert stored_secret(server, email) is None


def header(hook: Received, name: str) -> str | None:
    return next((v for k, v in hook.headers.items() if k.lower() == name), None)


def verified(hook: Received, secret: str) -> dict[str, Any]:
    event: dict[str, Any] = Webhook(secret).verify(hook.body, hook.headers)
    return event


def test_an_endpoint_is_registered_tested_and_deleted(
    sign_in: SignIn, receiver: LocalHTTPServer
) -> None:
    dash = sign_in("hooks-endpoint@example.com")
    url = receiver.url("/endpoint")
    secret = add_endpoint(dash, url, "task.completed", "task.failed", description="staging")
    page = dash.get(PAGE).text
    assert secret not in page
    endpoint_id = only_endpoint(page)
    listed = row(page, f"endpoint-{endpoint_id}")
    assert url in cell(listed, "URL") and "staging" in cell(listed, "URL")
    assert cell(listed, "Events") == "task.completed task.failed"
    assert cell(listed, "Status") == "enabled"
    assert cell(listed, "Secret") == f"…{secret[-4:]}"
    api = dash.api("GET", f"/v1/webhooks/endpoints/{endpoint_id}").json()
    assert (api["url"], api["signingSecretLast4"]) == (url, secret[-4:])

    task = submit(dash)
    (hook,) = receiver.wait_for(1, path="/endpoint")
    assert verified(hook, secret)["task_id"] == task["id"]
    tested = dash.post(f"{PAGE}/endpoints/{endpoint_id}/test", {})
    assert tested.status_code == 303
    test_hook = receiver.wait_for(2, path="/endpoint")[1]
    assert verified(test_hook, secret)["event"] == "webhook.test"

    deleted = dash.post(f"{PAGE}/endpoints/{endpoint_id}/delete", {})
    assert deleted.status_code == 303
    assert not ENDPOINT_ROW.findall(dash.get(PAGE).text)
    assert dash.api("GET", "/v1/webhooks/endpoints").json() == {"endpoints": []}
    assert dash.post(f"{PAGE}/endpoints/{endpoint_id}/delete", {}).status_code == 404


def test_endpoints_are_checked_as_the_api_checks_them(sign_in: SignIn) -> None:
    dash = sign_in("hooks-refused@example.com")
    dash.get(PAGE)
    good = {"url": "https://example.com/hooks", "event:task.completed": "1"}
    cases = [
        ({"url": "https://example.com/hooks"}, "at least one event"),
        ({**good, "url": ""}, "url: String should have at least 1 character"),
        ({**good, "url": "ftp://example.com/hooks"}, "url is not allowed"),
        ({**good, "url": "https://example.com/" + "a" * 2048}, "at most 2048 characters"),
        ({**good, "url": "http://8.8.8.8/hooks"}, "plain http is allowed only to private"),
        ({**good, "event:task.exploded": "1"}, "not an event this server sends"),
        ({**good, "description": "d" * 1025}, "description: String should have at most 1024"),
    ]
    for fields, problem in cases:
        response = dash.post(f"{PAGE}/endpoints", fields)
        assert response.status_code == 400, fields
        text = html.unescape(response.text)
        assert 'class="problem"' in text and problem in text, (fields, text)
        assert f'value="{fields["url"][:40]}' in text  # the form keeps what was typed
    assert dash.api("GET", "/v1/webhooks/endpoints").json() == {"endpoints": []}
    assert dash.post(f"{PAGE}/endpoints", good, csrf="").status_code == 403


def test_a_disabled_endpoint_is_shown_with_why_and_enabled_again(
    server: ServerProcess, sign_in: SignIn, receiver: LocalHTTPServer
) -> None:
    dash = sign_in("hooks-disabled@example.com")
    secret = add_endpoint(dash, receiver.url("/again"), "task.completed")
    endpoint_id = only_endpoint(dash.get(PAGE).text)
    server.query(  # what the dispatcher does after a long run of failures
        "UPDATE webhook_endpoints SET status = 'disabled', disabled_reason = :why WHERE id = :id",
        why="every attempt failed for 5 days",
        id=endpoint_id,
    )
    listed = row(dash.get(PAGE).text, f"endpoint-{endpoint_id}")
    assert "disabled" in cell(listed, "Status")
    assert "every attempt failed for 5 days" in cell(listed, "Status")
    assert f"/endpoints/{endpoint_id}/enable" in listed and "/test" not in listed
    assert dash.post(f"{PAGE}/endpoints/{endpoint_id}/test", {}).status_code == 409

    assert dash.post(f"{PAGE}/endpoints/{endpoint_id}/enable", {}).status_code == 303
    listed = row(dash.get(PAGE).text, f"endpoint-{endpoint_id}")
    assert cell(listed, "Status") == "enabled"
    assert dash.post(f"{PAGE}/endpoints/{endpoint_id}/test", {}).status_code == 303
    (hook,) = receiver.wait_for(1, path="/again")
    assert verified(hook, secret)["event"] == "webhook.test"


def test_the_delivery_log_lists_messages_and_redelivers_one(
    sign_in: SignIn, receiver: LocalHTTPServer
) -> None:
    dash = sign_in("hooks-log@example.com")
    assert "No webhook messages" in dash.get(PAGE).text
    task = submit(dash, receiver.url("/log"))
    (first,) = receiver.wait_for(1, path="/log")
    page = settled(dash, lambda p: "delivered" in p)
    (delivery_id,) = DELIVERY_ROW.findall(page)
    logged = row(page, f"delivery-{delivery_id}")
    assert cell(logged, "Event") == "task.completed"
    assert cell(logged, "About") == task["id"]
    assert f'href="/dashboard/tasks/{task["id"]}"' in logged
    assert receiver.url("/log") in cell(logged, "To") and "task webhook_url" in cell(logged, "To")
    assert cell(logged, "Status") == "delivered"
    assert cell(logged, "Attempts") == "1"
    assert cell(logged, "Last answer").startswith("HTTP 200")

    again = dash.post(f"{PAGE}/deliveries/{delivery_id}/redeliver", {})
    assert again.status_code == 303
    second = receiver.wait_for(2, path="/log")[1]
    assert header(second, "webhook-id") == header(first, "webhook-id") is not None
    assert second.body == first.body
    settled(dash, lambda p: cell(row(p, f"delivery-{delivery_id}"), "Attempts") == "2")
    assert dash.post(f"{PAGE}/deliveries/{delivery_id}/redeliver", {}, csrf="").status_code == 403


def test_the_delivery_log_pages_and_filters_by_endpoint(
    sign_in: SignIn, receiver: LocalHTTPServer
) -> None:
    dash = sign_in("hooks-pages@example.com")
    add_endpoint(dash, receiver.url("/one"), "task.failed")
    add_endpoint(dash, receiver.url("/two"), "task.failed")
    one, two = ENDPOINT_ROW.findall(dash.get(PAGE).text)
    for _ in range(26):
        assert dash.post(f"{PAGE}/endpoints/{one}/test", {}).status_code == 303
    assert dash.post(f"{PAGE}/endpoints/{two}/test", {}).status_code == 303
    newest = dash.get(PAGE).text
    first = DELIVERY_ROW.findall(newest)
    assert len(first) == 25
    older = re.search(r'href="(/dashboard/webhooks\?cursor=[^"#]+)', newest)
    assert older, "no link to older deliveries"
    link = urlsplit(html.unescape(older.group(1)))
    rest = dash.get(link.path, **dict(parse_qsl(link.query))).text
    second = DELIVERY_ROW.findall(rest)
    assert len(second) == 2 and not set(first) & set(second)
    assert "Older deliveries" not in rest and "Newest" in rest
    only_two = DELIVERY_ROW.findall(dash.get(PAGE, endpoint=two).text)
    assert len(only_two) == 1
    assert dash.get(PAGE, cursor="forged").status_code == 400
    assert dash.get(PAGE, endpoint="nope").status_code == 400


def test_another_accounts_endpoints_and_deliveries_are_not_found(
    sign_in: SignIn, receiver: LocalHTTPServer
) -> None:
    owner = sign_in("hooks-owner@example.com")
    add_endpoint(owner, receiver.url("/mine"), "task.completed")
    endpoint_id = only_endpoint(owner.get(PAGE).text)
    submit(owner, receiver.url("/mine-task"))
    receiver.wait_for(2)
    (delivery_id,) = DELIVERY_ROW.findall(owner.get(PAGE, endpoint=endpoint_id).text)

    intruder = sign_in("hooks-intruder@example.com")
    page = intruder.get(PAGE).text
    assert endpoint_id not in page and delivery_id not in page
    for path in (
        f"{PAGE}/endpoints/{endpoint_id}/delete",
        f"{PAGE}/endpoints/{endpoint_id}/enable",
        f"{PAGE}/endpoints/{endpoint_id}/test",
        f"{PAGE}/deliveries/{delivery_id}/redeliver",
        f"{PAGE}/endpoints/not-an-id/delete",
        f"{PAGE}/deliveries/not-an-id/redeliver",
    ):
        response = intruder.post(path, {})
        assert response.status_code == 404, path
        assert "text/html" in response.headers["content-type"]
    assert only_endpoint(owner.get(PAGE).text) == endpoint_id
