"""The read-only views of the service's health, for the admin API and the operator's pages:
the workers (from their heartbeats), each provider across them, the queue, the webhook outbox.

A worker is alive while its last heartbeat is younger than three heartbeat intervals
(``store.workers.alive_since``); a provider's figures are those of the live workers' last
heartbeats, added up.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from hatchery.store import operator, workers
from hatchery.store.db import Database, utcnow
from hatchery.worker.gate import OUTCOMES


async def workers_view(db: Database, heartbeat: float) -> list[dict[str, Any]]:
    """Every worker with a heartbeat: alive or not, and the tasks it holds."""
    now = utcnow()
    async with db.read() as conn:
        beats = await workers.listing(conn)
        held = await operator.in_flight_by_owner(conn)
    return [
        {
            **asdict(beat),
            "alive": beat.heartbeat_at >= workers.alive_since(now, heartbeat),
            "seconds_since_heartbeat": round((now - beat.heartbeat_at).total_seconds(), 1),
            "tasks_leased": held.get(beat.id, 0),
        }
        for beat in beats
    ]


def providers_view(
    live: list[dict[str, Any]], configured: list[str], routed: dict[str, list[str]]
) -> list[dict[str, Any]]:
    """Each configured provider across the live workers: breaker states, attempts by outcome
    over the last minutes, error rate, latency (the median of the workers' medians is not
    kept: ``p50_ms`` is the attempts-weighted mean of theirs, ``p95_ms`` the worst of theirs);
    ``routed`` names the models and tools that list it."""
    views = []
    for name in configured:
        states = [(w["id"], w["providers"][name]) for w in live if name in w["providers"]]
        counts = {outcome: sum(s.get(outcome, 0) for _, s in states) for outcome in OUTCOMES}
        tried = counts["completed"] + counts["failed"]
        views.append(
            {
                "name": name,
                "models": routed.get(name, []),
                "breakers": {wid: s.get("breaker") for wid, s in states},
                "open_breakers": sum(s.get("breaker") == "open" for _, s in states),
                **counts,
                "error_rate": round(counts["failed"] / tried, 4) if tried else None,
                "p50_ms": _weighted_p50([s for _, s in states]),
                "p95_ms": max((s["p95_ms"] for _, s in states if s.get("p95_ms")), default=None),
            }
        )
    return views


def _weighted_p50(states: list[dict[str, Any]]) -> int | None:
    weighed = [(s["p50_ms"], s.get("completed", 0)) for s in states if s.get("p50_ms") is not None]
    total = sum(n for _, n in weighed)
    return round(sum(p * n for p, n in weighed) / total) if total else None


async def queue_view(db: Database) -> dict[str, Any]:
    now = utcnow()
    async with db.read() as conn:
        depth = await operator.queue_depth(conn)
        oldest = await operator.oldest_pending(conn)
    by_status: dict[str, int] = {}
    for row in depth:
        by_status[row["status"]] = by_status.get(row["status"], 0) + row["tasks"]
    return {
        "by_status": by_status,
        "by_model": depth,
        "oldest_pending_at": oldest,
        "oldest_pending_seconds": round((now - oldest).total_seconds(), 1) if oldest else None,
    }


async def outbox_view(db: Database) -> dict[str, Any]:
    now = utcnow()
    async with db.read() as conn:
        backlog = await operator.outbox_backlog(conn, now)
        failing = await operator.failing_endpoints(conn)
    oldest = backlog["oldest_due_at"]
    return {
        **backlog,
        "oldest_due_seconds": (
            round((now - oldest).total_seconds(), 1) if oldest and oldest <= now else 0
        ),
        "failing_endpoints": [asdict(endpoint) for endpoint in failing],
    }
