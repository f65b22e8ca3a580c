"""The dashboard's tasks and tool executions over HTTP, on both databases: the list with its
filters and pages, a task's page (parameters, timeline, attempts, providers, outputs inline),
webhook deliveries and their redelivery (CSRF first), cancelling, and another account's task as
a 404 page."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from tests.dashboard_helpers import Dashboard, new_signed_in_account
from tests.helpers import LocalHTTPServer, ServerProcess
from tests.tools_helpers import wait_for_execution

PROMPT = "a lighthouse seen from the dashboard"
TOOL_PROMPT = "a teapot drawn by a tool"


def wait(dash: Dashboard, task_id: str, until: tuple[str, ...] = ("completed", "failed")) -> Any:
    """The task once it is in one of ``until``, read through the session (as the page's calls)."""
    deadline = time.monotonic() + 60
    while True:
        task = dash.api("GET", f"/v1/tasks/{task_id}").json()["data"]
        if task["status"] in until or time.monotonic() > deadline:
            return task
        time.sleep(0.1)


def generate(dash: Dashboard, **body: Any) -> str:
    response = dash.api("POST", "/v1/generate", json={"model": "nanobanana", **body})
    assert response.status_code == 202, response.text
    return str(response.json()["data"]["id"])


def follow(dash: Dashboard, link: str) -> httpx.Response:
    """GET a link with its query (``Dashboard.get`` takes the query as keywords)."""
    path, _, query = html.unescape(link).partition("?")
    return dash.get(path, **dict(parse_qsl(query)))


def link(page: str, element_id: str) -> str:
    found = re.search(rf'href="([^"]+)" id="{element_id}"', page)
    assert found is not None, f"no link #{element_id}"
    return found[1]


def listed(page: str) -> list[str]:
    """The ids the list shows, in order."""
    return re.findall(r'href="/dashboard/tasks/(gen_[a-z0-9]+|vg_exec_[A-Za-z0-9_-]+)"', page)


@pytest.fixture(scope="module")
def hooks(server: ServerProcess) -> Iterator[LocalHTTPServer]:
    """A webhook receiver of the module's server (one per backend)."""
    receiver = LocalHTTPServer(lambda path, method: (200, {}, b"thanks"))
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def dash(server: ServerProcess) -> Iterator[Dashboard]:
    dashboard = new_signed_in_account(server, "tasks-page@example.com", "50.00")
    yield dashboard
    dashboard.close()


@pytest.fixture(scope="module")
def done(dash: Dashboard, hooks: LocalHTTPServer) -> dict[str, Any]:
    """A completed nanobanana task with a webhook_url, made through the API."""
    task_id = generate(dash, prompt=PROMPT, webhook_url=hooks.url("/done"))
    task = wait(dash, task_id)
    assert task["status"] == "completed", task
    hooks.wait_for_tasks({task_id}, "/done")
    return dict(task)


@pytest.fixture(scope="module")
def execution(dash: Dashboard) -> dict[str, Any]:
    """A succeeded generate-image execution, made through the VideoGen API on the session."""
    response = dash.api("POST", "/v1/tools/generate-image", json={"prompt": TOOL_PROMPT})
    assert response.status_code == 202, response.text
    found = wait_for_execution(dash.http, response.json()["toolExecutionId"])
    assert found["status"] == "succeeded", found
    return dict(found)


def test_the_list_shows_the_task_with_its_status_and_cost(
    dash: Dashboard, done: dict[str, Any]
) -> None:
    page = dash.get("/dashboard/tasks")
    assert page.status_code == 200
    assert done["id"] in listed(page.text)
    row = page.text[page.text.index(f'href="/dashboard/tasks/{done["id"]}"') :].split("</tr>")[0]
    assert "nanobanana" in row and 'class="badge completed"' in row
    assert done["cost"] == "$0.0100" and "$0.0100" in row
    assert re.search(r"\d+\.\d s", row)  # its duration
    for field in ("filter-kind", "filter-model", "filter-status"):
        assert f'<label for="{field}">' in page.text and f'id="{field}"' in page.text


def test_filters_narrow_the_list(
    dash: Dashboard, done: dict[str, Any], execution: dict[str, Any]
) -> None:
    task, run = done["id"], execution["toolExecutionId"]
    everything = listed(dash.get("/dashboard/tasks").text)
    assert {task, run} <= set(everything)
    assert everything.index(run) < everything.index(task)  # newest first
    cases = [
        ({"kind": "generations"}, {task}, {run}),
        ({"kind": "tools"}, {run}, {task}),
        ({"model": "generate-image"}, {run}, {task}),
        ({"model": "nanobanana", "status": "completed", "kind": "generations"}, {task}, {run}),
        ({"status": "failed"}, set(), {task, run}),
        ({"model": "nanobanana-pro"}, set(), {task, run}),
        ({"kind": "tools", "model": "nanobanana"}, set(), {task, run}),
    ]
    for query, shown, hidden in cases:
        page = dash.get("/dashboard/tasks", **query)
        assert page.status_code == 200, query
        ids = set(listed(page.text))
        assert shown <= ids and not hidden & ids, query
        for name, value in query.items():  # the form shows what it filters by
            assert f'<option value="{value}" selected>' in page.text, (query, name)
    counted = dash.get("/dashboard/tasks", kind="tools", model="generate-image").text
    assert re.search(r"1 task matches these filters", counted)
    assert dash.get("/dashboard/tasks", status="sleeping").status_code == 400
    assert dash.get("/dashboard/tasks", before="not-a-position").status_code == 400


def test_pages_go_older_and_back_newer(server: ServerProcess) -> None:
    pager = new_signed_in_account(server, "tasks-pages@example.com", "50.00")
    try:
        made = [generate(pager, prompt=f"page {n}") for n in range(53)][::-1]  # newest first
        first = pager.get("/dashboard/tasks").text
        assert listed(first) == made[:25]
        assert "53 tasks." in first and 'id="page-newer"' not in first
        second = follow(pager, link(first, "page-older")).text
        assert listed(second) == made[25:50]
        assert 'id="page-first"' in second
        third = follow(pager, link(second, "page-older")).text
        assert listed(third) == made[50:] and 'id="page-older"' not in third
        assert listed(follow(pager, link(third, "page-newer")).text) == made[25:50]
        assert listed(follow(pager, link(second, "page-newer")).text) == made[:25]
        # the filters hold across pages
        only = pager.get("/dashboard/tasks", kind="generations", model="nanobanana").text
        older = link(only, "page-older")
        assert "kind=generations" in older and "model=nanobanana" in older
        assert listed(follow(pager, older).text) == made[25:50]
    finally:
        pager.close()


def test_the_task_page_shows_parameters_timeline_attempts_and_the_output(
    dash: Dashboard, done: dict[str, Any], hooks: LocalHTTPServer
) -> None:
    page = dash.get(f"/dashboard/tasks/{done['id']}")
    assert page.status_code == 200
    text = page.text
    assert f'"prompt": "{PROMPT}"' in html.unescape(text)
    assert f'<dt>Webhook URL</dt><dd class="mono">{hooks.url("/done")}</dd>' in text
    timeline = text[text.index('id="timeline"') : text.index('id="attempts"')]
    statuses = re.findall(r'class="badge (\w+)"', timeline)
    assert statuses == ["pending", "processing", "completed"]
    attempts = text[text.index('id="attempts"') : text.index('id="providers"')]
    assert re.search(r'<td data-label="#">1</td>', attempts)
    assert 'class="badge completed"' in attempts and 'data-label="Worker"' in attempts
    providers = text[text.index('id="providers"') : text.index('id="parameters"')]
    assert 'id="served-by">local<' in providers
    assert "$0.0100" in text[text.index('id="task-cost"') :].split("</dd>")[0]
    outputs = text[text.index('id="outputs"') : text.index('id="timeline"')]
    url = done["output"]["url"]
    assert f'<img src="{url}"' in outputs and f'href="{url}" download=' in outputs
    assert 'id="cancel-task"' not in text and "data-events" not in text  # it has ended


def test_another_accounts_task_or_a_malformed_id_is_a_404_page(
    server: ServerProcess, dash: Dashboard, done: dict[str, Any]
) -> None:
    other = new_signed_in_account(server, "tasks-other@example.com")
    try:
        for path in (
            f"/dashboard/tasks/{done['id']}",
            "/dashboard/tasks/gen_zzzzzzzzzzzzzzzz",
            "/dashboard/tasks/not-a-task",
            "/dashboard/tasks/vg_exec_nope",
        ):
            page = other.get(path)
            assert page.status_code == 404, path
            assert "Not found" in page.text and PROMPT not in page.text
        cancel = other.post(f"/dashboard/tasks/{done['id']}/cancel", {})
        assert cancel.status_code == 404
        listed_there = listed(other.get("/dashboard/tasks").text)
        assert done["id"] not in listed_there
    finally:
        other.close()


def test_webhook_deliveries_show_each_attempt_and_redeliver_with_csrf(
    dash: Dashboard, done: dict[str, Any], hooks: LocalHTTPServer
) -> None:
    path = f"/dashboard/tasks/{done['id']}"
    deadline = time.monotonic() + 10
    while 'class="badge delivered"' not in (page := dash.get(path).text):
        assert time.monotonic() < deadline, "the delivery is not shown delivered"
        time.sleep(0.1)
    section = page[page.index('id="webhooks"') :]
    delivery = re.search(r'id="delivery-([^"]+)"', section)
    assert delivery is not None
    assert "task.completed" in section and hooks.url("/done") in section
    assert 'data-label="Status code">200<' in section and "thanks" in section
    redeliver = f"{path}/webhooks/{delivery[1]}/redeliver"
    assert f'action="{redeliver}"' in section
    before = len(hooks.wait_for(1, path="/done"))
    refused = dash.post(redeliver, {}, csrf="")
    assert refused.status_code == 403 and "CSRF" in refused.text
    assert dash.post(redeliver, {}, csrf="wrong").status_code == 403
    time.sleep(0.5)
    assert len(hooks.received) == before  # nothing sent again
    queued = dash.post(redeliver, {})
    assert queued.status_code == 303
    assert queued.headers["location"].startswith(f"{path}?notice=")
    again = hooks.wait_for(before + 1, path="/done")
    assert again[-1].headers["webhook-id"] == again[0].headers["webhook-id"]
    assert again[-1].body == again[0].body
    shown = follow(dash, queued.headers["location"]).text
    assert "Redelivery queued" in shown
    unknown = dash.post(f"{path}/webhooks/whd_nothing_like_it/redeliver", {})
    assert unknown.status_code == 404


def test_a_running_task_can_be_cancelled_from_its_page(dash: Dashboard) -> None:
    task_id = generate(dash, model="veo3.1", prompt="a long walk", duration=30)
    path = f"/dashboard/tasks/{task_id}"
    page = dash.get(path).text
    assert 'id="cancel-task"' in page
    assert f'data-events="/v1/tasks/{task_id}/events"' in page
    assert '<script src="/dashboard/static/tasks.js" defer>' in page
    assert dash.get("/dashboard/static/tasks.js").status_code == 200
    assert dash.post(f"{path}/cancel", {}, csrf="").status_code == 403
    cancelled = dash.post(f"{path}/cancel", {})
    assert cancelled.status_code == 303 and "Cancelled" in html.unescape(
        cancelled.headers["location"].replace("%20", " ")
    )
    assert wait(dash, task_id, ("cancelled",))["status"] == "cancelled"
    after = dash.get(path).text
    assert 'id="task-status">cancelled<' in after and 'id="cancel-task"' not in after
    again = dash.post(f"{path}/cancel", {})
    assert again.status_code == 303 and "already%20cancelled" in again.headers["location"]


def test_a_tool_execution_shows_its_outputs_inline(
    dash: Dashboard, execution: dict[str, Any]
) -> None:
    run = execution["toolExecutionId"]
    page = dash.get(f"/dashboard/tasks/{run}")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert "Tool execution" in text and "generate-image" in text
    assert f'"prompt": "{TOOL_PROMPT}"' in text
    (result,) = execution["results"]
    outputs = text[text.index('id="outputs"') : text.index('id="timeline"')]
    src = re.search(r'<img src="([^"]+)"', outputs)
    assert src is not None
    # a fresh signed URL of the same stored file as the API's
    assert src[1].split("?")[0] == result["file"]["downloadSource"]["url"].split("?")[0]
    assert dash.http.get(src[1]).content.startswith(b"\x89PNG")
    assert f"Download {result['fileId']}" in outputs
    assert 'id="served-by">local<' in text
