"""A tool's input files as a vendor receives them: the bytes, or a URL the vendor can fetch.

A vendor runs outside our network, so it never gets a URL that only works inside it: with an
S3-compatible store the URL is a presigned GET of the object (valid for
``HATCHERY_VENDOR_INPUT_URL_SECONDS``); with files on local disk it is a ``data:`` URI carrying the
bytes (fal and Replicate accept both), and vendors with an upload API (ComfyUI, the OpenAI images
API) are sent the bytes themselves.

    ProviderError
    ├── RetryableError   the store could not be read now (StorageUnavailable)
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


class InputFiles:
    """The one seam through which providers read the files a job names."""

    def __init__(self, read: Read, sign: Sign | None = None, url_seconds: int = 7200) -> None:
        self._read = read
        self._sign = sign
        self._seconds = url_seconds

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
        return data_uri(await self.read(file), file.content_type)


def data_uri(data: bytes, content_type: str) -> str:
    return f"data:{content_type};base64,{base64.b64encode(data).decode('ascii')}"
