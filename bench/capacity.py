"""Capacity: one worker process keeps thousands of upstream jobs in flight.

Starts on 127.0.0.1 a fake Veo upstream (``bench/fake_veo.py``: every job takes ``--job-seconds``),
an API process (``hatchery serve`` with no workers) and ONE worker process (``hatchery worker``)
with the default worker concurrency, all on a fresh SQLite database (or ``--database-url``).
It submits ``--tasks`` veo3.1 tasks, and while they run samples the worker's resident memory
(``/proc``) and reads the event-loop lag the worker logs every 10 s. The floor, measured in the
same run, is the same worker idle before the first submit.

    .venv/bin/python -m bench.capacity --tasks 5000 --job-seconds 30

With ``--preload`` every task is submitted before the worker starts (a second worker process; the
idle figures come from the first), so that how many jobs the worker keeps in flight does not
depend on how fast the API accepts them.

Writes ``bench/results/capacity.json`` and ``capacity.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import threading
import time
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from bench.common import (
    HATCHERY,
    RESULTS,
    ROOT,
    Proc,
    cpu_seconds,
    free_port,
    make_stack,
    postgres,
    rss_mib,
    wait_http,
)
from hatchery.worker.loopwatch import percentile

LAG = re.compile(
    r"(\d+) task\(s\) in flight \((\d+) waiting on upstreams\); event loop lag "
    r"p50 ([\d.]+) ms, p99 ([\d.]+) ms, max ([\d.]+) ms"
)


async def submit_all(api: str, key: str, count: int) -> list[str]:
    limits = httpx.Limits(max_connections=32)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(
        base_url=api, headers=headers, limits=limits, timeout=60
    ) as client:
        gate = asyncio.Semaphore(32)

        async def one(i: int) -> str:
            async with gate:
                body = {"model": "veo3.1", "prompt": f"capacity {i}", "duration": 4}
                for _ in range(5):  # a kept-alive connection the server closed: send again
                    try:
                        response = await client.post("/v1/generate", json=body)
                        break
                    except httpx.TransportError:
                        await asyncio.sleep(0.5)
                response.raise_for_status()
                return str(response.json()["data"]["id"])

        return await asyncio.gather(*(one(i) for i in range(count)))


def count_status(db_url: str) -> dict[str, int]:
    async def run() -> dict[str, int]:
        engine = create_async_engine(db_url)
        try:
            async with engine.connect() as conn:
                query = sa.text("SELECT status, count(*) FROM tasks GROUP BY status")
                return {status: int(n) for status, n in (await conn.execute(query)).all()}
        finally:
            await engine.dispose()

    return asyncio.run(run())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--job-seconds", type=float, default=30.0)
    parser.add_argument("--database-url", default="")
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="start a PostgreSQL server (fsync on) from the machine's binaries and use it",
    )
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--poll-max", type=float, default=10.0, help="HATCHERY_UPSTREAM_POLL_MAX")
    parser.add_argument(
        "--preload",
        action="store_true",
        help="submit every task before the worker starts, so that how many jobs it keeps in "
        "flight does not depend on how fast the API accepts them",
    )
    args = parser.parse_args()

    if not args.postgres:
        return run(args)
    with postgres() as server:
        args.database_url = server.create_database("capacity")  # type: ignore[attr-defined]
        return run(args)


def run(args: argparse.Namespace) -> int:
    upstream_port = free_port()
    stack = make_stack(
        args.database_url,
        HATCHERY_GEMINI_API_KEY="bench-key",
        HATCHERY_GEMINI_BASE_URL=f"http://127.0.0.1:{upstream_port}/v1beta",
        HATCHERY_PROVIDER_CONCURRENCY=str(args.tasks + 100),
        HATCHERY_MAX_IN_FLIGHT=str(args.tasks + 100),
        HATCHERY_LOG_LEVEL="info",
        HATCHERY_UPSTREAM_POLL_MAX=str(args.poll_max),
    )
    env, key, db_url, api_port = stack.env, stack.key, stack.database_url, stack.port

    fake = Proc(
        [
            sys.executable,
            str(ROOT / "bench" / "fake_veo.py"),
            str(upstream_port),
            str(args.job_seconds),
        ],
        env,
    )
    api = Proc([*HATCHERY, "serve"], env | {"HATCHERY_WORKERS": "0"})
    worker = Proc([*HATCHERY, "worker"], env)
    try:
        wait_http(f"http://127.0.0.1:{upstream_port}/counts")
        wait_http(f"http://127.0.0.1:{api_port}/healthz")
        time.sleep(3)
        idle_rss, idle_cpu = rss_mib(worker.pid), cpu_seconds(worker.pid)
        floor_lag = bare_loop_lag()

        started = time.monotonic()
        samples: list[tuple[float, float]] = []
        stop = threading.Event()
        if args.preload:  # the idle worker measured above goes; a new one starts after the submits
            worker.stop()
        ids = asyncio.run(submit_all(f"http://127.0.0.1:{api_port}", key, args.tasks))
        submitted_in = time.monotonic() - started
        if args.preload:
            worker = Proc([*HATCHERY, "worker"], env)
            started = time.monotonic()
        pid = worker.pid

        def sample() -> None:
            while not stop.wait(1.0):
                samples.append((time.monotonic() - started, rss_mib(pid)))

        threading.Thread(target=sample, daemon=True).start()
        peak_in_flight = 0
        while time.monotonic() - started < args.timeout:
            counts = count_status(db_url)
            peak_in_flight = max(peak_in_flight, counts.get("processing", 0))
            if counts.get("completed", 0) + counts.get("failed", 0) >= len(ids):
                break
            time.sleep(2)
        finished_in = time.monotonic() - started
        stop.set()
        counts = count_status(db_url)
        busy_cpu = cpu_seconds(pid) - idle_cpu
        upstream = httpx.get(f"http://127.0.0.1:{upstream_port}/counts").json()
    finally:
        for proc in (worker, api, fake):
            proc.stop()

    lags = [tuple(map(float, m.groups())) for line in worker.lines if (m := LAG.search(line))]
    loaded = sorted(lags, key=lambda lag: lag[0], reverse=True)[:6]  # the busiest reports
    result: dict[str, Any] = {
        "tasks": args.tasks,
        "job_seconds": args.job_seconds,
        "poll_max_s": args.poll_max,
        "preload": args.preload,
        "database": "postgresql" if args.database_url.startswith("postgresql") else "sqlite",
        "statuses": counts,
        "submitted_in_s": round(submitted_in, 1),
        "all_finished_in_s": round(finished_in, 1),
        "peak_processing": peak_in_flight,
        "upstream": upstream,
        "worker_idle_rss_mib": round(idle_rss, 1),
        "worker_peak_rss_mib": round(max(r for _, r in samples), 1) if samples else None,
        "rss_per_task_kib": round((max(r for _, r in samples) - idle_rss) * 1024 / args.tasks, 1)
        if samples
        else None,
        "worker_cpu_s": round(busy_cpu, 1),
        "worker_cpu_ms_per_task": round(busy_cpu * 1000 / args.tasks, 2),
        "floor_lag_ms": floor_lag,
        "loaded_lag_ms": [
            {"in_flight": int(n), "waiting": int(w), "p50": p50, "p99": p99, "max": top}
            for n, w, p50, p99, top in loaded
        ],
        "all_lag_reports": len(lags),
        "cpus": os.cpu_count(),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "capacity.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "capacity.md").write_text(markdown(result))
    print(markdown(result))
    return 0 if counts.get("completed") == args.tasks else 1


def bare_loop_lag(seconds: float = 5.0) -> dict[str, float]:
    """The floor: the same 100 ms tick in a bare asyncio loop on this machine, in this run."""

    async def ticks() -> list[float]:
        lags = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            asked = time.monotonic()
            await asyncio.sleep(0.1)
            lags.append(max(0.0, time.monotonic() - asked - 0.1) * 1000)
        return lags

    lags = asyncio.run(ticks())
    return {
        "p50": round(percentile(lags, 0.5), 1),
        "p99": round(percentile(lags, 0.99), 1),
        "max": round(max(lags), 1),
    }


def markdown(r: dict[str, Any]) -> str:
    floor = r["floor_lag_ms"]
    lines = [
        f"# Capacity: {r['tasks']} upstream jobs of {r['job_seconds']:g} s "
        f"in one worker process ({r['database']})",
        "",
        f"- statuses at the end: {r['statuses']}",
        f"- submitted in {r['submitted_in_s']} s; all finished {r['all_finished_in_s']} s "
        + (
            "after the worker started (it started once all were submitted)"
            if r.get("preload")
            else "after the first submit"
        ),
        f"- peak tasks processing at once: {r['peak_processing']}",
        f"- upstream saw: {r['upstream']}",
        f"- worker RSS: idle {r['worker_idle_rss_mib']} MiB, peak {r['worker_peak_rss_mib']} MiB "
        f"({r['rss_per_task_kib']} KiB per task in flight)",
        f"- worker CPU: {r['worker_cpu_s']} s in all, {r['worker_cpu_ms_per_task']} ms per task",
        "",
        "Event-loop lag of the worker in its six busiest 10 s reports; the floor is a bare asyncio",
        "loop ticking the same way in the same run:",
        "",
        "| in flight | waiting upstream | loop lag p50 (ms) | p99 (ms) | max (ms) |",
        "|---:|---:|---:|---:|---:|",
        f"| floor | - | {floor['p50']} | {floor['p99']} | {floor['max']} |",
    ]
    lines += [
        f"| {row['in_flight']} | {row['waiting']} | {row['p50']} | {row['p99']} | {row['max']} |"
        for row in r["loaded_lag_ms"]
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
