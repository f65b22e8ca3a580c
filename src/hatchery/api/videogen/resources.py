"""The VideoGen API's resources (contract §3.10 and §6): the text-to-speech voices and the
built-in avatar presenters (drawn, not filmed), whose image, thumbnail and preview video are
served here without a key, as plain URLs, like any static asset.

The voices are those of the providers the catalog lists for text-to-speech: the server's
ElevenLabs account's (``vg_voic_el_…``, listed by ElevenLabs and kept ten minutes), then eSpeak
NG's (``vg_voic_…``) when ``local`` speaks too.

The lists are the same for every account and never paged in G1: G2's ``limit`` and ``cursor``
are not needed for a few dozen (at most a few hundred) entries, so they are accepted and the
whole list is returned (``hasMore`` false). Both lists keep one order: ElevenLabs' voices as it
lists them, eSpeak NG's by language, presenters as built in.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
from collections.abc import Mapping, Sequence

from fastapi import APIRouter, Query, Request
from starlette.responses import JSONResponse, Response

from hatchery.api.context import services_of
from hatchery.api.videogen.auth import Group, caller
from hatchery.api.videogen.errors import VideoGenRoute
from hatchery.api.videogen.present import ListedVoice, presenter, voice
from hatchery.errors import NotFound, ServiceUnavailable
from hatchery.offline import avatar, speech
from hatchery.providers.base import Provider, ProviderError
from hatchery.providers.elevenlabs import ElevenLabsProvider

router = APIRouter(route_class=VideoGenRoute, tags=["Resources"])

ASSETS = {
    "image.png": ("image/png", avatar.image_png),
    "thumbnail.png": ("image/png", avatar.thumbnail_png),
    "preview.mp4": ("video/mp4", avatar.preview_mp4),
}
CACHE = "public, max-age=86400"
log = logging.getLogger("hatchery.api")


@router.get("/v1/resources/tts-voices")
async def tts_voices(request: Request, includeDeprecatedVoices: bool = Query(False)) -> Response:
    services = services_of(request)
    await caller(services, request, Group.RESOURCES)
    tool = services.catalog.tools.get("text-to-speech")
    listed = await speaking_voices(tool.providers if tool else ("local",), services.providers)
    shown = [voice(v) for v in listed if includeDeprecatedVoices or not v.is_deprecated]
    return JSONResponse({"ttsVoices": shown, "hasMore": False, "nextCursor": None})


async def speaking_voices(
    speakers: Sequence[str], providers: Mapping[str, Provider]
) -> list[ListedVoice]:
    """The voices of the text-to-speech tool's providers (``speakers``, the catalog's list):
    the ElevenLabs account's first, when the tool lists ``elevenlabs`` and the server has it,
    then eSpeak NG's, when it lists ``local``. ElevenLabs' list failing (with nothing cached)
    leaves the local voices, or with none of those is ``ServiceUnavailable``."""
    local: list[ListedVoice] = list(speech.voices()) if "local" in speakers else []
    elevenlabs = providers.get("elevenlabs")
    if "elevenlabs" not in speakers or not isinstance(elevenlabs, ElevenLabsProvider):
        return local
    try:
        return [*await elevenlabs.voices(), *local]
    except ProviderError as exc:
        if not local:
            raise ServiceUnavailable(f"the ElevenLabs voices cannot be listed now: {exc}") from None
        log.warning("tts-voices: the ElevenLabs voices are left out (%s)", exc)
        return local


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
