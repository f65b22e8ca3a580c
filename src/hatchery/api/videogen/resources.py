"""The VideoGen API's resources (contract §3.10 and §6): the text-to-speech voices (eSpeak NG's,
behind ``vg_voic_…`` ids) and the built-in avatar presenters (drawn, not filmed), whose image,
thumbnail and preview video are served here without a key, as plain URLs, like any static asset.

The lists are the same for every account and never paged in G1: G2's ``limit`` and ``cursor``
are not needed for a few dozen entries, so they are accepted and the whole list is returned
(``hasMore`` false). Both lists keep one order: voices by language, presenters as built in.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib

from fastapi import APIRouter, Query, Request
from starlette.responses import JSONResponse, Response

from hatchery.api.context import services_of
from hatchery.api.videogen.auth import Group, caller
from hatchery.api.videogen.errors import VideoGenRoute
from hatchery.api.videogen.present import presenter, voice
from hatchery.errors import NotFound
from hatchery.offline import avatar, speech

router = APIRouter(route_class=VideoGenRoute, tags=["Resources"])

ASSETS = {
    "image.png": ("image/png", avatar.image_png),
    "thumbnail.png": ("image/png", avatar.thumbnail_png),
    "preview.mp4": ("video/mp4", avatar.preview_mp4),
}
CACHE = "public, max-age=86400"


@router.get("/v1/resources/tts-voices")
async def tts_voices(request: Request, includeDeprecatedVoices: bool = Query(False)) -> Response:
    services = services_of(request)
    await caller(services, request, Group.RESOURCES)
    shown = [voice(v) for v in speech.voices() if includeDeprecatedVoices or not v.is_deprecated]
    return JSONResponse({"ttsVoices": shown, "hasMore": False, "nextCursor": None})


@router.get("/v1/resources/avatar-presenters")
async def avatar_presenters(request: Request) -> Response:
    services = services_of(request)
    await caller(services, request, Group.RESOURCES)
    public_url = services.settings.public_url
    shown = [presenter(p, public_url) for p in avatar.presenters()]
    return JSONResponse({"avatarPresenters": shown, "hasMore": False, "nextCursor": None})


@functools.lru_cache(maxsize=len(ASSETS) * 16)
def _asset(presenter_id: str, name: str) -> bytes:
    found = avatar.presenter(presenter_id)
    assert found is not None
    return ASSETS[name][1](found)


@router.get("/v1/resources/avatar-presenters/{presenterId}/{asset}")
async def presenter_asset(request: Request, presenterId: str, asset: str) -> Response:
    """A presenter's picture, thumbnail or preview video: no key needed, cached a day."""
    if asset not in ASSETS or avatar.presenter(presenterId) is None:
        raise NotFound(f"no such presenter asset: {presenterId}/{asset}")
    data = await asyncio.to_thread(_asset, presenterId, asset)
    etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
    headers = {"Cache-Control": CACHE, "ETag": etag}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=ASSETS[asset][0], headers=headers)
