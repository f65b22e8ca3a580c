"""Run Python as if only the base install (httpx) were present: ``python tests/client_only.py
-m hatchery ARGS`` or ``python tests/client_only.py -c CODE``. Importing any of the server extra's
packages raises ModuleNotFoundError, so whatever runs here proves it needs none of them."""

from __future__ import annotations

import importlib.abc
import runpy
import sys
from collections.abc import Sequence
from types import ModuleType

SERVER_EXTRA = (
    "fastapi",
    "starlette",
    "uvicorn",
    "pydantic",
    "sqlalchemy",
    "aiosqlite",
    "asyncpg",
    "alembic",
    "PIL",
    "numpy",
    "av",
    "limits",
    "redis",
)


class BlockServerExtra(importlib.abc.MetaPathFinder):
    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> None:
        if name.split(".")[0] in SERVER_EXTRA:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
        return None


def main() -> None:
    sys.meta_path.insert(0, BlockServerExtra())
    mode, target, *rest = sys.argv[1:]
    sys.argv = [target, *rest]
    if mode == "-m":
        runpy.run_module(target, run_name="__main__", alter_sys=True)
    else:
        exec(compile(target, "<client_only>", "exec"), {"__name__": "__main__"})


if __name__ == "__main__":
    main()
