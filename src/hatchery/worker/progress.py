"""What a task has done upstream so far, kept on the task itself (its ``upstream`` column) so that
a task reclaimed after a crash resumes from it instead of starting again:

    {"provider": "veo", "handle": {"operation": "models/.../operations/abc"}, "since": 1763700000.0,
     "attempts": [{"provider": "gemini", "outcome": "failed", "error": "...", "at": ...}, ...]}

``provider``/``handle``/``since`` describe the upstream job in flight (none between jobs);
``attempts`` lists every provider tried, with how it ended, and ends up in the task's usage.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

Save = Callable[[dict[str, Any]], Awaitable[None]]
MAX_ERROR = 500


class Progress:
    def __init__(self, stored: dict[str, Any] | None, save: Save) -> None:
        stored = stored if isinstance(stored, dict) else {}
        self.provider: str | None = stored.get("provider")
        self.handle: dict[str, Any] | None = stored.get("handle")
        self.since: float = float(stored.get("since") or time.time())
        self.attempts: list[dict[str, Any]] = list(stored.get("attempts") or [])
        self._save = save

    def resumable(self, provider: str) -> dict[str, Any] | None:
        """The handle of ``provider``'s job in flight, if a previous attempt left one."""
        return self.handle if self.provider == provider and self.handle else None

    def record(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "handle": self.handle,
            "since": self.since,
            "attempts": self.attempts,
        }

    async def running(self, provider: str, handle: dict[str, Any]) -> None:
        """The upstream accepted a job (or changed its handle): store it before waiting."""
        if self.provider != provider or self.handle is None:
            self.since = time.time()
        self.provider, self.handle = provider, handle
        await self._save(self.record())

    async def ended(self, provider: str, outcome: str, error: str | None = None) -> None:
        """One provider's attempt is over; stored at once unless it completed the task (the
        completion itself stores the usage)."""
        entry: dict[str, Any] = {
            "provider": provider,
            "outcome": outcome,
            "at": round(time.time(), 3),
        }
        if self.provider == provider and self.handle:
            entry["upstream"] = self.handle
        if error:
            entry["error"] = error[:MAX_ERROR]
        self.attempts.append(entry)
        self.provider, self.handle = None, None
        if outcome != "completed":
            await self._save(self.record())

    def elapsed(self) -> float:
        return time.time() - self.since
