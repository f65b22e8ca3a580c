"""The URLs Hatchery serves for the object store, whatever the API that handed them out.

- ``GET``/``HEAD /storage/<key>?expires=…&signature=…[&type=…]``: the local store's signed
  download URLs (``storage.local``), with range requests so a player can seek.
- ``PUT /storage/uploads/<fileId>?expires=…&signature=…``: the local store's signed upload URL.
  The body is the file's raw bytes (any or no ``Content-Type``), at most
  ``HATCHERY_MAX_UPLOAD_BYTES``; it is streamed to a scratch file, stored, and the file moves to
  processing. A second PUT, a PUT after the URL expired, a body larger than the limit or shorter
  than its ``Content-Length`` are refused, and leave nothing behind.
- :func:`serve_object`: what a stable URL (an Egg output's ``/files/<token>/<name>``) answers:
  the object itself from the local store, or a redirect to a fresh presigned URL from an
  S3-compatible one.

Errors here are ``{"message", "code"}`` with the VideoGen API's codes, the API that uploads.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from fastapi import APIRouter, Request
from starlette.requests import ClientDisconnect
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response

from hatchery.api.context import services_of
from hatchery.api.videogen.errors import VideoGenRoute
from hatchery.domain.files import FileStatus, is_file_id, upload_key
from hatchery.errors import Conflict, HatcheryError, NotFound
from hatchery.files.library import storage_errors
from hatchery.services import Services
from hatchery.storage import LocalStore
from hatchery.storage.traced import unwrap

router = APIRouter(route_class=VideoGenRoute)
IMMUTABLE = "public, max-age=31536000, immutable"
INLINE = ("image/", "video/", "audio/")
REDIRECT_CACHE = "public, max-age=300"  # well inside a presigned URL's life


def _error(status: int, code: str, message: str) -> Response:
    return JSONResponse({"message": message, "code": code}, status_code=status)


async def serve_object(services: Services, key: str, content_type: str) -> Response:
    """An object at a stable URL: the bytes (local store) or a redirect to a presigned URL."""
    store = unwrap(services.storage)
    if isinstance(store, LocalStore):
        try:
            path = store.path(key)
        except ValueError:
            raise NotFound("File not found") from None
        if not path.is_file():
            raise NotFound("File not found")
        return FileResponse(path, media_type=content_type, headers={"Cache-Control": IMMUTABLE})
    async with storage_errors():
        if await store.head(key) is None:
            raise NotFound("File not found")
        url = await store.signed_get_url(key, services.settings.signed_url_seconds, content_type)
    return RedirectResponse(url, status_code=302, headers={"Cache-Control": REDIRECT_CACHE})


@router.api_route("/storage/{key:path}", methods=["GET", "HEAD"])
async def signed_object(request: Request, key: str) -> Response:
    services = services_of(request)
    store = unwrap(services.storage)
    why = services.signer.verify(request.method, key, request.query_params)
    if why is not None:
        return _error(403, "invalid_signature", f"Access denied: {why}")
    if not isinstance(store, LocalStore):
        return _error(404, "not_found", "This server's files are not stored locally")
    try:
        path = store.path(key)
    except ValueError:
        return _error(404, "not_found", "File not found")
    if not path.is_file():
        return _error(404, "not_found", "File not found")
    content_type = request.query_params.get("type") or "application/octet-stream"
    return FileResponse(path, media_type=content_type, headers=_inert(content_type))


def _inert(content_type: str) -> dict[str, str]:
    """Headers that keep a stored file from running as a page of this origin (an SVG or HTML
    upload with a script in it): no sniffing, a sandbox, and anything that is not a picture,
    video or sound downloaded rather than shown."""
    headers = {
        "Cache-Control": "private",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
    }
    if content_type == "image/svg+xml" or not content_type.startswith(INLINE):
        headers["Content-Disposition"] = "attachment"
    return headers


@router.put("/storage/uploads/{file_id}")
async def upload(request: Request, file_id: str) -> Response:
    services = services_of(request)
    why = services.signer.verify("PUT", upload_key(file_id), request.query_params)
    if why is not None or not is_file_id(file_id):
        return _error(403, "invalid_signature", f"Access denied: {why or 'not an upload URL'}")
    try:
        return await _receive(services, request, file_id)
    except HatcheryError as exc:
        status, code = next(
            (answer for kind, answer in _ANSWERS.items() if isinstance(exc, kind)),
            (503, "service_unavailable"),
        )
        return _error(status, code, exc.message)


_ANSWERS: dict[type[HatcheryError], tuple[int, str]] = {
    NotFound: (404, "not_found"),
    Conflict: (409, "upload_already_received"),
}


async def _receive(services: Services, request: Request, file_id: str) -> Response:
    library, limit = services.files, services.settings.max_upload_bytes
    file = await library.uploading(file_id)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return _too_large(limit)
    fd, name = tempfile.mkstemp(prefix=".upload-", dir=_scratch(services))
    scratch = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            size = await _copy(request, out, limit)
        if size is None:
            return _too_large(limit)
        if declared.isdigit() and size != int(declared):
            return _truncated(size, int(declared))
        async with storage_errors():
            await services.storage.put_file(upload_key(file_id), scratch)
    except ClientDisconnect:
        return _error(400, "upload_incomplete", "The upload ended before all its bytes arrived")
    finally:
        scratch.unlink(missing_ok=True)
    if await library.receive_upload(file, size) is None:
        return await _too_late(services, file_id)
    return Response(status_code=200)


async def _too_late(services: Services, file_id: str) -> Response:
    """A PUT whose file stopped waiting while its bytes arrived: another PUT's bytes won (they
    stay), or the upload expired (these bytes go)."""
    file = await services.files.any(file_id)
    if file is not None and file.status == FileStatus.FAILED:
        async with storage_errors():
            await services.storage.delete(upload_key(file_id))
        return _error(403, "upload_expired", f"The upload ended too late: {file.error}")
    return _error(409, "upload_already_received", "This upload has already been received")


async def _copy(request: Request, out: BinaryIO, limit: int) -> int | None:
    """Stream the body into ``out``; its size, or None once it passes ``limit``."""
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        out.write(chunk)
    return size


def _scratch(services: Services) -> Path:
    folder = services.settings.data_dir / "uploads" / ".incoming"
    with contextlib.suppress(FileExistsError):
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def _too_large(limit: int) -> Response:
    return _error(
        413,
        "file_too_large",
        f"The file is larger than this server takes ({limit} bytes, HATCHERY_MAX_UPLOAD_BYTES)",
    )


def _truncated(size: int, declared: int) -> Response:
    return _error(
        400,
        "upload_incomplete",
        f"The upload ended after {size} of its {declared} bytes; PUT the whole file again",
    )
