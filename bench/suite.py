"""The request path and the task lifecycle, each set against a bare floor measured in the same run.

    make bench                  # or: .venv/bin/python -m bench.suite [--quick] [--backends sqlite]

Everything runs on 127.0.0.1. The floors are a bare FastAPI and a bare Starlette JSON endpoint
(``bench/floors.py``) under the same uvicorn settings as ``hatchery serve``. Then, on SQLite and
on PostgreSQL (a server started from the machine's binaries, fsync on), each scenario gets a
fresh database and a ``hatchery serve`` process:

- submit: ``POST /v1/generate`` (auth, validation, reservation, durable commit), at saturation
  and at a fixed rate (``--rate``, 1,000/s; the floors at the same rate); no workers run, so the
  server's CPU is the request path's alone;
- poll: ``GET /v1/tasks/{id}`` over the submitted tasks, the same two ways;
- the same two on a second server and fresh database with the rate limiter running, its limits
  (per key and per IP) set so high that it refuses nothing (``LIMITER_ON``): what counting every
  request costs, as the ratio of limiter on to limiter off. Both servers and a FastAPI floor run
  side by side, and their saturated runs take turns (floor, off, on, on, off, floor, half the
  duration each), so that a drift in a shared machine's load weighs on all three alike; the
  targets' ratios to the floor are to this floor, measured beside each backend;
- scrape: submit and poll the same way on two more servers side by side, each on a fresh
  database, alike except that a thread of this process GETs ``/metrics`` on one of them every
  ``SCRAPE_EVERY_S`` (1 s; Prometheus's usual interval is 15 s) from before the first run to after
  the last: what being scraped costs the request path, as the ratio of scraped to unscraped
  (saturated in turns: unscraped, scraped, scraped, unscraped); and the scrapes' own count,
  duration and size;
- lifecycle: submits at a fixed rate with workers on (``local``, one 16:9 1k image), each with a
  webhook to a receiver in this process: submit → processing (``started_at - created_at``),
  → completed, → webhook received;
- list: ``GET /v1/tasks`` with ``--list-tasks`` tasks in one account: page 1, a deep page by
  ``page=`` and the same depth by ``cursor``;
- usage: ``GET /v1/usage/summary`` with ``--usage-records`` usage records in one account (a year
  of them): over everything, over 30 days, for one key; and ``GET /v1/usage`` page 1;
- profile: the submit path, then the poll path, sampled by py-spy while saturated (limiter
  off); the largest costs.

Load comes from ``bench/loadgen.py`` in its own process. Each run is bounded in time; CPU per
request is the server process's (``/proc``) over the measured window. ``--only usage`` (or any of
requests, scrape, lifecycle, list, usage, comma-separated) runs only those scenarios, and only the
floors they are set against: the saturated and paced ones for requests, a ``GET`` one request at
a time for list and usage, none for scrape.
A paced run stops waiting ``DRAIN_S`` after its last request was due: a server that cannot keep
up with the rate leaves requests unanswered, counted as unfinished (their latency so far is in
the percentiles, which are then lower bounds). Writes ``bench/results/bench.json`` and
``bench.md``; the report ends with the targets of issue 16, met or missed in this run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench import lifecycle, listing, profile, usage
from bench.common import (
    RESULTS,
    Proc,
    Stack,
    free_port,
    load,
    make_stack,
    one_at_a_time,
    postgres,
    request,
    summary,
    wait_http,
)
from bench.report import markdown


@dataclass(frozen=True)
class Plan:
    duration: float
    warmup: float
    rate: float
    connections: int
    list_tasks: int
    usage_records: int
    lifecycle_rate: float
    lifecycle_seconds: float
    profile_seconds: float


QUICK = {
    "duration": 4.0,
    "warmup": 1.0,
    "list_tasks": 100_000,
    "usage_records": 100_000,
    "lifecycle_seconds": 5.0,
}
SCENARIOS = ("requests", "scrape", "lifecycle", "list", "usage")
FLOORED = {"requests", "list", "usage"}  # the scenarios set against the floors
# The rate limiter running but refusing nothing: both limits far above what the bench can send
# (a minute at 100,000 requests/s is 6,000,000).
LIMIT = "10000000/minute"
LIMITER_ON = {"HATCHERY_RATE_LIMIT": LIMIT, "HATCHERY_RATE_LIMIT_IP": LIMIT}
DRAIN_S = 2.0  # how long a paced run waits for answers after its last request was due
# The smallest output of the local provider: one 16:9 1k image (1024 x 576).
SUBMIT_BODY = {"model": "nanobanana", "prompt": "a lighthouse at dusk"}
# How often the scrape scenario reads /metrics: Prometheus's usual interval is 15 s, so 1 s is 15
# times harsher; and how long a scrape may take (Prometheus's default timeout).
SCRAPE_EVERY_S = 1.0
SCRAPE_TIMEOUT_S = 10.0


def saturate_and_pace(
    plan: Plan, port: int, pid: int, requests: list[dict[str, Any]]
) -> dict[str, Any]:
    """Throughput at saturation (closed loop), then latency at ``plan.rate`` (open loop)."""
    base = {"port": port, "pid": pid, "requests": requests, "warmup": plan.warmup}
    closed = {"mode": "closed", "connections": plan.connections, "duration": plan.duration}
    return {"saturation": checked(load(base | closed)), "at_rate": paced(plan, port, pid, requests)}


def paced(plan: Plan, port: int, pid: int, requests: list[dict[str, Any]]) -> dict[str, Any]:
    """Latency at ``plan.rate`` (open loop), giving up ``DRAIN_S`` after the last request."""
    spec = {"port": port, "pid": pid, "requests": requests, "warmup": plan.warmup}
    spec |= {"mode": "open", "rate": plan.rate, "connections": 64, "duration": plan.duration}
    return checked(load(spec | {"drain": DRAIN_S}))


def checked(run: dict[str, Any]) -> dict[str, Any]:
    """A run whose answers were not (nearly all) successes measured something else: stop."""
    failed = run["errors"] + sum(n for code, n in run["status"].items() if code[0] != "2")
    if failed > run["requests"] / 100:
        raise RuntimeError(f"{failed} of {run['requests']} requests failed: {run['status']}")
    return run


# The floor's request a scenario is set against.
FLOOR_REQUESTS = {
    "submit": [request("POST", "/floor", None, SUBMIT_BODY)],
    "poll": [request("GET", "/floor")],
}


@contextmanager
def floor_server(name: str) -> Iterator[tuple[int, Proc]]:
    """A floor (``bench/floors.py``) up and answering: its port and process."""
    port = free_port()
    proc = Proc([sys.executable, "-m", "bench.floors", name, "--port", str(port)], {**os.environ})
    try:
        wait_http(f"http://127.0.0.1:{port}/floor")
        yield port, proc
    finally:
        proc.stop()


def floors(plan: Plan, scenarios: list[str]) -> dict[str, Any]:
    """The floors the scenarios are set against: saturated and paced (submit and poll), and a
    ``GET`` one request at a time (list and usage); none if no scenario is set against them."""
    found: dict[str, Any] = {}
    for name in ("fastapi", "starlette") if FLOORED.intersection(scenarios) else ():
        found[name] = {}
        with floor_server(name) as (port, proc):
            if "requests" in scenarios:
                for scenario, kind in (("submit", "post"), ("poll", "get")):
                    requests = FLOOR_REQUESTS[scenario]
                    found[name][kind] = saturate_and_pace(plan, port, proc.pid, requests)
            if "list" in scenarios or "usage" in scenarios:
                spec = one_at_a_time(port, proc.pid, "/floor", None, plan.duration)
                found[name]["get_one"] = checked(load(spec))
    return found


def task_ids(stack: Stack, count: int) -> list[str]:
    """Up to ``count`` of the account's task ids, walked by cursor."""
    ids: list[str] = []
    params: dict[str, Any] = {"per_page": 100}
    with httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {stack.key}"}) as c:
        while len(ids) < count:
            data = c.get("/v1/tasks", params=params).json()["data"]
            ids += [t["id"] for t in data["items"]]
            if not data["pagination"]["cursor"]:
                break
            params = {"per_page": 100, "cursor": data["pagination"]["cursor"]}
    return ids[:count]


def limiter_state(stack: Stack, limited: bool) -> dict[str, Any]:
    """Check that the server limits as meant: with the limiter on, a submit reports its limit
    in the rate limit headers; with it off, no headers. The headers of that answer."""
    headers = {"Authorization": f"Bearer {stack.key}"}
    answer = httpx.post(f"{stack.url}/v1/generate", json=SUBMIT_BODY, headers=headers)
    if answer.status_code != 202:
        raise RuntimeError(f"a submit was answered {answer.status_code}: {answer.text[:300]}")
    found = {k: v for k, v in answer.headers.items() if k.lower().startswith("ratelimit-")}
    if limited != bool(found):
        state = "on" if limited else "off"
        raise RuntimeError(f"the rate limiter should be {state}; a submit's headers: {found}")
    return found


def refused_nothing(pair: dict[str, Any]) -> dict[str, Any]:
    """With limits this high, a 429 means the limiter counted something other than meant."""
    for run in pair.values():
        if run["status"].get("429"):
            raise RuntimeError(f"the rate limiter refused {run['status']['429']} requests")
    return pair


def merged(segments: list[dict[str, Any]]) -> dict[str, Any]:
    """One saturated run from several segments of it: requests, time and CPU summed. Latency
    percentiles do not add up, so only each segment's are kept (``segments``)."""
    requests = sum(r["requests"] for r in segments)
    elapsed = sum(r["elapsed_s"] for r in segments)
    cpu = sum(r["server_cpu_s"] or 0 for r in segments)
    status: dict[str, int] = {}
    for run in segments:
        for code, n in run["status"].items():
            status[code] = status.get(code, 0) + n
    return {
        "mode": "closed",
        "requests": requests,
        "errors": sum(r["errors"] for r in segments),
        "status": status,
        "elapsed_s": round(elapsed, 3),
        "throughput_rps": round(requests / elapsed, 1) if elapsed else None,
        "server_cpu_s": round(cpu, 3),
        "server_cpu_us_per_request": round(cpu / requests * 1e6, 1) if requests else None,
        "segments": segments,
    }


Side = tuple[int, int, list[dict[str, Any]]]  # port, pid, requests


def interleaved(plan: Plan, sides: dict[str, Side]) -> dict[str, dict[str, Any]]:
    """Each side saturated in turns, A B C C B A, for ``plan.duration`` in all: a drift in the
    machine's load (it is shared) then weighs on all of them alike."""
    order = [*sides, *reversed(sides)]
    segments: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    for side in order:
        port, pid, requests = sides[side]
        spec = {"port": port, "pid": pid, "requests": requests, "mode": "closed"}
        spec |= {"connections": plan.connections, "warmup": plan.warmup / 2}
        segments[side].append(checked(load(spec | {"duration": plan.duration / 2})))
    return {side: merged(runs) for side, runs in segments.items()}


def side_by_side(
    plan: Plan, stacks: dict[str, Stack], pids: dict[str, int], floor: tuple[int, int] | None
) -> dict[str, dict[str, Any]]:
    """Submit, then poll, on servers kept up side by side (``pids``, by the name of their stack):
    saturated in turns (``interleaved``; with the floor at ``floor``, port and pid, first and
    last), then paced one after the other. Per side and scenario, the saturated and the paced
    run; the floor's saturated runs under ``"floor"`` (empty without a floor)."""
    out: dict[str, dict[str, Any]] = {side: {} for side in [*stacks, "floor"]}
    for scenario, requests_of in (("submit", submits), ("poll", polls)):
        requests = {side: requests_of(s) for side, s in stacks.items()}
        sides = {} if floor is None else {"floor": (*floor, FLOOR_REQUESTS[scenario])}
        sides |= {side: (s.port, pids[side], requests[side]) for side, s in stacks.items()}
        saturated = interleaved(plan, sides)
        for side, stack in stacks.items():
            at_rate = paced(plan, stack.port, pids[side], requests[side])
            out[side][scenario] = {"saturation": saturated[side], "at_rate": at_rate}
        if floor is not None:
            out["floor"][scenario] = saturated["floor"]
    return out


def request_path(plan: Plan, off: Stack, on: Stack) -> dict[str, Any]:
    """Submit and poll on two API processes without workers, each on its own fresh database:
    one with the rate limiter off, one with it on (``LIMITER_ON``). Saturated in turns with the
    FastAPI floor, then paced one after the other; then profiles of both paths, limiter off,
    the others stopped."""
    stacks = {"off": off, "on": on}
    with off.server(HATCHERY_WORKERS="0") as off_proc:
        with (
            on.server(HATCHERY_WORKERS="0", **LIMITER_ON) as on_proc,
            floor_server("fastapi") as (floor_port, floor_proc),
        ):
            pids = {"off": off_proc.pid, "on": on_proc.pid}
            limits = {side: limiter_state(s, side == "on") for side, s in stacks.items()}
            runs = side_by_side(plan, stacks, pids, (floor_port, floor_proc.pid))
        out = {side: {"limiter": limits[side]} for side in stacks}
        for side in stacks:
            out[side] |= {name: refused_nothing(pair) for name, pair in runs[side].items()}
        if plan.profile_seconds:
            out["off"]["profile"] = sampled(plan, off, off_proc.pid, submits(off))
            out["off"]["poll_profile"] = sampled(plan, off, off_proc.pid, polls(off))
    return out["off"] | {"limiter_on": out["on"], "floor_beside": runs["floor"]}


def submits(stack: Stack) -> list[dict[str, Any]]:
    """The submit of ``SUBMIT_BODY`` with the stack's key."""
    return [request("POST", "/v1/generate", stack.key, SUBMIT_BODY)]


def polls(stack: Stack) -> list[dict[str, Any]]:
    """Polls of 1,000 of the stack's tasks, round-robin."""
    return [request("GET", f"/v1/tasks/{i}", stack.key) for i in task_ids(stack, 1000)]


def sampled(plan: Plan, stack: Stack, pid: int, requests: list[dict[str, Any]]) -> Any:
    """A py-spy profile of the server while ``requests`` saturate it."""
    spec = {
        "port": stack.port,
        "requests": requests,
        "mode": "closed",
        "connections": plan.connections,
        "duration": plan.profile_seconds + 2,
    }
    return profile.sample(pid, plan.profile_seconds, lambda: load(spec))


class Scraper:
    """A Prometheus server's scrapes, from a thread of this process (the load generator has its
    own): ``GET url`` every ``every`` s on a fixed schedule, one at a time, each given
    ``SCRAPE_TIMEOUT_S``. A scrape that overruns the interval is followed at once by the next,
    the ticks missed meanwhile dropped (no burst), as Prometheus does."""

    def __init__(self, url: str, every: float) -> None:
        self.url, self.every = url, every
        self.scrapes: list[tuple[float, int, int]] = []  # ms, status (0: no answer), bytes
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Scraper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with httpx.Client(timeout=SCRAPE_TIMEOUT_S) as client:
            due = time.monotonic()
            while not self._stop.wait(max(0.0, due - time.monotonic())):
                self.scrapes.append(self._scrape(client))
                due = max(due + self.every, time.monotonic())

    def _scrape(self, client: httpx.Client) -> tuple[float, int, int]:
        started = time.perf_counter()
        try:
            answer = client.get(self.url)
        except httpx.HTTPError:
            return (time.perf_counter() - started) * 1000, 0, 0
        return (time.perf_counter() - started) * 1000, answer.status_code, len(answer.content)

    def report(self) -> dict[str, Any]:
        """How many scrapes, their duration (ms) and the exposition's size; stop if any failed
        (a scrape that times out or is refused measured something else)."""
        failed = [status for _, status, _ in self.scrapes if status != 200]
        if failed or not self.scrapes:
            raise RuntimeError(f"{len(failed)} of {len(self.scrapes)} scrapes failed: {failed}")
        sizes = [size for _, _, size in self.scrapes]
        return {
            "every_s": self.every,
            "scrapes": len(self.scrapes),
            "duration_ms": summary([ms for ms, _, _ in self.scrapes]),
            "bytes": {"first": sizes[0], "last": sizes[-1], "max": max(sizes)},
        }


def metrics_state(stack: Stack) -> None:
    """Check that the server answers a scrape, with its request metrics in it."""
    answer = httpx.get(f"{stack.url}/metrics", timeout=SCRAPE_TIMEOUT_S)
    if answer.status_code != 200 or "hatchery_http_requests_total" not in answer.text:
        raise RuntimeError(f"a scrape was answered {answer.status_code}: {answer.text[:300]}")


def scraping(plan: Plan, unscraped: Stack, scraped: Stack) -> dict[str, Any]:
    """Submit and poll on two API processes alike (no workers, limiter off), each on its own
    fresh database, in turns (``side_by_side``); one of them scraped every ``SCRAPE_EVERY_S``
    from before the first run to after the last, the other never."""
    stacks = {"unscraped": unscraped, "scraped": scraped}
    with (
        unscraped.server(HATCHERY_WORKERS="0") as unscraped_proc,
        scraped.server(HATCHERY_WORKERS="0") as scraped_proc,
    ):
        pids = {"unscraped": unscraped_proc.pid, "scraped": scraped_proc.pid}
        metrics_state(scraped)
        with Scraper(f"{scraped.url}/metrics", SCRAPE_EVERY_S) as scraper:
            runs = side_by_side(plan, stacks, pids, None)
    return {side: runs[side] for side in stacks} | {"scrapes": scraper.report()}


Fresh = Callable[[str], str]


def checked_load(spec: dict[str, Any]) -> dict[str, Any]:
    return checked(load(spec))


def backend(plan: Plan, name: str, fresh: Fresh, scenarios: list[str]) -> dict[str, Any]:
    """The scenarios on one database kind; ``fresh(label)`` gives a new database's URL."""
    result: dict[str, Any] = {}
    if "requests" in scenarios:
        print(f"[bench] {name}: submit and poll, rate limiter off and on", flush=True)
        off, on = make_stack(fresh("requests")), make_stack(fresh("limited"))
        result |= request_path(plan, off, on)
    if "scrape" in scenarios:
        print(
            f"[bench] {name}: submit and poll, scraped every {SCRAPE_EVERY_S:g} s and not",
            flush=True,
        )
        unscraped, scraped = make_stack(fresh("unscraped")), make_stack(fresh("scraped"))
        result["scrape"] = scraping(plan, unscraped, scraped)
    if "lifecycle" in scenarios:
        print(f"[bench] {name}: lifecycle", flush=True)
        result["lifecycle"] = lifecycle.run(
            make_stack(fresh("lifecycle"), HATCHERY_ALLOW_PRIVATE_URLS="true"),
            rate=plan.lifecycle_rate,
            seconds=plan.lifecycle_seconds,
            body=SUBMIT_BODY,
            load=load,
        )
    if "list" in scenarios:
        print(f"[bench] {name}: list with {plan.list_tasks:,} tasks", flush=True)
        stack = make_stack(fresh("list"))
        result["list"] = listing.run(stack, plan.list_tasks, plan.duration, checked_load)
    if "usage" in scenarios:
        print(f"[bench] {name}: usage with {plan.usage_records:,} records", flush=True)
        stack = make_stack(fresh("usage"))
        result["usage"] = usage.run(stack, plan.usage_records, plan.duration, checked_load)
        print(f"[bench] {name}: usage seeded in {result['usage']['seeded_in_s']} s", flush=True)
    return result


@contextmanager
def databases(name: str) -> Iterator[Fresh]:
    """New databases of one kind: SQLite files (an empty URL: the stack's own), or databases on
    one PostgreSQL server started for the run."""
    if name == "sqlite":
        yield lambda label: ""
        return
    with postgres() as server:
        yield server.create_database  # type: ignore[attr-defined]


def machine() -> dict[str, Any]:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {
        "cpus": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "date": time.strftime("%Y-%m-%d"),
    }


def plan_of(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Plan:
    """The plan the flags give; ``--quick`` shortens only what was left at its default."""
    values = {name: getattr(args, name) for name in Plan.__dataclass_fields__}
    if args.quick:
        values |= {k: v for k, v in QUICK.items() if values[k] == parser.get_default(k)}
    return Plan(**values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per run")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rate", type=float, default=1000.0, help="requests/s of paced runs")
    parser.add_argument("--connections", type=int, default=32, help="of saturation runs")
    parser.add_argument("--list-tasks", type=int, default=1_000_000)
    parser.add_argument("--usage-records", type=int, default=1_000_000)
    parser.add_argument("--lifecycle-rate", type=float, default=20.0)
    parser.add_argument("--lifecycle-seconds", type=float, default=10.0)
    parser.add_argument("--profile-seconds", type=float, default=8.0, help="0: no profile")
    parser.add_argument(
        "--quick", action="store_true", help="short runs, 100,000 listed tasks and usage records"
    )
    parser.add_argument(
        "--only",
        default=",".join(SCENARIOS),
        help=f"scenarios to run, comma-separated, of: {', '.join(SCENARIOS)} (default: all)",
    )
    args = parser.parse_args()
    scenarios = [s for s in args.only.split(",") if s]
    unknown = sorted(set(scenarios) - set(SCENARIOS))
    if unknown or not scenarios:
        parser.error(f"--only takes some of {', '.join(SCENARIOS)} (got {args.only!r})")
    plan = plan_of(args, parser)
    if FLOORED.intersection(scenarios):
        print("[bench] floors", flush=True)
    results: dict[str, Any] = {"machine": machine(), "plan": plan.__dict__}
    results |= {"scenarios": scenarios, "drain_s": DRAIN_S, "scrape_every_s": SCRAPE_EVERY_S}
    results |= {"floors": floors(plan, scenarios), "backends": {}}
    for name in args.backends.split(","):
        with databases(name) as fresh:
            results["backends"][name] = backend(plan, name, fresh, scenarios)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "bench.json").write_text(json.dumps(results, indent=2) + "\n")
    report = markdown(results)
    (RESULTS / "bench.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
