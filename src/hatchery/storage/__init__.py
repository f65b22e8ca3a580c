"""Where the bytes live: one interface (:mod:`hatchery.storage.base`), a directory by default
(:mod:`hatchery.storage.local`) or any S3-compatible store (:mod:`hatchery.storage.s3`), chosen
by ``HATCHERY_STORAGE_URL``."""

from __future__ import annotations

from hatchery.settings import Settings
from hatchery.storage.base import (
    ObjectInfo,
    ObjectMissing,
    ObjectStore,
    StorageError,
    StorageUnavailable,
)
from hatchery.storage.local import LocalStore, UrlSigner, load_secret

__all__ = [
    "CONTENT_TYPES",
    "LocalStore",
    "ObjectInfo",
    "ObjectMissing",
    "ObjectStore",
    "StorageError",
    "StorageUnavailable",
    "UrlSigner",
    "load_secret",
    "open_store",
    "output_key",
]

# What a task's output files are stored as (``outputs/<token>/<n>.<ext>``).
CONTENT_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "webp": "image/webp",
    "svg": "image/svg+xml",
    "mp4": "video/mp4",
    "webm": "video/webm",
    "mov": "video/quicktime",
    "mp3": "audio/mpeg",
    "m4a": "audio/mp4",
    "wav": "audio/wav",
}


def output_key(token: str, index: int, extension: str, *, tool: bool = False) -> str:
    """Where a task's output lives. A tool execution's are named ``t<n>``: the Egg API's public
    ``/files/<token>/<n>.<ext>`` serves its own tasks' outputs only, and an execution's are
    reached through expiring signed URLs alone."""
    return f"outputs/{token}/{'t' if tool else ''}{index}.{extension}"


def open_store(settings: Settings, signer: UrlSigner) -> ObjectStore:
    """The store the settings name: S3-compatible for ``s3://``, else DATA_DIR on local disk."""
    if settings.storage_url:
        from hatchery.storage.s3 import S3Store  # the server extra's obstore

        return S3Store.from_url(
            settings.storage_url,
            endpoint=settings.storage_endpoint or None,
            region=settings.storage_region or None,
        )
    return LocalStore(settings.data_dir, signer)
