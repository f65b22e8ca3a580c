"""The embedded default store: objects are files under ``DATA_DIR`` (``outputs/<token>/0.png`` is
``DATA_DIR/outputs/<token>/0.png``, where Hatchery has always kept task outputs).

Writes are atomic (a temporary file, fsync, rename). The signed URLs are Hatchery's own:
``<public URL>/storage/<key>?expires=<unix>&signature=<hmac>``, where the signature is an
HMAC-SHA256 over the method, the key and the expiry with the store's secret. Hatchery serves them
(``api.storage``): GET and HEAD with range requests, and PUT for uploads. The secret comes from
``HATCHERY_STORAGE_SECRET`` or, when that is empty, from ``DATA_DIR/storage.secret``, made on first
start, so every process on the same directory signs alike.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

from hatchery.storage import base
from hatchery.storage.base import DEFAULT_CONTENT_TYPE, ObjectInfo, ObjectMissing

FOLDERS = ("outputs/", "files/", "uploads/")  # the store's part of DATA_DIR
SECRET_FILE = "storage.secret"
CHUNK = 1024 * 1024


def check_key(key: str) -> str:
    """A key of this store: one every store takes, in one of its folders of DATA_DIR."""
    if not key.startswith(FOLDERS):
        raise ValueError(f"not an object key of this store: {key!r}")
    return base.check_key(key)


def load_secret(data_dir: Path, configured: str) -> bytes:
    """The configured secret, or the one kept in DATA_DIR (made once, readable by us only)."""
    if configured:
        return configured.encode()
    path = data_dir / SECRET_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=data_dir, prefix=".tmp-")
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(32))
        try:
            os.link(tmp, path)  # atomic: of two processes starting together, one secret wins
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    return path.read_bytes().strip()


class UrlSigner:
    """HMAC signatures of (method, key, expiry): what makes a local URL work without a key."""

    def __init__(self, secret: bytes, base_url: str) -> None:
        self.secret = secret
        self.base_url = base_url.rstrip("/")

    def signature(
        self, method: str, key: str, expires: int, content_type: str = "", path: str = "/storage/"
    ) -> str:
        """The HMAC of what a URL grants: a method on a key under a route, until a time."""
        message = f"{method}\n{path}{key}\n{expires}\n{content_type}".encode()
        digest = hmac.new(self.secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def url(
        self,
        method: str,
        key: str,
        expires_in: int,
        content_type: str | None = None,
        *,
        path: str = "/storage/",
    ) -> str:
        """A URL under ``path`` that works for ``method`` on ``key`` for ``expires_in`` seconds
        (a GET URL serves the object as ``content_type`` when one is given)."""
        expires = int(time.time() + expires_in)
        sig = self.signature(method, key, expires, content_type or "", path)
        query = f"expires={expires}&signature={sig}"
        if content_type:
            query += f"&type={quote(content_type, safe='')}"
        return f"{self.base_url}{path}{quote(key)}?{query}"

    def verify(
        self,
        method: str,
        key: str,
        query: Mapping[str, str],
        now: float | None = None,
        *,
        path: str = "/storage/",
    ) -> str | None:
        """None if a URL's query signs ``method`` on ``key`` under ``path`` and has not expired;
        else why not."""
        expires, signature = query.get("expires", ""), query.get("signature", "")
        if not (expires.isascii() and expires.isdigit() and len(expires) < 16 and signature):
            return "the URL is not signed; use the URL exactly as it was given"
        method = "GET" if method == "HEAD" else method
        expected = self.signature(method, key, int(expires), query.get("type", ""), path)
        if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
            return "the URL's signature does not match; use the URL exactly as it was given"
        if int(expires) < (time.time() if now is None else now):
            return "the URL has expired; ask for a new one"
        return None


class LocalStore:
    kind = "local"

    def __init__(self, root: Path, signer: UrlSigner) -> None:
        self.root = root
        self.signer = signer

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put(self, key: str, data: bytes, content_type: str = DEFAULT_CONTENT_TYPE) -> None:
        await asyncio.to_thread(self._write, self.path(key), lambda fh: fh.write(data))

    async def put_file(
        self, key: str, path: Path, content_type: str = DEFAULT_CONTENT_TYPE
    ) -> None:
        def copy(fh: BinaryIO) -> None:
            with path.open("rb") as src:
                shutil.copyfileobj(src, fh, CHUNK)

        await asyncio.to_thread(self._write, self.path(key), copy)

    @staticmethod
    def _write(target: Path, fill: Callable[[BinaryIO], object]) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fill(fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def get(self, key: str) -> bytes:
        try:
            return await asyncio.to_thread(self.path(key).read_bytes)
        except (FileNotFoundError, IsADirectoryError):
            raise ObjectMissing(key) from None

    async def download(self, key: str, path: Path) -> int:
        source = self.path(key)
        try:
            await asyncio.to_thread(shutil.copyfile, source, path)
        except (FileNotFoundError, IsADirectoryError):
            raise ObjectMissing(key) from None
        return path.stat().st_size

    async def head(self, key: str) -> ObjectInfo | None:
        path = self.path(key)
        return ObjectInfo(key, path.stat().st_size) if path.is_file() else None

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path(key).unlink, missing_ok=True)

    async def delete_prefix(self, prefix: str) -> int:
        folder = self.path(prefix.rstrip("/"))
        if not folder.is_dir():
            return 0
        count = sum(1 for p in folder.rglob("*") if p.is_file())
        await asyncio.to_thread(shutil.rmtree, folder, True)
        return count

    async def signed_get_url(
        self, key: str, expires_in: int, content_type: str | None = None
    ) -> str:
        return self.signer.url("GET", check_key(key), expires_in, content_type)

    async def signed_put_url(self, key: str, expires_in: int) -> str:
        return self.signer.url("PUT", check_key(key), expires_in)

    async def close(self) -> None:
        return None
