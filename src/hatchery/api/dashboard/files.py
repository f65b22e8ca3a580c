"""The dashboard's files: the account's uploads and task outputs as a grid of previews, uploads
by drag and drop, and a file's own page with its facts, its download, archive and public preview.

::

    GET  /dashboard/files                           ?type=IMAGE|VIDEO|AUDIO &archived=1 &page=N
    GET  /dashboard/files/{fileId}
    POST /dashboard/files/{fileId}/archive          form, CSRF
    POST /dashboard/files/{fileId}/public-preview   form, CSRF; on=1 or on=0

Uploads are the VideoGen API's presigned flow, driven from ``static/files.js`` with the session:
``POST /v1/files/upload``, a ``PUT`` of the bytes to the URL it answers, then ``GET
/v1/files/{fileId}`` until the file is ready or failed. Previews are the file's sources as the
API hands them out (``FileLibrary.links``: signed URLs made for this page): the thumbnail in the
grid, the preview rendition on the file's page, the original where a rendition is not made yet.
Another account's file, or an id that is not a file id, is the 404 page.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from hatchery.api.dashboard.pages import (
    account_page,
    change_form,
    choice,
    link,
    redirect,
    render,
)
from hatchery.api.query import positive_int
from hatchery.domain.files import (
    STREAMABLE,
    USABLE,
    FileStatus,
    FileType,
    Scope,
    StoredFile,
    is_file_id,
)
from hatchery.errors import NotFound
from hatchery.files.library import Link
from hatchery.services import Services
from hatchery.store import files as file_store

router = APIRouter()

MAX_PAGE_NUMBER = 10_000

PER_PAGE = 24
TYPES = ("", *(kind.value for kind in FileType))
WAITING = (FileStatus.UPLOADING, FileStatus.PROCESSING)


@dataclass(frozen=True)
class Preview:
    """What a page shows of a file: ``kind`` is ``image``, ``video``, ``audio`` or empty
    (nothing to show yet); ``src`` its URL, ``poster`` a video's still."""

    kind: str = ""
    src: str = ""
    poster: str = ""


@dataclass(frozen=True)
class FileView:
    """A file as the pages show it."""

    file: StoredFile
    status: str
    preview: Preview
    size: str
    download: str


def human_size(size: int | None) -> str:
    """``1.5 MB``; empty when not known yet."""
    if size is None:
        return ""
    if size < 1000:
        return f"{size} bytes"
    amount, unit = size / 1000, "KB"
    for bigger in ("MB", "GB", "TB"):
        if amount < 1000:
            break
        amount, unit = amount / 1000, bigger
    return f"{amount:.1f} {unit}"


def duration(seconds: float | None) -> str:
    """``4.2 s`` under a minute, ``1:05`` over it; empty when not known."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def _url(links: dict[str, Link], *names: str) -> str:
    return next((links[name].url for name in names if name in links), "")


def preview(file: StoredFile, links: dict[str, Link], *, small: bool) -> Preview:
    """A grid card's preview (``small``: the thumbnail first) or a file page's."""
    if file.type == FileType.IMAGE:
        order = ("thumbnail", "preview", "download") if small else ("preview", "download")
        src = _url(links, *order)
        return Preview("image", src) if src else Preview()
    if file.type == FileType.VIDEO:
        poster = _url(links, "thumbnail")
        if small and poster:
            return Preview("image", poster)
        src = _url(links, "preview", "download")
        return Preview("video", src, poster) if src else Preview()
    src = _url(links, "preview", "download")
    return Preview("audio", src) if file.type == FileType.AUDIO and src else Preview()


async def view(services: Services, file: StoredFile, *, small: bool) -> FileView:
    links = await services.files.links(file)
    return FileView(
        file=file,
        status=file.shown_status,
        preview=preview(file, links, small=small),
        size=human_size(file.bytes),
        download=_url(links, "download"),
    )


@router.get("/files")
async def files_page(request: Request) -> Response:
    services, signed = await account_page(request)
    query = request.query_params
    kind = choice(query, "type", TYPES, "")
    archived = query.get("archived") == "1"
    number = positive_int(request, "page", 1, MAX_PAGE_NUMBER)
    async with services.db.read() as conn:
        found, more = await file_store.listing(
            conn,
            signed.account.id,
            FileType(kind) if kind else None,
            archived,
            limit=PER_PAGE,
            offset=(number - 1) * PER_PAGE,
        )
    views = [await view(services, file, small=True) for file in found]
    filters = {"type": kind, "archived": "1" if archived else ""}
    return render(
        request,
        "files.html",
        signed,
        files=views,
        filters=filters,
        types=TYPES[1:],
        page=number,
        newer=page_link(filters, number - 1) if number > 1 else "",
        older=page_link(filters, number + 1) if more else "",
    )


def page_link(filters: dict[str, str], number: int) -> str:
    """The list's URL for page ``number`` with the same filters."""
    return link("/files", **{**filters, "page": str(number) if number > 1 else ""})


def _check_id(file_id: str) -> None:
    """A malformed id is a page that is not there, as another account's file is."""
    if not is_file_id(file_id):
        raise NotFound(f"File not found: {file_id}")


@router.get("/files/{file_id}")
async def file_page(request: Request, file_id: str) -> Response:
    services, signed = await account_page(request)
    _check_id(file_id)
    file = await services.files.get(signed.account.id, file_id)
    shown = await view(services, file, small=False)
    public = services.settings.public_url
    embed = f"{public}/embed/{file.playback_id}" if file.playback_id else ""
    hls = (file.renditions.get("hls") or {}).get("status")
    return render(
        request,
        "file.html",
        signed,
        item=shown,
        file=file,
        facts=facts(file),
        embed=embed,
        stream_ready=hls == "ready",
        streamable=file.type in STREAMABLE,
        can_preview=file.status in USABLE,
        waiting=file.status in WAITING,
    )


def facts(file: StoredFile) -> list[tuple[str, str]]:
    """The file's facts as (label, value), those not known left out."""
    size = f"{file.width} x {file.height} pixels" if file.width and file.height else ""
    rows = [
        ("Type", file.type.value.lower() if file.type else ""),
        ("Size", human_size(file.bytes)),
        ("Dimensions", size),
        ("Duration", duration(file.duration_seconds)),
        ("Content type", file.content_type or ""),
        ("Kept", "temporary" if file.scope is Scope.TEMPORARY else "until removed"),
        ("Description", file.description or ""),
    ]
    return [(label, value) for label, value in rows if value]


@router.post("/files/{file_id}/archive")
async def archive(request: Request, file_id: str) -> Response:
    services, signed, _ = await change_form(request)
    _check_id(file_id)
    await services.files.archive(signed.account.id, file_id)
    return redirect(f"/files/{file_id}", notice="Archived: the file has left the list")


@router.post("/files/{file_id}/public-preview")
async def public_preview(request: Request, file_id: str) -> Response:
    services, signed, fields = await change_form(request)
    _check_id(file_id)
    on = choice(fields, "on", ("1", "0"), "") == "1"
    await services.files.set_public_preview(signed.account.id, file_id, on)
    notice = "Public preview is on" if on else "Public preview is off: its links no longer work"
    return redirect(f"/files/{file_id}", notice=notice)
