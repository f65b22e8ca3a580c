"""Objects in any S3-compatible service (AWS S3, Cloudflare R2, MinIO, SeaweedFS, ...).

``HATCHERY_STORAGE_URL=s3://bucket/prefix`` keeps every object under ``prefix/`` in ``bucket``.
The client library is `obstore <https://developmentseed.org/obstore/>`_ (Rust's
``object_store``): it signs requests (SigV4), uploads large files in parts, streams downloads and
presigns URLs. When no credentials are passed, it finds them itself through the standard AWS
chain (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``, a web identity,
ECS or EC2 instance credentials); Hatchery never reads them. With a custom endpoint (anything but
AWS itself) requests use path-style addressing (``<endpoint>/<bucket>/<key>``), and ``http://``
endpoints are allowed, for a store on the same host or network.

Failures are bounded: a connection is given a few seconds, a stalled read 30 s, and a failed
request is retried twice within 10 s, so a store that is down surfaces as
:class:`StorageUnavailable` in seconds rather than after minutes of retries.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING
from urllib.parse import urlsplit

import obstore
from obstore.exceptions import BaseError as ObstoreError
from obstore.store import S3Store as ObstoreS3

from hatchery.storage.base import (
    DEFAULT_CONTENT_TYPE,
    ObjectInfo,
    ObjectMissing,
    StorageUnavailable,
    check_key,
)

if TYPE_CHECKING:
    from obstore import GetResult
    from obstore.store import ClientConfig, RetryConfig, S3Config

CONNECT_TIMEOUT = timedelta(seconds=3)
# A read (response headers or the next bytes of a body) that stalls this long fails the request.
READ_TIMEOUT = timedelta(seconds=30)
# The whole of one request, body included: long enough for a large download to stream.
REQUEST_TIMEOUT = timedelta(minutes=10)
MAX_RETRIES = 2
RETRY_TIMEOUT = timedelta(seconds=10)
MAX_SIGNED_SECONDS = 7 * 86400  # SigV4 presigned URLs work for at most 7 days
CHUNK = 1024 * 1024
LIST_PAGE = 1000  # keys per listing page, and per DeleteObjects request


def check_prefix(prefix: str) -> str:
    """The store's own prefix: relative, ``/``-separated, without ``..``."""
    if not prefix or prefix.startswith("/") or ".." in prefix:
        raise ValueError(f"not a key prefix: {prefix!r}")
    return prefix


def _client_options(endpoint: str | None) -> ClientConfig:
    return {
        "allow_http": bool(endpoint and endpoint.startswith("http://")),
        "connect_timeout": CONNECT_TIMEOUT,
        "read_timeout": READ_TIMEOUT,
        "timeout": REQUEST_TIMEOUT,
    }


def _retry_config() -> RetryConfig:
    return {
        "max_retries": MAX_RETRIES,
        "retry_timeout": RETRY_TIMEOUT,
        "backoff": {
            "init_backoff": timedelta(milliseconds=100),
            "max_backoff": timedelta(seconds=1),
            "base": 2,
        },
    }


def _config(
    endpoint: str | None,
    region: str | None,
    access_key_id: str | None,
    secret_access_key: str | None,
    session_token: str | None,
) -> S3Config:
    """What is given overrides obstore's own look at the environment; the rest it finds."""
    config: S3Config = {}
    if endpoint:
        config["endpoint"] = endpoint.rstrip("/")
        config["virtual_hosted_style_request"] = False
    if region:
        config["region"] = region
    if access_key_id:
        config["access_key_id"] = access_key_id
    if secret_access_key:
        config["secret_access_key"] = secret_access_key
    if session_token:
        config["session_token"] = session_token
    return config


def _first_line(exc: BaseException) -> str:
    """obstore's messages end with a multi-line debug dump; the first line says what failed."""
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


class S3Store:
    kind = "s3"

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
    ) -> None:
        prefix = prefix.strip("/")
        if prefix:
            check_prefix(prefix)
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint = endpoint
        self._store = ObstoreS3(
            bucket,
            prefix=prefix or None,
            config=_config(endpoint, region, access_key_id, secret_access_key, session_token),
            client_options=_client_options(endpoint),
            retry_config=_retry_config(),
        )

    @classmethod
    def from_url(
        cls, url: str, *, endpoint: str | None = None, region: str | None = None
    ) -> S3Store:
        """``s3://bucket`` or ``s3://bucket/some/prefix``; credentials from the AWS chain."""
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
            raise ValueError(f"not an s3://bucket[/prefix] URL: {url!r}")
        return cls(parts.netloc, parts.path, endpoint=endpoint, region=region)

    @property
    def where(self) -> str:
        location = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        return f"{location} at {self.endpoint or 'AWS'}"

    @contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        """obstore's exceptions as the store's: not found is :class:`ObjectMissing`, anything
        else (refused or timed-out connections, 5xx, denied access) :class:`StorageUnavailable`."""
        try:
            yield
        except FileNotFoundError:  # what obstore raises for a 404
            raise ObjectMissing(key) from None
        except ObstoreError as exc:
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: BaseException) -> StorageUnavailable:
        return StorageUnavailable(f"S3 store {self.where}: {_first_line(exc)}")

    async def put(self, key: str, data: bytes, content_type: str = DEFAULT_CONTENT_TYPE) -> None:
        await self._put(check_key(key), data, content_type)

    async def put_file(
        self, key: str, path: Path, content_type: str = DEFAULT_CONTENT_TYPE
    ) -> None:
        """obstore reads the file itself, in 5 MB parts of a multipart upload when it is larger."""
        check_key(key)
        path.stat()  # a missing local file is the caller's FileNotFoundError, not the store's
        await self._put(key, path, content_type)

    async def _put(self, key: str, data: bytes | Path, content_type: str) -> None:
        try:
            await obstore.put_async(
                self._store, key, data, attributes={"Content-Type": content_type}
            )
        except (FileNotFoundError, ObstoreError) as exc:  # a 404 on a write: no bucket
            raise self._unavailable(exc) from exc

    async def get(self, key: str) -> bytes:
        with self._errors(key):
            result = await obstore.get_async(self._store, check_key(key))
            return bytes(await result.bytes_async())

    async def download(self, key: str, path: Path) -> int:
        """Streams the object into the file, a megabyte at a time."""
        with self._errors(key):
            result = await obstore.get_async(self._store, check_key(key))
        with path.open("wb") as out:
            return await self._copy(key, result, out)

    async def _copy(self, key: str, result: GetResult, out: IO[bytes]) -> int:
        size = 0
        with self._errors(key):
            async for chunk in result.stream(min_chunk_size=CHUNK):
                await asyncio.to_thread(out.write, chunk)
                size += len(chunk)
        return size

    async def head(self, key: str) -> ObjectInfo | None:
        with self._errors(key):
            try:
                meta = await obstore.head_async(self._store, check_key(key))
            except FileNotFoundError:
                return None
        return ObjectInfo(key, meta["size"])

    async def delete(self, key: str) -> None:
        with self._errors(key), suppress(FileNotFoundError):
            await obstore.delete_async(self._store, check_key(key))

    async def delete_prefix(self, prefix: str) -> int:
        """Lists the keys under ``prefix`` a page at a time and deletes each page with one
        request. An empty prefix (the whole store) is refused with ValueError."""
        check_key(prefix.removesuffix("/"))
        count = 0
        with self._errors(prefix):
            async for page in obstore.list(self._store, prefix, chunk_size=LIST_PAGE):
                paths = [meta["path"] for meta in page]
                if paths:
                    await obstore.delete_async(self._store, paths)
                count += len(paths)
        return count

    async def signed_get_url(
        self, key: str, expires_in: int, content_type: str | None = None
    ) -> str:
        """A presigned GET (range requests work). ``content_type`` is ignored: obstore presigns
        no query parameters of ours (such as ``response-content-type``), so the object is served
        with the Content-Type it was stored with."""
        return await self._sign("GET", key, expires_in)

    async def signed_put_url(self, key: str, expires_in: int) -> str:
        """A presigned PUT signing only the host header, so the client may send any
        Content-Type, or none."""
        return await self._sign("PUT", key, expires_in)

    async def _sign(self, method: obstore.HTTP_METHOD, key: str, expires_in: int) -> str:
        if not 1 <= expires_in <= MAX_SIGNED_SECONDS:
            raise ValueError(f"expires_in must be from 1 to {MAX_SIGNED_SECONDS} seconds")
        with self._errors(key):
            return await obstore.sign_async(
                self._store, method, check_key(key), timedelta(seconds=expires_in)
            )

    async def close(self) -> None:
        """obstore has nothing to close. The short pause lets its I/O threads hand their last
        results to Python: one still doing so while the interpreter shuts down aborts it."""
        await asyncio.sleep(0.02)
