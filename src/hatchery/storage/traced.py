"""An object store whose operations are spans (``observe.tracing``), wrapped around the store the
settings name when tracing is on. ``unwrap`` gives the store itself, for the code that serves a
local store's files from disk."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

from hatchery.observe import tracing
from hatchery.storage.base import DEFAULT_CONTENT_TYPE, ObjectInfo, ObjectStore

if TYPE_CHECKING:
    from opentelemetry.trace import Span


def _span(operation: str, key: str, **attributes: object) -> AbstractContextManager[Span | None]:
    return tracing.span(
        f"storage.{operation}",
        kind=tracing.CLIENT,
        attributes={"hatchery.storage.key": redacted(key), **attributes},
    )


def redacted(key: str) -> str:
    """A key without its middle: ``outputs/<token>/0.png`` is ``outputs/…/0.png`` (a file's
    token is all that guards its URL, and traces are read by others)."""
    first, _, rest = key.partition("/")
    return f"{first}/…/{rest.rpartition('/')[2]}" if "/" in rest else key


class TracedStore:
    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.kind = inner.kind

    async def put(self, key: str, data: bytes, content_type: str = DEFAULT_CONTENT_TYPE) -> None:
        with _span("put", key, **{"hatchery.storage.bytes": len(data)}):
            await self.inner.put(key, data, content_type)

    async def put_file(
        self, key: str, path: Path, content_type: str = DEFAULT_CONTENT_TYPE
    ) -> None:
        with _span("put", key):
            await self.inner.put_file(key, path, content_type)

    async def get(self, key: str) -> bytes:
        with _span("get", key):
            return await self.inner.get(key)

    async def download(self, key: str, path: Path) -> int:
        with _span("get", key):
            return await self.inner.download(key, path)

    async def head(self, key: str) -> ObjectInfo | None:
        with _span("head", key):
            return await self.inner.head(key)

    async def delete(self, key: str) -> None:
        with _span("delete", key):
            await self.inner.delete(key)

    async def delete_prefix(self, prefix: str) -> int:
        with _span("delete", prefix):
            return await self.inner.delete_prefix(prefix)

    async def signed_get_url(
        self, key: str, expires_in: int, content_type: str | None = None
    ) -> str:
        return await self.inner.signed_get_url(key, expires_in, content_type)

    async def signed_put_url(self, key: str, expires_in: int) -> str:
        return await self.inner.signed_put_url(key, expires_in)

    async def close(self) -> None:
        await self.inner.close()


def unwrap(store: ObjectStore) -> ObjectStore:
    """The store itself, under any tracing."""
    return store.inner if isinstance(store, TracedStore) else store
