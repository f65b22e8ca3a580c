"""What every object store does: the one seam between Hatchery and where the bytes live.

A store keeps objects under keys (``outputs/<token>/0.png``, ``files/<id>/thumbnail.jpg``,
``uploads/<id>``) and hands out URLs that let a client read or write one object directly for a
while, without a Hatchery key. Two stores implement it: :mod:`hatchery.storage.local` (a
directory; its URLs are HMAC-signed and served by Hatchery itself) and :mod:`hatchery.storage.s3`
(any S3-compatible service; its URLs are presigned by the client library).

Exceptions::

    StorageError               anything the store could not do
    ├── ObjectMissing          no object under that key
    └── StorageUnavailable     the store could not be reached or failed; try again later
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

DEFAULT_CONTENT_TYPE = "application/octet-stream"
# One to six segments of letters, digits, `_`, `-` and `.` (not first: no `..`, no hidden name).
_KEY = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}(/[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}){0,5}")


def check_key(key: str) -> str:
    """An object key every store takes; ValueError for anything else (``..``, ``/x``, ``a//b``,
    a trailing newline, characters a URL would have to escape)."""
    if not _KEY.fullmatch(key):
        raise ValueError(f"not an object key: {key!r}")
    return key


class StorageError(Exception):
    """An object store operation failed."""


class ObjectMissing(StorageError):
    """There is no object under the key."""


class StorageUnavailable(StorageError):
    """The store could not be reached, or answered with a failure: the operation may succeed if
    it is tried again."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int


class ObjectStore(Protocol):
    """Objects under keys, and signed URLs to them. Keys are relative, ``/``-separated, without
    ``..``; every method raises :class:`StorageUnavailable` when the store cannot be reached."""

    kind: str  # "local" or "s3"

    async def put(self, key: str, data: bytes, content_type: str = DEFAULT_CONTENT_TYPE) -> None:
        """Write (or replace) one object, atomically: a reader sees the old bytes or the new."""
        ...

    async def put_file(
        self, key: str, path: Path, content_type: str = DEFAULT_CONTENT_TYPE
    ) -> None:
        """Write (or replace) one object from a local file, without reading it all into memory."""
        ...

    async def get(self, key: str) -> bytes:
        """An object's bytes; :class:`ObjectMissing` if there is none."""
        ...

    async def download(self, key: str, path: Path) -> int:
        """Copy an object into a local file (created or truncated); returns its size."""
        ...

    async def head(self, key: str) -> ObjectInfo | None:
        """An object's size, or None if there is no object under the key."""
        ...

    async def delete(self, key: str) -> None:
        """Remove an object; nothing happens if there is none."""
        ...

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every object whose key starts with ``prefix`` (which ends with ``/``)."""
        ...

    async def signed_get_url(
        self, key: str, expires_in: int, content_type: str | None = None
    ) -> str:
        """A URL that reads the object (with HTTP range requests) for ``expires_in`` seconds."""
        ...

    async def signed_put_url(self, key: str, expires_in: int) -> str:
        """A URL that writes the object with one ``PUT`` of its bytes, for ``expires_in``
        seconds. The local store's URL points at Hatchery's own upload route."""
        ...

    async def close(self) -> None: ...
