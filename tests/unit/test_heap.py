"""The server and worker processes settle their heap after start-up (``cli.server.settle_heap``):
start-up's objects frozen out of later collections, and the young generation collected less
often. Run in a child process, so that this test process keeps CPython's defaults."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import gc, json
from hatchery.cli.server import GC_THRESHOLDS, settle_heap
before = (gc.get_threshold(), gc.get_freeze_count())
settle_heap()
print(json.dumps([before, [gc.get_threshold(), gc.get_freeze_count()], GC_THRESHOLDS]))
"""


def test_settle_heap_freezes_start_up_and_raises_the_young_threshold() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    before, after, wanted = json.loads(done.stdout)
    assert before == [[700, 10, 10], 0]  # CPython's defaults
    assert after[0] == wanted == [20_000, 20, 10]
    assert after[1] > 10_000  # the imported modules' objects, at least
