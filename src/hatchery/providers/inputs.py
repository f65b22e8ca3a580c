"""A tool's input files as a vendor receives them: the bytes, or a URL the vendor can fetch.

A vendor runs outside our network, so it never gets a URL that only works inside it: with an
S3-compatible store the URL is a presigned GET of the object (valid for
``HATCHERY_VENDOR_INPUT_URL_SECONDS``); with files on local disk it is a ``data:`` URI carrying the
bytes (fal and Replicate accept both; up to 16 MiB, a larger file is left to another provider),
and vendors with an upload API (ComfyUI, the OpenAI images API) are sent the bytes themselves.

    ProviderError
    ├── RetryableError   the store could not be read now (StorageUnavailable), or a file is too
    │                    large to send inline
    └── TerminalError    the file is gone from the store (a temporary file past its time)
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable

from hatchery.domain.tools import InputFile
from hatchery.providers.base import RetryableError, TerminalError
from hatchery.storage.base import ObjectMissing, StorageUnavailable

Read = Callable[[str], Awaitable[bytes]]
Sign = Callable[[str, int], Awaitable[str]]  # (key, seconds) -> presigned GET URL
Size = Callable[[str], Awaitable[int | None]]  # key -> bytes stored (None: no such object)
INLINE_MAX = 16 * 1024 * 1024  # the largest file sent inline, as a data: URI


class InputFiles:
    """The one seam through which providers read the files a job names."""

    def __init__(
        self,
        read: Read,
        sign: Sign | None = None,
        url_seconds: int = 7200,
        size: Size | None = None,
        inline_max: int = INLINE_MAX,
    ) -> None:
        self._read = read
        self._sign = sign
        self._seconds = url_seconds
        self._size = size
        self._inline_max = inline_max

    @property
    def presigned(self) -> bool:
        """Whether vendors get presigned URLs (an S3-compatible store) rather than the bytes."""
        return self._sign is not None

    async def read(self, file: InputFile) -> bytes:
        try:
            return await self._read(file.key)
        except ObjectMissing:
            raise TerminalError(f"input file {file.file_id} no longer exists") from None
        except StorageUnavailable as exc:
            raise RetryableError(f"the file store could not be read: {exc}") from exc

    async def url(self, file: InputFile) -> str:
        """A URL a vendor can fetch the file from: presigned, or a ``data:`` URI."""
        if self._sign is not None:
            try:
                return await self._sign(file.key, self._seconds)
            except StorageUnavailable as exc:
                raise RetryableError(f"the file store could not sign a URL: {exc}") from exc
        if self._size is not None:
            try:
                self._check_inline(file, await self._size(file.key))
            except StorageUnavailable as exc:
                raise RetryableError(f"the file store could not be read: {exc}") from exc
        data = await self.read(file)
        self._check_inline(file, len(data))
        return data_uri(data, file.content_type)

    def _check_inline(self, file: InputFile, size: int | None) -> None:
        """A file too large to send inline is this vendor's limit here, not the request's:
        another provider (or ``local``) may still take it."""
        if size is not None and size > self._inline_max:
            raise RetryableError(
                f"input file {file.file_id} is {size / 2**20:.1f} MiB; vendors get files inline "
                f"up to {self._inline_max / 2**20:.0f} MiB when the files are not in an "
                "S3-compatible store (HATCHERY_STORAGE_URL), which gives them presigned URLs"
            )


def data_uri(data: bytes, content_type: str) -> str:
    return f"data:{content_type};base64,{base64.b64encode(data).decode('ascii')}"
