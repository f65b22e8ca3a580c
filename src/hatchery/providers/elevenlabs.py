"""``elevenlabs``: ElevenLabs' own API for two tools, text to speech and sound effects, and the
account's voices (for ``GET /v1/resources/tts-voices``).

Both tools are synchronous at ElevenLabs: ``POST /v1/text-to-speech/{voice_id}`` and
``POST /v1/sound-generation`` answer 200 with the MP3 itself (``output_format=mp3_44100_128``),
the generation's id in the ``request-id`` header and what it cost in ``character-cost``. So
``submit`` makes every output (one request each, a few at a time) and returns them finished.
There is no job handle and ElevenLabs takes no idempotency key: a worker that crashes mid-request
leaves nothing to resume, so the execution's outputs are requested (and billed by ElevenLabs)
again when it is picked up.

What a request becomes (``../shared/docs/tool-upstreams.md`` §1 and §5):

    text-to-speech   text after our pronunciation replacements (whole words, in order, as the
                     ``local`` provider applies them); our ``vg_voic_el_<id>`` voice as the path's
                     voice id (no voice: :data:`DEFAULT_VOICE`; an eSpeak voice is not ours to
                     speak); speed as ``voice_settings.speed``, clamped to ElevenLabs' 0.7-1.2;
                     the language as ``language_code`` for the models that take one; automatic
                     expansion as ``apply_text_normalization: "on"`` (flash/turbo v2.5 allow that
                     only on Enterprise plans, so for them the text is expanded here, by
                     ``offline.spelling``)
    sound effect     prompt as ``text``, seconds as ``duration_seconds`` (0.5-30), influence as
                     ``prompt_influence``

How an error answer is classified: ``Upstream`` classifies by status; ElevenLabs' own code
(``detail.status`` in the legacy body, ``detail.code`` in the current one) then decides:

    invalid_api_key, quota_exceeded       RetryableError   our key or our account: fall back
    voice_not_found, max_character_limit_exceeded, only_for_creator+ (a voice of a higher plan)
                                          TerminalError    with ElevenLabs' message
    429 (any code), 5xx, no answer        UpstreamUnreachable, with Retry-After
    422 validation list, other 4xx        TerminalError; 401/403/404 otherwise RetryableError
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from hatchery.domain.voices import (
    elevenlabs_speed,
    elevenlabs_voice,
    from_elevenlabs,
    replace_words,
)
from hatchery.offline import spelling
from hatchery.providers.base import (
    Artifact,
    Finished,
    Job,
    ProviderError,
    RetryableError,
    Running,
    TerminalError,
    UpstreamUnreachable,
)
from hatchery.providers.inputs import InputFiles
from hatchery.providers.media import tool_artifact
from hatchery.providers.upstream import Upstream

log = logging.getLogger("hatchery.providers")

SPEECH, SOUND = "text-to-speech", "generate-sound-effect"
DEFAULTS = {SPEECH: "eleven_multilingual_v2", SOUND: "eleven_text_to_sound_v2"}
# The text-to-speech models and the characters each speaks per request (tool-upstreams §1.5).
# eleven_v3: 3,000 in ElevenLabs' models page of 2025-08; fal's and Vercel's 2026 wrappers of it
# take 5,000 (unverified at ElevenLabs itself).
SPEECH_MODELS = {
    "eleven_v3": 5_000,
    "eleven_flash_v2_5": 40_000,
    "eleven_turbo_v2_5": 40_000,
    "eleven_flash_v2": 30_000,
    "eleven_turbo_v2": 30_000,
    "eleven_multilingual_v2": 10_000,
    "eleven_multilingual_v1": 10_000,
}
SOUND_MODELS = frozenset({"eleven_text_to_sound_v2"})
LANGUAGE_MODELS = frozenset({"eleven_v3", "eleven_flash_v2_5", "eleven_turbo_v2_5"})
ENGLISH_ONLY = frozenset({"eleven_flash_v2", "eleven_turbo_v2"})
EXPANDED_HERE = frozenset({"eleven_flash_v2_5", "eleven_turbo_v2_5"})
# George, a premade voice (the one ElevenLabs' own SDK examples speak with).
DEFAULT_VOICE = "JBFqnCBsd6RMkjVDRZzb"
OUTPUT_FORMAT = "mp3_44100_128"
MIN_SOUND, MAX_SOUND = 0.5, 30.0  # duration_seconds
PARALLEL = 4  # requests of one execution at once (ElevenLabs queues what exceeds the plan's)

VOICES_PATH, PAGE_SIZE, MAX_VOICES = "v2/voices", 100, 500
VOICES_FRESH = 600.0  # seconds a voice list is served from memory
VOICES_RETRY = 60.0  # seconds a stale list is served after a failed fetch before the next try
GENDERS = {"male": "MALE", "female": "FEMALE"}
# The locale a bare language label stands for (ElevenLabs' labels say "en"; the contract wants
# a locale); a language not here is listed as the bare language tag.
LOCALES = {
    "en": "en-US", "es": "es-ES", "fr": "fr-FR", "de": "de-DE", "it": "it-IT", "pt": "pt-BR",
    "nl": "nl-NL", "pl": "pl-PL", "sv": "sv-SE", "ru": "ru-RU", "tr": "tr-TR", "ja": "ja-JP",
    "zh": "zh-CN", "ko": "ko-KR", "hi": "hi-IN", "ar": "ar-SA",
}  # fmt: skip

RETRYABLE_CODES = frozenset({"invalid_api_key", "quota_exceeded"})
TERMINAL_CODES = frozenset({"voice_not_found", "max_character_limit_exceeded", "only_for_creator+"})

T = TypeVar("T")


@dataclass(frozen=True)
class ElevenLabsVoice:
    """One voice of the account, in the fields ``GET /v1/resources/tts-voices`` lists."""

    voice_id: str  # ours: vg_voic_el_<ElevenLabs voice_id>
    language_code: str
    display_name: str
    gender: str  # MALE, FEMALE or NEUTRAL
    accent: str | None
    description: str | None
    supports_direct_tool_execution: bool = True
    supports_all_languages: bool = True  # the multilingual models speak any voice in any language
    is_deprecated: bool = False


@dataclass(frozen=True)
class _Call:
    """One output's request: where to, what, and what the file says made it."""

    path: str
    body: dict[str, Any]
    made_by: str


class ElevenLabsProvider:
    name = "elevenlabs"

    def __init__(
        self,
        upstream: Upstream,
        inputs: InputFiles | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.upstream = upstream
        self.inputs = inputs  # neither tool reads an input file
        self._clock = clock
        self._voices: tuple[float, list[ElevenLabsVoice]] | None = None  # (fresh until, list)
        self._fetching: asyncio.Future[list[ElevenLabsVoice]] | None = None

    def serves(self, model: str) -> bool:
        return model in DEFAULTS

    def route_problem(self, model: str, route: str | None) -> str | None:
        known = SPEECH_MODELS if model == SPEECH else SOUND_MODELS
        if route is None or route in known:
            return None
        return f"elevenlabs has no {model} model {route!r} (it knows {', '.join(sorted(known))})"

    def image_sizes(self, model: str) -> frozenset[str]:
        return frozenset()

    def unsupported(self, job: Job) -> str | None:
        if job.tool == SPEECH:
            return _speech_problem(job, _model(job))
        if job.tool == SOUND:
            return _sound_problem(job)
        return f"elevenlabs does not make {job.tool or job.model}"

    async def submit(self, job: Job) -> Finished:
        """Every output, ``PARALLEL`` requests at a time; the first failure stops the rest
        (outputs already made were billed by ElevenLabs all the same)."""
        model = _model(job)
        call = _speech_call(job, model) if job.tool == SPEECH else _sound_call(job, model)
        slots = asyncio.Semaphore(PARALLEL)

        async def one() -> tuple[Artifact, str | None, int | None]:
            async with slots:
                return await self._make(job, call)

        made = await _all([one() for _ in range(job.num_outputs)])
        return Finished([a for a, _, _ in made], usage=_usage(model, made))

    async def poll(self, job: Job, upstream: dict[str, Any]) -> Finished | Running:
        """Never called (``submit`` never answers Running); were it, the outputs are made anew."""
        return await self.submit(job)

    async def cancel(self, job: Job, upstream: dict[str, Any]) -> None:
        return None  # nothing runs at ElevenLabs once our request is gone

    async def voices(self) -> list[ElevenLabsVoice]:
        """The account's voices (at most ``MAX_VOICES``), fetched again once ``VOICES_FRESH``
        seconds old; callers that ask meanwhile share the one fetch under way. A failed fetch
        serves the last list if there is one, however old (and is tried again after
        ``VOICES_RETRY`` seconds), else raises its ProviderError."""
        if self._voices and self._clock() < self._voices[0]:
            return self._voices[1]
        if self._fetching is None or self._fetching.done():
            self._fetching = asyncio.ensure_future(self._refresh())
        return await asyncio.shield(self._fetching)

    async def _refresh(self) -> list[ElevenLabsVoice]:
        try:
            listed = await self._fetch_voices()
        except ProviderError as exc:
            if self._voices is None:
                raise
            log.warning("elevenlabs: listing the voices failed (%s); serving the last list", exc)
            self._voices = (self._clock() + VOICES_RETRY, self._voices[1])
            return self._voices[1]
        self._voices = (self._clock() + VOICES_FRESH, listed)
        return listed

    async def _make(self, job: Job, call: _Call) -> tuple[Artifact, str | None, int | None]:
        try:
            response = await self.upstream.exchange(
                "POST", call.path, call.body, params={"output_format": OUTPUT_FORMAT}
            )
        except ProviderError as exc:
            raise vendor_error(exc) from None
        artifact = await tool_artifact(self.name, job, response.content, call.made_by)
        cost = response.headers.get("character-cost", "")
        return artifact, response.headers.get("request-id"), int(cost) if cost.isdigit() else None

    async def _fetch_voices(self) -> list[ElevenLabsVoice]:
        found: list[ElevenLabsVoice] = []
        params = {"page_size": str(PAGE_SIZE)}
        while len(found) < MAX_VOICES:
            page = await self._voice_page(params)
            if not isinstance(page, dict) or not isinstance(page.get("voices"), list):
                raise RetryableError(f"elevenlabs: GET /{VOICES_PATH} answered without voices")
            found.extend(v for v in map(_listed_voice, page["voices"]) if v is not None)
            token = page.get("next_page_token")
            if not page.get("has_more") or not isinstance(token, str) or not token:
                break
            params = {"page_size": str(PAGE_SIZE), "next_page_token": token}
        return found[:MAX_VOICES]

    async def _voice_page(self, params: dict[str, str]) -> Any:
        try:
            response = await self.upstream.exchange("GET", VOICES_PATH, params=params)
        except ProviderError as exc:
            raise vendor_error(exc) from None
        return self.upstream.json_of(f"GET /{VOICES_PATH}", response)


async def _all(work: Sequence[Coroutine[Any, Any, T]]) -> list[T]:
    """The results in order; the first failure cancels the rest and is raised."""
    tasks = [asyncio.ensure_future(w) for w in work]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def _model(job: Job) -> str:
    return job.route("elevenlabs") or DEFAULTS.get(job.tool or "", DEFAULTS[SPEECH])


# -- text to speech ------------------------------------------------------------------------------


def _speech_problem(job: Job, model: str) -> str | None:
    voice = job.options.get("voice_id")
    if voice and elevenlabs_voice(voice) is None:
        return f"voice {voice} is a local voice; ElevenLabs speaks vg_voic_el_… voices"
    language = job.options.get("language")
    if model in ENGLISH_ONLY and language and language != "en":
        return f"{model} speaks English only (language {language!r})"
    limit = SPEECH_MODELS.get(model, 0)
    text = _spoken_text(job, model)
    if len(text) > limit:
        return f"{model} speaks at most {limit} characters per request (this text: {len(text)})"
    if not text.strip():
        return "there is no text to speak (it is empty after the replacements)"
    return None


def _spoken_text(job: Job, model: str) -> str:
    """The text ElevenLabs is sent: the replacements applied, expanded here if asked and the
    model cannot expand it itself. Past the model's limit it stops growing it (it is refused)."""
    limit = SPEECH_MODELS.get(model, 0)
    text = replace_words(job.prompt, job.options.get("replacements") or (), limit)
    if job.options.get("auto_expand") and model in EXPANDED_HERE and len(text) <= limit:
        text = spelling.expand(text, job.options.get("language") or "en")
    return text


def _speech_call(job: Job, model: str) -> _Call:
    voice = elevenlabs_voice(job.options.get("voice_id")) or DEFAULT_VOICE
    body: dict[str, Any] = {"text": _spoken_text(job, model), "model_id": model}
    speed = job.options.get("speed")
    if speed is not None:
        body["voice_settings"] = {"speed": elevenlabs_speed(speed)}
    language = job.options.get("language")
    if language and model in LANGUAGE_MODELS:
        body["language_code"] = language
    if job.options.get("auto_expand") and model not in EXPANDED_HERE:
        body["apply_text_normalization"] = "on"  # else ElevenLabs' default, "auto"
    return _Call(f"v1/text-to-speech/{voice}", body, f"elevenlabs {model}, voice {voice}")


# -- sound effects -------------------------------------------------------------------------------


def _sound_problem(job: Job) -> str | None:
    seconds = _sound_seconds(job)
    if not MIN_SOUND <= seconds <= MAX_SOUND:
        return f"ElevenLabs makes sound effects of {MIN_SOUND:g} to {MAX_SOUND:g} seconds"
    influence = job.options.get("influence")
    if influence is not None and not 0 <= influence <= 1:
        return "ElevenLabs takes a prompt influence of 0 to 1"
    return None


def _sound_seconds(job: Job) -> float:
    return float(job.options.get("seconds") or job.duration)


def _sound_call(job: Job, model: str) -> _Call:
    body: dict[str, Any] = {
        "text": job.prompt,
        "model_id": model,
        "duration_seconds": _sound_seconds(job),
    }
    if job.options.get("influence") is not None:
        body["prompt_influence"] = float(job.options["influence"])
    return _Call("v1/sound-generation", body, f"elevenlabs {model}")


def _usage(model: str, made: list[tuple[Artifact, str | None, int | None]]) -> dict[str, Any]:
    usage: dict[str, Any] = {"upstream_ids": [i for _, i, _ in made if i], "route": model}
    costs = [c for _, _, c in made if c is not None]
    if costs:
        usage["characters"] = sum(costs)  # what ElevenLabs billed (its character-cost)
    return usage


# -- error answers -------------------------------------------------------------------------------


def vendor_error(exc: ProviderError) -> ProviderError:
    """``exc`` (an error answer as ``Upstream`` classified it) classified by ElevenLabs' own
    error code, with its own message, read from the answer's ``detail`` object: the legacy
    ``{status, message}`` or the current ``{type, code, message, status, request_id, param}``
    (a 422's ``detail`` list has no code and stays as classified)."""
    detail = exc.body.get("detail") if isinstance(exc.body, dict) else None
    code = (detail.get("code") or detail.get("status")) if isinstance(detail, dict) else None
    if not isinstance(detail, dict) or not code:
        return exc  # no answer at all, or no code in it: as Upstream classified it
    message = str(detail.get("message") or "")
    text = f"elevenlabs: HTTP {exc.status} {code}: {message}"
    if code == "only_for_creator+":
        text = f"elevenlabs: this voice needs a higher ElevenLabs plan ({code}): {message}"
    answer = {"status": exc.status, "body": exc.body}
    if isinstance(exc, UpstreamUnreachable):  # busy (429) or failing (5xx): whatever the code
        return UpstreamUnreachable(text, retry_after=exc.retry_after, **answer)
    if code in RETRYABLE_CODES:
        return RetryableError(text, **answer)
    if code in TERMINAL_CODES:
        return TerminalError(text, **answer)
    return type(exc)(text, retry_after=exc.retry_after, **answer)


# -- voices --------------------------------------------------------------------------------------


def _listed_voice(item: Any) -> ElevenLabsVoice | None:
    """One voice of ``GET /v2/voices`` in our fields; None for an entry without a usable id.

    Its language is the first verified language's locale, else the locale of its language
    (``verified_languages[0].language`` or ``labels.language``, "en" when neither says: see
    :data:`LOCALES`); gender from ``labels.gender`` (NEUTRAL when it says neither); deprecated
    when ElevenLabs calls it legacy."""
    if not isinstance(item, dict) or not isinstance(item.get("voice_id"), str):
        return None
    ours = from_elevenlabs(item["voice_id"])
    if elevenlabs_voice(ours) is None:
        return None
    labels = _strings(item.get("labels"))
    languages = item.get("verified_languages") or [{}]
    first = _strings(languages[0] if isinstance(languages, list) else {})
    language = first.get("language") or labels.get("language")
    return ElevenLabsVoice(
        voice_id=ours,
        language_code=first.get("locale") or _locale(language),
        display_name=str(item.get("name") or item["voice_id"]),
        gender=GENDERS.get(labels.get("gender", "").lower(), "NEUTRAL"),
        accent=labels.get("accent") or first.get("accent") or None,
        description=str(item.get("description") or "") or labels.get("description") or None,
        is_deprecated=bool(item.get("is_legacy")),
    )


def _strings(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items() if isinstance(v, str)}


def _locale(language: str | None) -> str:
    code = (language or "en").replace("_", "-")
    return code if "-" in code else LOCALES.get(code.lower(), code.lower())
