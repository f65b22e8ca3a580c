"""A tool request of the VideoGen API as the engine's :class:`~hatchery.domain.tools.ToolParams`:
its files looked up (the account's, stored, of the right type), its voice and presenter found,
its watermark decided, and the seconds it is billed for known, all before anything is queued, so a
request that cannot run is refused with nothing created and nothing reserved.

Each refusal names the field as the request spelled it (``imageFileIds[1]: …``).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from hatchery.api.videogen import schemas
from hatchery.domain.files import FileType
from hatchery.domain.tools import InputFile, ToolParams
from hatchery.domain.voices import elevenlabs_voice, replace_words
from hatchery.errors import InvalidId, NotAllowed, NotFound, ValidationFailed, WrongFileType
from hatchery.files.library import FileLibrary
from hatchery.media.probe import SVG
from hatchery.offline import avatar, speech, spelling
from hatchery.settings import Settings
from hatchery.store.accounts import Account

NO_WATERMARK = "no-watermark"  # the account flag that allows watermarkMode NONE
CLIP_SECONDS = 6  # a generated clip's length when the request gives none (G2's default)
SOUND_SECONDS = 10.0  # a sound effect's (G2: "about 10 s when omitted")
MAX_INPUT_SECONDS = 60  # the longest video a video tool reads
MAX_AVATAR_SECONDS = 300  # the longest audio an avatar speaks
VOICE_PREFIX, PRESENTER_PREFIX = "vg_voic_", "vg_pres_"
MAX_SPOKEN = speech.MAX_TEXT_CHARS  # characters of a text once its replacements apply
MAX_VIDEO_SECONDS = 600  # new video one execution may make, over all its results
VARIED_VIDEO = ("generate-video-clip", "generate-avatar")  # a new video for each result


class ToolRequests:
    """Turns the account's request bodies into tool params (one per request)."""

    def __init__(
        self, files: FileLibrary, settings: Settings, speakers: Collection[str] = ()
    ) -> None:
        self.files = files
        self.settings = settings
        self.speakers = speakers  # the providers of text-to-speech, in the catalog

    async def params(self, account: Account, tool: str, body: schemas.ToolBody) -> ToolParams:
        build = _BUILDERS[tool]
        fields = await build(self, account, body)
        _check_video_total(tool, body.numResults or 1, fields.get("duration", 0))
        return ToolParams(
            tool=tool,
            num_outputs=body.numResults or 1,
            temporary=bool(body.isOutputTemporary),
            watermark=self.watermark(account, _watermark_mode(body)),
            **fields,
        )

    def watermark(self, account: Account, mode: str | None) -> bool:
        """Whether the outputs are marked. AUTO follows HATCHERY_WATERMARK_AUTO; NONE needs the
        account's ``no-watermark`` flag; a tool without the field (audio) is never marked."""
        allowed = NO_WATERMARK in account.flags
        if mode is None:
            return False
        if mode == "NONE" and not allowed:
            raise NotAllowed(
                "watermarkMode: NONE needs the account to be allowed outputs without a watermark; "
                "ask the operator (hatchery users flag EMAIL no-watermark), or send AUTO or "
                "VIDEO_GEN",
                "watermark_removal_not_allowed",
                {"type": "purchase_add_on", "details": {"addOn": "production_api"}},
            )
        if mode == "AUTO":
            return {"always": True, "never": False}.get(self.settings.watermark_auto, not allowed)
        return mode == "VIDEO_GEN"

    async def file(
        self, account: Account, field: str, file_id: str, kind: FileType
    ) -> tuple[str, InputFile]:
        found = await self.files.input(account.id, file_id, field, kind)
        if kind is FileType.IMAGE and found.content_type == SVG:
            raise WrongFileType(
                f"{field}: file {file_id} is an SVG; a raster image (PNG, JPEG, WebP, GIF) is "
                "needed"
            )
        return kind.value.lower(), found

    async def images(
        self, account: Account, field: str, ids: list[str] | None
    ) -> list[tuple[str, InputFile]]:
        return [
            await self.file(account, f"{field}[{i}]", file_id, FileType.IMAGE)
            for i, file_id in enumerate(ids or ())
        ]


def _check_video_total(tool: str, results: int, seconds: int) -> None:
    """One execution makes at most MAX_VIDEO_SECONDS of new video in all: its outputs are held
    until the last is made."""
    if tool in VARIED_VIDEO and results * seconds > MAX_VIDEO_SECONDS:
        raise ValidationFailed(
            f"numResults: {results} results of {seconds} s are {results * seconds} s of video; "
            f"one execution makes at most {MAX_VIDEO_SECONDS} s, so ask for fewer results"
        )


def _watermark_mode(body: schemas.ToolBody) -> str | None:
    """The body's watermarkMode (AUTO when omitted or null); None for a tool without one."""
    if isinstance(body, schemas.MarkedToolBody):
        return body.watermarkMode or "AUTO"
    return None


Fields = dict[str, Any]
Builder = Callable[[ToolRequests, Account, Any], Awaitable[Fields]]


def _aspect(ratio: schemas.AspectRatio | None) -> list[int]:
    return [ratio.width, ratio.height] if ratio else [16, 9]


def _seconds(given: InputFile, field: str, most: int) -> int:
    """The whole seconds an input is billed for, refused when longer than ``most``."""
    seconds = given.seconds or 0.0
    if seconds <= 0:
        raise ValidationFailed(
            f"{field}: the length of file {given.file_id} could not be read; upload it again "
            "re-encoded (an MP4 with H.264, or an MP3)"
        )
    if seconds > most:
        raise ValidationFailed(
            f"{field}: file {given.file_id} is {seconds:.1f} s long; at most {most} s can be used"
        )
    return max(1, math.ceil(seconds))


async def _image(r: ToolRequests, account: Account, body: schemas.GenerateImage) -> Fields:
    inputs = await r.images(account, "imageFileIds", body.imageFileIds)
    return {
        "prompt": body.prompt,
        "inputs": tuple(inputs),
        "options": (("aspect", _aspect(body.aspectRatio)),),
    }


async def _clip(r: ToolRequests, account: Account, body: schemas.GenerateVideoClip) -> Fields:
    inputs = await r.images(account, "imageFileIds", body.imageFileIds)
    seconds = body.durationSeconds or CLIP_SECONDS
    if body.videoFileId:  # restyled at its own length: that is what is made and billed
        video = await r.file(account, "videoFileId", body.videoFileId, FileType.VIDEO)
        inputs.append(video)
        seconds = _seconds(video[1], "videoFileId", MAX_INPUT_SECONDS)
    options = (("aspect", _aspect(body.aspectRatio)), ("generate_audio", bool(body.generateAudio)))
    return {
        "prompt": body.prompt or "",
        "inputs": tuple(inputs),
        "duration": seconds,
        "options": options,
    }


def _voice(voice_id: str | None, elevenlabs: bool) -> str | None:
    """The request's voice: a local (eSpeak NG) voice that exists, or, when ``elevenlabs``
    speaks here, any ElevenLabs voice id (ElevenLabs itself says whether it exists: an unknown
    one fails the execution with its ``voice_not_found``)."""
    if voice_id is None:
        return None
    if not voice_id.startswith(VOICE_PREFIX):
        raise InvalidId(f"voiceId: {voice_id!r} is not a voice id; voice ids look like vg_voic_...")
    if elevenlabs and elevenlabs_voice(voice_id) is not None:
        return voice_id
    voice = speech.voice(voice_id)
    if voice is None:
        raise NotFound(f"voiceId: no voice {voice_id}; list them with GET /v1/resources/tts-voices")
    if not voice.supports_direct_tool_execution:
        raise ValidationFailed(f"voiceId: voice {voice_id} cannot be used by text-to-speech")
    return voice_id


async def _speech(r: ToolRequests, account: Account, body: schemas.TextToSpeech) -> Fields:
    language = body.speechLanguageCode.lower()[:2] if body.speechLanguageCode else None
    replacements = [[p.original, p.replacement] for p in body.pronunciationReplacements or ()]
    options = {
        "voice_id": _voice(body.voiceId, "elevenlabs" in r.speakers),
        "language": language,
        "speed": body.voiceSpeed,
        "replacements": replacements,
        "auto_expand": bool(body.autoExpandPronunciationReplacements),
    }
    spoken = _spoken(body.ttsText, replacements, bool(options["auto_expand"]), language)
    return {"prompt": body.ttsText, "characters": spoken, "options": tuple(options.items())}


def _spoken(text: str, replacements: list[list[str]], expand: bool, language: str | None) -> int:
    """The characters of the text as it is spoken (the replacements applied, numbers and
    symbols written out when asked): what the price counts, since that is what a vendor bills.
    Refused past what any provider speaks in one go."""
    spoken = replace_words(text, replacements, MAX_SPOKEN)
    if expand and len(spoken) <= MAX_SPOKEN:
        spoken = spelling.expand(spoken, language or "en")
    if len(spoken) > MAX_SPOKEN:
        raise ValidationFailed(
            f"pronunciationReplacements: the text with them applied is over {MAX_SPOKEN} "
            "characters; shorten the replacements"
        )
    if not spoken.strip():
        raise ValidationFailed("ttsText: there is nothing to speak once the replacements apply")
    return len(spoken)


async def _sound(r: ToolRequests, account: Account, body: schemas.GenerateSoundEffect) -> Fields:
    seconds = body.durationSeconds or SOUND_SECONDS
    options = {"seconds": seconds, "influence": body.promptInfluence}
    return {
        "prompt": body.prompt,
        "duration": math.ceil(seconds),
        "options": tuple(options.items()),
    }


async def _avatar(r: ToolRequests, account: Account, body: schemas.GenerateAvatar) -> Fields:
    presenter_id = body.avatarPresenterId
    if not presenter_id.startswith(PRESENTER_PREFIX):
        raise InvalidId(
            f"avatarPresenterId: {presenter_id!r} is not a presenter id; presenter ids look like "
            "vg_pres_..."
        )
    if avatar.presenter(presenter_id) is None:
        raise NotFound(
            f"avatarPresenterId: no avatar presenter {presenter_id}; list them with "
            "GET /v1/resources/avatar-presenters"
        )
    audio = await r.file(account, "audioStorageFileId", body.audioStorageFileId, FileType.AUDIO)
    return {
        "inputs": (audio,),
        "duration": _seconds(audio[1], "audioStorageFileId", MAX_AVATAR_SECONDS),
        "options": (("presenter_id", presenter_id),),
    }


async def _image_asset(r: ToolRequests, account: Account, body: schemas.ImageAsset) -> Fields:
    image = await r.file(account, "imageStorageFileId", body.imageStorageFileId, FileType.IMAGE)
    return {"inputs": (image,)}


async def _video_asset(r: ToolRequests, account: Account, body: schemas.VideoAsset) -> Fields:
    video = await r.file(account, "videoStorageFileId", body.videoStorageFileId, FileType.VIDEO)
    return {
        "inputs": (video,),
        "duration": _seconds(video[1], "videoStorageFileId", MAX_INPUT_SECONDS),
    }


_BUILDERS: dict[str, Builder] = {
    "generate-image": _image,
    "generate-video-clip": _clip,
    "text-to-speech": _speech,
    "generate-sound-effect": _sound,
    "generate-avatar": _avatar,
    "vectorize-image": _image_asset,
    "remove-image-background": _image_asset,
    "remove-video-background": _video_asset,
    "upscale-image": _image_asset,
    "upscale-video": _video_asset,
}
