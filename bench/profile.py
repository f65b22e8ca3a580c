"""Where a saturated server spends its CPU: py-spy samples the process (every thread, idle
frames left out) while a load runs, and the samples are summed by what was on CPU (self, by
package and by function) and by the Hatchery functions on the stack (inclusive; the entry
points every sample passes through, ``hatchery.__main__`` and ``hatchery.cli``, left out)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def sample(pid: int, seconds: float, drive: Callable[[], Any]) -> dict[str, Any]:
    """Record ``pid`` for ``seconds`` while ``drive()`` loads it; the summed samples."""
    binary = py_spy()
    if binary is None:
        return {"skipped": "py-spy is not installed (pip install py-spy)"}
    out = Path(tempfile.mkdtemp(prefix="hatchery-profile-")) / "stacks.txt"
    args = [binary, "record", "--pid", str(pid), "--duration", str(int(seconds))]
    spy = subprocess.Popen(
        [*args, "--rate", "250", "--format", "raw", "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    drive()
    _, err = spy.communicate(timeout=60)
    if not out.exists():
        return {"skipped": f"py-spy recorded nothing: {err.decode(errors='replace')[-300:]}"}
    return summarise(out.read_text())


# Leaves where a thread waits rather than runs: aiosqlite's worker blocked on its queue, a
# thread pool's worker blocked on its queue (``work_queue.get``: what runs on that thread has
# frames of its own above ``_worker``), and the event loop inside uvloop's C code (py-spy sees
# no Python frame above ``run_forever`` there).
IDLE = {
    ("_connection_worker_thread", "aiosqlite/core.py"),
    ("_worker", "concurrent/futures/thread.py"),
    ("Runner.run", "asyncio/runners.py"),
}
# Hatchery's entry points, on the stack of every sample of a server: no news in a profile.
ENTRY = ("hatchery.__main__.", "hatchery.cli.")


def package(file: str) -> str:
    """Who a frame belongs to: a Hatchery module, else the top-level package or module."""
    path = file.split("site-packages/", 1)[-1]
    if path == "<string>":  # code compiled at run time, such as a dataclass's __init__
        return "<string>"
    if "hatchery/" in path:
        return "hatchery." + path.rsplit("hatchery/", 1)[1].removesuffix(".py").replace("/", ".")
    return path.lstrip("<").split("/", 1)[0].removesuffix(".py").removesuffix(">")


def frames(line: str) -> tuple[list[tuple[str, str]], int]:
    stack, _, count = line.rpartition(" ")
    parsed = []
    for frame in stack.split(";"):
        match = FRAME.match(frame)
        if match:
            parsed.append((match["function"], match["file"].split("site-packages/", 1)[-1]))
    return parsed, int(count)


def summarise(raw: str) -> dict[str, Any]:
    self_time: Counter[str] = Counter()
    self_function: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = idle = 0
    for line in raw.splitlines():
        if not line.strip():
            continue
        stack, count = frames(line)
        if not stack:
            continue
        if stack[-1] in IDLE:
            idle += count
            continue
        total += count
        self_time[package(stack[-1][1])] += count
        self_function[f"{package(stack[-1][1])}.{stack[-1][0]}"] += count
        ours = {f"{package(file)}.{function}" for function, file in stack if "hatchery/" in file}
        ours = {name for name in ours if not name.startswith(ENTRY)}
        for name in ours:
            inclusive[name] += count

    def shares(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, round(n / total, 3)) for name, n in counter.most_common(15)]

    return {
        "samples": total,
        "idle_samples": idle,
        "self_by_package": shares(self_time),
        "self_by_function": shares(self_function),
        "hatchery_inclusive": shares(inclusive),
    }
