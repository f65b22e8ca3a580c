"""The VideoGen API's files endpoints (contract §3.9 and §4): thin routes over the file library
(``hatchery.files.library``). ``selfOnly`` is accepted and changes nothing: a Hatchery key sees its
own account's files, and an account is the team."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.responses import JSONResponse, Response

from hatchery.api import cursor
from hatchery.api.context import services_of
from hatchery.api.videogen.auth import Group, caller
from hatchery.api.videogen.errors import VideoGenRoute
from hatchery.api.videogen.present import storage_file
from hatchery.api.videogen.schemas import CreateFileUpload, SearchFiles
from hatchery.domain.files import FileType, StoredFile
from hatchery.errors import BadRequest
from hatchery.files.library import FileLibrary
from hatchery.services import Services

router = APIRouter(route_class=VideoGenRoute, tags=["Files"])
CURSOR = "vgf1."
PAGE = 50  # files a page when a cursor comes without a limit


async def hydrated(services: Services, file: StoredFile) -> dict[str, Any]:
    """The ``StorageFile``, its sources' signed URLs made now."""
    links = await services.files.links(file)
    return storage_file(file, links, services.settings.public_url)


def _after(given: str | None) -> tuple[datetime, int] | None:
    if given is None:
        return None
    numbers = cursor.unpack(CURSOR, given, 2)
    try:
        if numbers is None:
            raise ValueError(given)
        return datetime.fromtimestamp(numbers[0] / 1e6, UTC), numbers[1]
    except (ValueError, OverflowError, OSError):
        raise BadRequest(
            "cursor is not valid: pass back nextCursor from the previous page of GET /v1/files "
            "unchanged"
        ) from None


@router.get("/v1/files")
async def get_files(
    request: Request,
    limit: int | None = Query(None, ge=1, le=200),
    cursor_: str | None = Query(None, alias="cursor"),
) -> Response:
    """The account's files that are not archived, most recently updated first: all of them, as
    G1 lists them, or G2's cursor pages when ``limit`` or ``cursor`` is given (50 a page)."""
    services = services_of(request)
    account = await caller(services, request, Group.FILES_READ)
    if limit is None and cursor_ is not None:
        limit = PAGE
    files, last = await services.files.page(account.id, limit, _after(cursor_))
    next_cursor = None
    if last is not None:
        next_cursor = cursor.pack(CURSOR, int(last[0].timestamp() * 1e6), last[1])
    body = {
        "files": [await hydrated(services, f) for f in files],
        "hasMore": next_cursor is not None,
        "nextCursor": next_cursor,
    }
    return JSONResponse(body)


@router.post("/v1/files/search")
async def search_files(request: Request, body: SearchFiles) -> Response:
    """Files whose display name or description has the query's words: lexical, not semantic."""
    services = services_of(request)
    account = await caller(services, request, Group.FILES_SEARCH)
    found = await services.files.search(account.id, body.query, body.numResults or 10)
    results = [
        {"similarity": hit.similarity, "file": await hydrated(services, hit.file)} for hit in found
    ]
    return JSONResponse({"results": results})


@router.post("/v1/files/upload")
async def create_file_upload(request: Request, body: CreateFileUpload) -> Response:
    services = services_of(request)
    account = await caller(services, request, Group.FILES_UPLOAD)
    kind = FileType(body.type) if body.type else None
    file, url = await services.files.create_upload(
        account.id, body.displayName, kind, bool(body.isTemporary)
    )
    return JSONResponse({"fileId": file.id, "uploadUrl": url})


FileAction = Callable[[FileLibrary, str, str], Awaitable[StoredFile]]


async def _on_file(request: Request, file_id: str, group: Group, action: FileAction) -> Response:
    """Authenticate, do ``action`` to the account's file, answer with the file."""
    services = services_of(request)
    account = await caller(services, request, group)
    file = await action(services.files, account.id, file_id)
    return JSONResponse(await hydrated(services, file))


@router.get("/v1/files/{fileId}")
async def get_file(request: Request, fileId: str) -> Response:
    return await _on_file(request, fileId, Group.FILES_READ, FileLibrary.get)


@router.post("/v1/files/{fileId}/hydrate")
async def hydrate_file(request: Request, fileId: str) -> Response:
    """The file with fresh signed URLs in every source that is ready."""
    return await _on_file(request, fileId, Group.FILES_HYDRATE, FileLibrary.get)


@router.post("/v1/files/{fileId}/archive")
async def archive_file(request: Request, fileId: str) -> Response:
    return await _on_file(request, fileId, Group.FILES_CHANGE, FileLibrary.archive)


@router.post("/v1/files/{fileId}/enable-public-preview")
async def enable_public_preview(request: Request, fileId: str) -> Response:
    return await _on_file(request, fileId, Group.FILES_CHANGE, FileLibrary.enable_public_preview)


@router.post("/v1/files/{fileId}/disable-public-preview")
async def disable_public_preview(request: Request, fileId: str) -> Response:
    return await _on_file(request, fileId, Group.FILES_CHANGE, FileLibrary.disable_public_preview)
