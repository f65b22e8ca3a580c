"""The dashboard's usage page and CSV export, and the overview's spend chart, on a real server:
what a completed task cost shows per model and as a record linking to its task, for the range
and filters asked; the CSV file has every record with its cost in dollars and no cell a
spreadsheet would run; the overview draws today's spend as a bar of the model's colour."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from hatchery.api.dashboard.usage import CSV_COLUMNS, csv_cell
from hatchery.domain.keys import key_prefix
from hatchery.domain.money import format_webhook_cost, parse_dollars
from hatchery.store import accounts, usage
from hatchery.store.db import Database
from hatchery.store.tables import usage_records
from tests.dashboard_helpers import Dashboard, new_signed_in_account, set_password, sign_in
from tests.helpers import ServerProcess, wait_for_task
from tests.tools_helpers import succeeded

pytestmark = pytest.mark.slow

LOCAL = "local@localhost"


@pytest.fixture(scope="module")
def dash(server: ServerProcess) -> Iterator[Dashboard]:
    """local@localhost, signed in."""
    set_password(server.db_url, LOCAL)
    dash = sign_in(server, LOCAL)
    yield dash
    dash.close()


@pytest.fixture(scope="module")
def task(server: ServerProcess) -> dict[str, Any]:
    """A nanobanana image local@localhost's key made (and was charged for)."""
    with server.client() as client:
        response = client.post("/v1/generate", json={"model": "nanobanana", "prompt": "a kite"})
        assert response.status_code == 202, response.text
        done = wait_for_task(client, response.json()["data"]["id"])
    assert done["status"] == "completed", done
    assert parse_dollars(done["cost"]) > 0
    return done


@pytest.fixture(scope="module")
def execution(server: ServerProcess) -> dict[str, Any]:
    """A generate-image tool execution local@localhost's key ran."""
    with server.client() as client:
        return succeeded(client, "generate-image", prompt="a lighthouse")


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def section(html: str, element_id: str) -> str:
    """The markup from the element with ``element_id`` to the end of its table (or list)."""
    start = html.index(f'id="{element_id}"')
    end = min(i for i in (html.find("</table>", start), html.find("</ul>", start)) if i > 0)
    return html[start:end]


def test_the_usage_page_shows_a_tasks_cost_per_model_and_its_record(
    dash: Dashboard, task: dict[str, Any]
) -> None:
    page = dash.get("/dashboard/usage")
    assert page.status_code == 200, page.text
    html = page.text
    for field in ('for="usage-start"', 'for="usage-end"', 'type="date"'):
        assert field in html
    default_start = (datetime.now(UTC).date() - timedelta(days=29)).isoformat()
    assert f'value="{default_start}"' in html and f'value="{today()}"' in html
    summary = section(html, "usage-summary")
    row = summary[summary.index(">nanobanana<") :]
    assert task["cost"] in row.split("</tr>")[0]
    assert f'id="usage-total-cost">{task["cost"]}<' in summary
    records = section(html, "usage-records")
    assert f'href="/dashboard/tasks/{task["id"]}"' in records


def test_a_range_without_today_shows_no_usage(dash: Dashboard, task: dict[str, Any]) -> None:
    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    page = dash.get("/dashboard/usage", start="2020-01-01", end=yesterday)
    assert page.status_code == 200
    assert 'id="usage-none"' in page.text and 'id="usage-summary"' not in page.text
    assert task["id"] not in page.text


def test_filters_narrow_the_usage_to_a_model_and_a_key(
    server: ServerProcess, dash: Dashboard, task: dict[str, Any]
) -> None:
    assert server.key
    by_key = dash.get("/dashboard/usage", api_key=server.key)  # the whole key, or its prefix
    assert by_key.status_code == 200 and task["id"] in by_key.text
    assert server.key not in by_key.text  # the key's prefix is selected, not the key
    assert f'<option value="{key_prefix(server.key)}" selected>' in by_key.text
    other_model = dash.get("/dashboard/usage", model="veo3.1")
    assert other_model.status_code == 200 and task["id"] not in other_model.text
    assert 'id="usage-none"' in other_model.text
    same_model = dash.get("/dashboard/usage", model="nanobanana")
    assert task["id"] in same_model.text


def test_another_accounts_key_is_not_found(server: ServerProcess, dash: Dashboard) -> None:
    other = server.new_account("usage-other@example.com")
    page = dash.get("/dashboard/usage", api_key=other)
    assert page.status_code == 404 and "API key not found" in page.text


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"start": "2026-05-09", "end": "2026-05-08"}, "start must be on or before end"),
        ({"start": "9 May"}, "start must be a date as YYYY-MM-DD"),
        ({"page": "0"}, "page must be a whole number"),
    ],
)
def test_a_bad_range_is_a_400_page_saying_what_to_fix(
    dash: Dashboard, params: dict[str, str], message: str
) -> None:
    for path in ("/dashboard/usage", "/dashboard/usage.csv"):
        if path.endswith(".csv") and "page" in params:
            continue
        page = dash.get(path, **params)
        assert page.status_code == 400, (path, page.text)
        assert "text/html" in page.headers["content-type"]
        assert message in page.text


def test_the_csv_export_has_every_record_with_its_cost_in_dollars(
    dash: Dashboard, task: dict[str, Any]
) -> None:
    start = (datetime.now(UTC).date() - timedelta(days=6)).isoformat()
    response = dash.get("/dashboard/usage.csv", start=start, end=today())
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    disposition = response.headers["content-disposition"]
    assert disposition == f'attachment; filename="hatchery-usage-{start}-{today()}.csv"'
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert list(rows[0]) == list(CSV_COLUMNS)
    row = next(r for r in rows if r["task_id"] == task["id"])
    assert row["cost"] == format_webhook_cost(parse_dollars(task["cost"]))  # e.g. 0.039000
    assert (row["model"], row["type"], row["units"], row["unit"]) == (
        "nanobanana",
        "image_generate",
        "1",
        "image",
    )
    assert row["created_at"].startswith(today()) and row["created_at"].endswith("Z")


def test_a_range_to_the_last_day_a_date_can_name_is_every_record_since_its_start(
    server: ServerProcess, dash: Dashboard, task: dict[str, Any]
) -> None:
    """9999-12-31 has no day after it: the range is open-ended, not a fault."""
    page = dash.get("/dashboard/usage", start=today(), end="9999-12-31")
    assert page.status_code == 200 and task["id"] in page.text
    export = dash.get("/dashboard/usage.csv", start=today(), end="9999-12-31")
    assert export.status_code == 200 and task["id"] in export.text
    with server.client() as api:  # the API reads the same range the same way
        listed = api.get("/v1/usage", params={"start_date": today(), "end_date": "9999-12-31"})
        assert listed.status_code == 200


def test_the_csv_export_of_a_range_without_usage_is_its_header(dash: Dashboard) -> None:
    response = dash.get("/dashboard/usage.csv", start="2020-01-01", end="2020-01-31")
    assert response.status_code == 200
    assert response.text == ",".join(CSV_COLUMNS) + "\r\n"


def test_a_cell_a_spreadsheet_would_run_is_neutralised_in_the_export(
    server: ServerProcess,
) -> None:
    dash = new_signed_in_account(server, "usage-csv@example.com")
    try:
        submitted = dash.api("POST", "/v1/generate", json={"model": "nanobanana", "prompt": "x"})
        assert submitted.status_code == 202, submitted.text
        done = wait_for_task(dash.http, submitted.json()["data"]["id"])
        assert done["status"] == "completed"
        formula = '=HYPERLINK("http://evil.example","click")'
        server.query(
            "UPDATE usage_records SET model = :model WHERE task_id = :id",
            model=formula,
            id=done["id"],
        )
        response = dash.get("/dashboard/usage.csv")
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert [r["model"] for r in rows] == ["'" + formula]
    finally:
        dash.close()


def test_the_export_needs_a_session(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url) as anonymous:
        response = anonymous.get("/dashboard/usage.csv")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/dashboard/sign-in?next=")


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("nanobanana", "nanobanana"),
        ("a=b", "a=b"),
        (3, "3"),
        (None, ""),
    ],
)
def test_csv_cells_that_start_like_a_formula_get_a_quote(
    value: str | int | None, cell: str
) -> None:
    assert csv_cell(value) == cell


def test_the_overview_charts_todays_spend_per_model(dash: Dashboard, task: dict[str, Any]) -> None:
    page = dash.get("/dashboard")
    assert page.status_code == 200
    html = page.text
    start = html.index('<svg class="chart" id="spend-chart"')
    svg = html[start : html.index("</svg>", start)]
    assert 'role="img"' in svg and 'aria-labelledby="spend-caption"' in svg
    day = svg[svg.index(f'data-day="{today()}"') :].split("</g>")[0]
    bar = re.search(r'<rect [^>]*fill="(#[0-9a-f]{6})" data-model="nanobanana"', day)
    assert bar, day
    assert f"<title>{today()}: nanobanana " in day
    legend = section(html, "spend-legend")
    assert f'fill="{bar.group(1)}"' in legend and "nanobanana" in legend
    assert 'id="spend-total"' in html and "style=" not in html
    recent = section(html, "recent")
    assert task["id"] in recent and ">Generation<" in recent


def test_tool_executions_show_as_such_with_their_usage(
    dash: Dashboard, task: dict[str, Any], execution: dict[str, Any]
) -> None:
    run = execution["toolExecutionId"]
    recent = section(dash.get("/dashboard").text, "recent")
    row = recent[recent.index(run) :].split("</tr>")[0]
    assert ">Tool execution<" in row and "generate-image" in row
    usage = dash.get("/dashboard/usage", model="generate-image").text
    summary = section(usage, "usage-summary")
    assert ">generate-image<" in summary and execution["cost"] in summary
    records = section(usage, "usage-records")
    assert f'href="/dashboard/tasks/{run}"' in records and task["id"] not in records


async def test_the_exports_batches_read_every_record_once_newest_first(db: Database) -> None:
    """``store.usage.batch``, as the export reads it: each batch older than the last one's end."""
    start = datetime(2026, 5, 1, 12, tzinfo=UTC)
    async with db.write() as conn:
        account = await accounts.create(conn, "batches@example.com", 0)
        for i in range(7):
            await conn.execute(
                usage_records.insert().values(
                    id=f"usage_{i}", account_id=account.id, task_id=f"gen_{i}",
                    model="nanobanana", type="image_generate", api_key=None, units=1,
                    unit="image", unit_price_micros=10_000, cost_micros=10_000,
                    resolution="1k", created_at=start + timedelta(days=i),
                )
            )  # fmt: skip
    where = usage.UsageFilter(start=date(2026, 5, 2), end=date(2026, 5, 6))
    read: list[str] = []
    before: int | None = None
    async with db.read() as conn:
        while True:
            found = await usage.batch(conn, account.id, where, before=before, limit=2)
            read += [record.task_id for _, record in found]
            if len(found) < 2:
                break
            before = found[-1][0]
    assert read == ["gen_5", "gen_4", "gen_3", "gen_2", "gen_1"]
