"""The operator's console across processes, on PostgreSQL: two API processes (``serve`` with no
workers) and two ``hatchery worker`` processes share one database, with fal and Replicate (strict
fakes) both configured for nanobanana, fal first. While tasks flow in through both APIs, an admin
puts Replicate first through one API's ``PATCH /admin/v1/routes/model/nanobanana``: every process
takes the change without a restart (the database's notification: the periodic re-read is set
longer than the test waits), the next tasks are made by Replicate, none is lost or fails, and the
audit log has the change with its before and after. A non-admin key is refused (403) on every
route of the admin API, and the admin's credits and debits reconcile with the ledger to the
micro-dollar."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from hatchery.api.admin import router as admin_router
from tests.fake_upstreams import FAL_KEY, REPLICATE_TOKEN, FakeFal, FakeReplicate
from tests.helpers import ServerProcess, create_account

pytestmark = [pytest.mark.slow, pytest.mark.postgresql_only, pytest.mark.usefixtures("fresh_fakes")]

MODEL = "nanobanana"
PRICE = 10_000  # one 1k image
FIRST, SECOND = "fal", "replicate"
CATALOG = f"""
[models.{MODEL}]
type = "image"
price_per_output = "0.0100"
providers = ["{FIRST}", "{SECOND}"]
"""
ADMIN_EMAIL = "ops@example.com"
CUSTOMER_EMAIL = "flow@example.com"
START_BALANCE = 50_000_000
BEFORE = 15  # tasks completed by fal before the change
AFTER = 20  # tasks submitted once every process runs by the new order
WAIT = 30.0  # the longest the test waits for anything to happen (the re-read is every 120 s)


@dataclass(frozen=True)
class Submitted:
    id: str
    prompt: str
    sent: float  # time.monotonic() before the request went


class Flow:
    """A steady flow of nanobanana tasks: one thread per API process, each submitting every
    ``pause`` seconds until stopped."""

    def __init__(self, apis: list[ServerProcess], key: str, pause: float = 0.1) -> None:
        self.apis, self.key, self.pause = apis, key, pause
        self.submitted: list[Submitted] = []
        self.refused: list[str] = []
        self.stop = threading.Event()
        self._numbers = itertools.count()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(a,)) for a in apis]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def join(self) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in self._threads)

    def sent_after(self, moment: float) -> list[Submitted]:
        with self._lock:
            return [s for s in self.submitted if s.sent > moment]

    def _run(self, api: ServerProcess) -> None:
        with api.client(key=self.key) as client:
            while not self.stop.is_set():
                with self._lock:
                    prompt = f"flow {next(self._numbers)}"
                sent = time.monotonic()
                response = client.post("/v1/generate", json={"model": MODEL, "prompt": prompt})
                with self._lock:
                    if response.status_code == 202:
                        task_id = str(response.json()["data"]["id"])
                        self.submitted.append(Submitted(task_id, prompt, sent))
                    else:
                        self.refused.append(f"{response.status_code} {response.text}")
                self.stop.wait(self.pause)


def wait_until(what: str, check: Callable[[], Any], timeout: float = WAIT) -> Any:
    """Poll ``check`` until it answers something true; that answer."""
    deadline = time.monotonic() + timeout
    while True:
        answer = check()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"not after {timeout}s: {what}")
        time.sleep(0.1)


def data(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] is None
    return body["data"]


def running(api: ServerProcess, key: str) -> list[str]:
    with api.client(key=key) as client:
        return list(data(client.get(f"/admin/v1/routes/model/{MODEL}"))["running"])


def providers_by_task(url_of: ServerProcess) -> dict[str, tuple[str, str, str]]:
    """Each task: (status, the provider that made it, the worker whose attempt completed it)."""
    rows = url_of.query(
        "SELECT t.id, t.status, t.usage->>'provider', a.worker FROM tasks t "
        "LEFT JOIN task_attempts a ON a.task_id = t.id AND a.outcome = 'completed'"
    )
    return {task: (status, provider, worker) for task, status, provider, worker in rows}


def micros(cost: str) -> int:
    return int(Decimal(cost.removeprefix("$")) * 1_000_000)


def test_a_route_change_reaches_every_process_while_tasks_flow_and_the_console_holds(
    new_database: Callable[[], tuple[str | None, str | None]],
    fal: FakeFal,
    replicate: FakeReplicate,
    tmp_path: Path,
) -> None:
    url, _ = new_database()
    assert url is not None
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(CATALOG)
    settings = {
        "HATCHERY_CATALOG": str(catalog),
        "HATCHERY_FAL_KEY": FAL_KEY,
        "HATCHERY_FAL_BASE_URL": fal.base,
        "HATCHERY_REPLICATE_API_TOKEN": REPLICATE_TOKEN,
        "HATCHERY_REPLICATE_BASE_URL": replicate.base_url,
        "HATCHERY_UPSTREAM_POLL_MAX": "0.2",
        # Longer than any wait below: a process that learns of the change in time learns of
        # it by the database's notification.
        "HATCHERY_ROUTES_REFRESH": "120",
        "HATCHERY_HEARTBEAT_INTERVAL": "1",
    }
    apis = [
        ServerProcess(tmp_path / f"api{i}", {**settings, "HATCHERY_WORKERS": "0"}, database_url=url)
        for i in range(2)
    ]
    workers = [
        ServerProcess(
            tmp_path / f"worker{i}",
            dict(settings),
            database_url=url,
            command=("worker", "--concurrency", "4"),
        )
        for i in range(2)
    ]
    # The admin, made from the CLI; the customer whose tasks flow, and whose key is not an admin's.
    apis[0].cli("users", "create", ADMIN_EMAIL, "--balance", "0")
    assert "is an admin" in apis[0].cli("users", "grant-admin", ADMIN_EMAIL).stdout
    admin_key = apis[0].cli("keys", "create", ADMIN_EMAIL).stdout.strip().splitlines()[-1]
    assert admin_key.startswith("hk_")
    customer_key = create_account(url, CUSTOMER_EMAIL, "50.00")
    flow = Flow(apis, customer_key)
    admin = [api.client(key=admin_key) for api in apis]
    try:
        for proc in apis:
            proc.start()
        for proc in workers:
            proc.start(wait=False)
        started = wait_until("both workers beat", lambda: live_workers(admin[0], 2))
        assert [running(api, admin_key) for api in apis] == [[FIRST, SECOND]] * 2

        flow.start()
        wait_until(f"{BEFORE} tasks completed", lambda: completed(apis[0]) >= BEFORE)
        done_before = {
            task
            for task, (status, _, _) in providers_by_task(apis[0]).items()
            if status == "completed"
        }
        reorder = {
            "providers": [{"name": SECOND, "enabled": True}, {"name": FIRST, "enabled": True}],
            "reason": "fal is slow today",
        }
        changed = data(admin[0].patch(f"/admin/v1/routes/model/{MODEL}", json=reorder))
        assert [p["name"] for p in changed["providers"]] == [SECOND, FIRST]
        assert changed["source"] == "admin" and changed["updated_by"] == ADMIN_EMAIL
        for api in apis:  # each API process runs by it (the other learns by notification)
            wait_until(
                f"{api.url} runs {SECOND} first",
                partial(lambda one: running(one, admin_key) == [SECOND, FIRST], api),
            )
        # A worker's route shows in what it does: with both vendors healthy, it asks Replicate
        # first only once it runs by the new order. Wait until each worker has.
        wait_until(
            f"each worker completed a task by {SECOND}",
            lambda: (
                {w for _, p, w in providers_by_task(apis[0]).values() if p == SECOND}
                >= set(started)
            ),
        )
        marker = time.monotonic()
        wait_until(
            f"{AFTER} tasks submitted after the change took",
            lambda: len(flow.sent_after(marker)) >= AFTER,
        )
        flow.join()
        assert flow.refused == []
        submitted = {s.id: s for s in flow.submitted}
        wait_until("every task ended", lambda: not unfinished(apis[0]), timeout=60)
        # What the customer sees, through both APIs.
        with apis[0].client(key=customer_key) as one, apis[1].client(key=customer_key) as two:
            statuses = Counter(
                data((one, two)[i % 2].get(f"/v1/tasks/{task}"))["status"]
                for i, task in enumerate(submitted)
            )
            usage = usage_records(one)
        # No process was restarted: each still runs, and the workers are the ones that started.
        assert all(proc.proc and proc.proc.poll() is None for proc in apis + workers)
        assert workers_listed(admin[1]) == started  # the same two, never started again

        audit = data(admin[1].get("/admin/v1/audit", params={"target": f"model:{MODEL}"}))["items"]
        forbidden = refusals(apis[1], customer_key, admin_key)
        money = reconcile(admin[1], usage)
    finally:
        flow.stop.set()
        for client in admin:
            client.close()
        for proc in workers + apis:
            proc.stop()

    # None lost, none failed, each made once by one vendor at the first try.
    assert statuses == Counter({"completed": len(submitted)})
    made = providers_by_task(apis[0])
    assert set(made) == set(submitted)
    for (raw,) in apis[0].query("SELECT usage->'attempts' FROM tasks"):
        tried = json.loads(raw) if isinstance(raw, str) else raw
        assert [a["outcome"] for a in tried] == ["completed"]
    by = {task: provider for task, (_, provider, _) in made.items()}
    # Before the change fal made them; after it took everywhere, Replicate made every one.
    assert {by[t] for t in done_before} == {FIRST}
    after = flow.sent_after(marker)
    assert len(after) >= AFTER and {by[s.id] for s in after} == {SECOND}
    # The vendors agree: each received exactly the prompts of the tasks said to be theirs,
    # each once.
    prompts: dict[str, Counter[str]] = {FIRST: Counter(), SECOND: Counter()}
    for task, provider in by.items():
        prompts[provider][submitted[task].prompt] += 1
    at_fal = Counter(job.extra["body"]["prompt"] for job in fal.jobs.values())
    at_replicate = Counter(job.extra["input"]["prompt"] for job in replicate.jobs.values())
    assert at_fal == prompts[FIRST] and at_replicate == prompts[SECOND]
    assert len(fal.seen("POST", "fal-ai/nano-banana")) == sum(prompts[FIRST].values())
    assert len(replicate.seen("POST", "/predictions")) == sum(prompts[SECOND].values())

    # The audit log holds the change: who, through which key, what before and after, and why.
    [entry] = [e for e in audit if e["action"] == "route.update"]
    assert (entry["actor"], entry["via"]) == (ADMIN_EMAIL, f"key:{admin_key[:13]}")
    assert entry["reason"] == "fal is slow today"
    assert [p["name"] for p in entry["before"]["providers"]] == [FIRST, SECOND]
    assert [p["name"] for p in entry["after"]["providers"]] == [SECOND, FIRST]

    # A non-admin key: 403 on every admin route, and nothing it asked for happened.
    assert len(forbidden) >= 18
    assert {(m, p): s for m, p, s, _ in forbidden} == {(m, p): 403 for m, p, _, _ in forbidden}
    assert {code for _, _, _, code in forbidden} == {"FORBIDDEN"}

    # The money: every task charged its price once; the admin's credits and debits are ledger
    # entries; the balance is the ledger's sum, to the micro-dollar.
    assert sorted(usage) == sorted(submitted) and set(usage.values()) == {PRICE}
    assert money["charges"] == {task: -PRICE for task in submitted}
    assert money["balance"] == money["ledger_total"]
    assert money["balance"] == (
        START_BALANCE + money["credits"] - money["debits"] - sum(usage.values())
    )
    assert money["reserved"] == 0


def completed(api: ServerProcess) -> int:
    return int(api.query("SELECT count(*) FROM tasks WHERE status = 'completed'")[0][0])


def unfinished(api: ServerProcess) -> int:
    return int(
        api.query("SELECT count(*) FROM tasks WHERE status IN ('pending', 'processing')")[0][0]
    )


def workers_listed(admin: httpx.Client) -> dict[str, str]:
    return {w["id"]: w["started_at"] for w in data(admin.get("/admin/v1/queue"))["workers"]}


def live_workers(admin: httpx.Client, count: int) -> dict[str, str] | None:
    """The worker processes alive in the admin queue view (id: started_at) once there are
    ``count`` of them."""
    view = data(admin.get("/admin/v1/queue"))
    alive = {w["id"]: w["started_at"] for w in view["workers"] if w["alive"]}
    return alive if len(alive) == count else None


def usage_records(client: httpx.Client) -> dict[str, int]:
    """The customer's usage: each task's cost in micro-dollars."""
    costs: dict[str, int] = {}
    page, pages = 1, 1
    while page <= pages:
        found = data(client.get("/v1/usage", params={"page": page, "per_page": 100}))
        for record in found["items"]:
            assert record["task_id"] not in costs
            costs[record["task_id"]] = micros(record["cost"])
        page, pages = page + 1, found["pagination"]["total_pages"]
    return costs


def admin_routes() -> list[tuple[str, str]]:
    """Every route of the admin API, from the app itself: (method, path template)."""
    return sorted(
        (method, route.path)
        for route in admin_router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    )


def refusals(api: ServerProcess, key: str, admin_key: str) -> list[tuple[str, str, int, str]]:
    """Call every admin route with a non-admin's key, with values that would work for an admin;
    (method, path, status, error code) of each. Then check that nothing changed."""
    with api.client(key=admin_key) as admin:
        [account] = data(admin.get("/admin/v1/accounts", params={"query": CUSTOMER_EMAIL}))["items"]
        before = data(admin.get(f"/admin/v1/accounts/{account['id']}"))
        route = data(admin.get(f"/admin/v1/routes/model/{MODEL}"))
        audit_before = data(admin.get("/admin/v1/audit"))["items"]
    values = {"account_id": account["id"], "prefix": key[:13], "kind": "model", "name": MODEL}
    bodies: dict[tuple[str, str], Any] = {
        ("POST", "/admin/v1/accounts"): {"email": "intruder@example.com", "balance_micros": 1},
        ("PATCH", "/admin/v1/accounts/{account_id}"): {"flags": ["no-watermark"]},
        ("POST", "/admin/v1/accounts/{account_id}/balance"): {
            "amount_micros": 1_000_000,
            "reason": "self-service",
        },
        ("PATCH", "/admin/v1/routes/{kind}/{name}"): {
            "providers": [{"name": FIRST, "enabled": True}, {"name": SECOND, "enabled": False}]
        },
    }
    answers = []
    with api.client(key=admin_key) as admin:  # the paths are right: an admin reads each
        for method, path in admin_routes():
            if method == "GET":
                data(admin.get(path.format(**values)))
    with api.client(key=key) as client:
        for method, path in admin_routes():
            response = client.request(
                method, path.format(**values), json=bodies.get((method, path))
            )
            code = response.json()["error"]["code"] if response.status_code >= 400 else ""
            answers.append((method, path, response.status_code, code))
    with api.client(key=admin_key) as admin:
        after = data(admin.get(f"/admin/v1/accounts/{account['id']}"))
        assert {k: after[k] for k in ("status", "role", "flags", "balance_micros")} == {
            k: before[k] for k in ("status", "role", "flags", "balance_micros")
        }
        assert [k["status"] for k in after["keys"]] == ["active"]
        assert data(admin.get(f"/admin/v1/routes/model/{MODEL}"))["revision"] == route["revision"]
        assert data(admin.get("/admin/v1/audit"))["items"] == audit_before
        assert data(admin.get("/admin/v1/accounts", params={"query": "intruder"}))["items"] == []
    return answers


def reconcile(admin: httpx.Client, usage: dict[str, int]) -> dict[str, Any]:
    """Credit and debit the customer through the admin API (amounts down to the micro-dollar);
    the account and its ledger after."""
    [account] = data(admin.get("/admin/v1/accounts", params={"query": CUSTOMER_EMAIL}))["items"]
    target = f"/admin/v1/accounts/{account['id']}"
    credits = debits = 0
    for amount, reason in ((1_234_567, "goodwill"), (-345_679, "correction"), (1, "a micro")):
        answer = data(
            admin.post(f"{target}/balance", json={"amount_micros": amount, "reason": reason})
        )
        entry = answer["entry"]
        assert (entry["kind"], entry["amount_micros"], entry["note"]) == (
            "credit" if amount > 0 else "debit",
            amount,
            reason,
        )
        credits, debits = credits + max(amount, 0), debits + max(-amount, 0)
    detail = data(admin.get(target))
    charges: dict[str, int] = {}
    notes: list[str] = []
    before: str | None = None
    while True:
        params = {"limit": "200", **({"before": before} if before else {})}
        page = data(admin.get(f"{target}/ledger", params=params))
        for entry in page["items"]:
            if entry["kind"] == "charge":
                assert entry["task_id"] not in charges
                charges[entry["task_id"]] = entry["amount_micros"]
            else:
                notes.append(entry["note"])
        before = page["next"]
        if before is None:
            break
    assert sorted(notes) == sorted(["initial balance", "goodwill", "correction", "a micro"])
    assert charges == {task: -cost for task, cost in usage.items()}
    return {
        "balance": detail["balance_micros"],
        "ledger_total": detail["ledger_total_micros"],
        "reserved": detail["reserved_micros"],
        "credits": credits,
        "debits": debits,
        "charges": charges,
    }
