"""Streaming a file: its HLS playlist, privately (``hlsSource``, a signed URL) or publicly once its
owner enabled public preview (``publicHlsUrl``, stable and without a key), and the embeddable
player page at ``/embed/{playbackId}``.

A playlist is stored with relative segment names; each answer rewrites them to URLs that work on
their own: signed object URLs (the local store's or presigned S3 ones) for the private stream,
and ``/public/{playbackId}/<segment>`` for the public one, which serves the segment or redirects
to a presigned URL. Disabling the preview makes every public URL answer 404 at once. The player
is hls.js, vendored under ``hatchery/web/player`` (no CDN); browsers that play HLS natively use
their own.
"""

from __future__ import annotations

import html
import re
from collections.abc import Awaitable, Callable
from functools import cache
from importlib import resources

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from hatchery.api.context import services_of
from hatchery.api.storage import serve_object
from hatchery.api.videogen.errors import VideoGenRoute
from hatchery.domain.files import SourceStatus, StoredFile, is_file_id, is_playback_id
from hatchery.errors import NotFound
from hatchery.files.library import storage_errors
from hatchery.services import Services
from hatchery.storage import ObjectMissing

router = APIRouter(route_class=VideoGenRoute)
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
SEGMENT = re.compile(r"^[A-Za-z0-9_-]{1,64}\.(ts|m4s|mp4|aac)$")
PUBLIC = {"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=60"}


def _missing() -> Response:
    return JSONResponse({"message": "Not found", "code": "not_found"}, status_code=404)


def _hls_key(file: StoredFile) -> str | None:
    hls = file.renditions.get("hls") or {}
    return str(hls["key"]) if hls.get("status") == SourceStatus.READY.value else None


async def _playlist(
    services: Services, key: str, segment_url: Callable[[str], Awaitable[str]]
) -> str:
    """The stored playlist with each segment line made a URL by ``segment_url(name)``."""
    async with storage_errors():
        text = (await services.storage.get(key)).decode("utf-8")
    lines = []
    for line in text.splitlines():
        if line and not line.startswith("#") and SEGMENT.match(line):
            line = await segment_url(line)
        lines.append(line)
    return "\n".join(lines) + "\n"


async def _public_file(services: Services, playback_id: str) -> StoredFile | None:
    if not is_playback_id(playback_id):
        return None
    return await services.files.by_playback_id(playback_id)


@router.get("/public/{playbackId}/index.m3u8")
async def public_playlist(request: Request, playbackId: str) -> Response:
    services = services_of(request)
    file = await _public_file(services, playbackId)
    key = _hls_key(file) if file else None
    if key is None:
        return _missing()
    base = f"{services.settings.public_url}/public/{playbackId}/"

    async def segment_url(name: str) -> str:
        return base + name

    try:
        text = await _playlist(services, key, segment_url)
    except ObjectMissing:
        return _missing()
    return Response(text, media_type=PLAYLIST_TYPE, headers=PUBLIC)


@router.get("/public/{playbackId}/{segment}")
async def public_segment(request: Request, playbackId: str, segment: str) -> Response:
    services = services_of(request)
    file = await _public_file(services, playbackId)
    key = _hls_key(file) if file else None
    if key is None or not SEGMENT.match(segment):
        return _missing()
    folder = key.rsplit("/", 1)[0]
    try:
        response = await serve_object(services, f"{folder}/{segment}", "video/mp2t")
    except NotFound:
        return _missing()
    response.headers.update(PUBLIC)  # not cached long: disabling the preview ends it
    return response


@router.get("/hls/{fileId}/index.m3u8")
async def private_playlist(request: Request, fileId: str) -> Response:
    """``hlsSource``: the playlist behind a signed URL, its segments signed URLs of their own."""
    services = services_of(request)
    why = services.signer.verify("GET", f"{fileId}/index.m3u8", request.query_params, path="/hls/")
    if why is not None or not is_file_id(fileId):
        denied = {"message": f"Access denied: {why or 'not a file'}", "code": "invalid_signature"}
        return JSONResponse(denied, status_code=403)
    file = await services.files.any(fileId)
    key = _hls_key(file) if file else None
    if key is None:
        return _missing()
    folder, ttl = key.rsplit("/", 1)[0], services.settings.signed_url_seconds

    async def segment_url(name: str) -> str:
        return await services.storage.signed_get_url(f"{folder}/{name}", ttl, "video/mp2t")

    try:
        text = await _playlist(services, key, segment_url)
    except ObjectMissing:
        return _missing()
    return Response(text, media_type=PLAYLIST_TYPE, headers={"Cache-Control": "private"})


@cache
def _player_file(name: str) -> bytes:
    return resources.files("hatchery.web").joinpath("player", name).read_bytes()


@router.get("/embed/player/hls.min.js")
async def player_script() -> Response:
    headers = {"Cache-Control": "public, max-age=86400"}
    return Response(_player_file("hls.min.js"), media_type="text/javascript", headers=headers)


@router.get("/embed/{playbackId}")
async def embed(request: Request, playbackId: str) -> Response:
    """A page that plays the file's public stream, to put in an ``<iframe>``."""
    services = services_of(request)
    file = await _public_file(services, playbackId)
    if file is None or _hls_key(file) is None:
        return _missing()
    public = services.settings.public_url
    page = (
        _player_file("embed.html")
        .decode("utf-8")
        .replace("{{HLS_URL}}", html.escape(f"{public}/public/{playbackId}/index.m3u8"))
        .replace("{{TITLE}}", html.escape(file.display_name))
        .replace("{{PLAYER_JS_URL}}", html.escape(f"{public}/embed/player/hls.min.js"))
    )
    return Response(page, media_type="text/html; charset=utf-8")
