"""A fake ElevenLabs API on 127.0.0.1 (``../shared/docs/tool-upstreams.md`` §1), strict like
the fakes of ``tests/fake_upstreams.py``: it checks the ``xi-api-key`` header, the paths, the
query and every body field (unknown fields, types, ranges, the model's own limits) and records
anything wrong in ``violations`` besides answering 400.

    POST /v1/text-to-speech/{voice_id}   kind ``speech``: an MP3, ``request-id`` and
                                         ``character-cost`` (the text's length) headers
    POST /v1/sound-generation            kind ``sound``: an MP3 of ``duration_seconds``
    GET  /v2/voices                      kind ``voices``: ``voices`` paged by ``page_size`` and
                                         ``next_page_token``

Vendor modes for ``plan(kind, ...)``, besides FakeServer's "429", "500", "503", "hang", "drop":
"quota" (401 quota_exceeded, legacy body), "badkey" (401 invalid_api_key, legacy body), "voice"
(400 voice_not_found, current body), "invalid" (422 validation list), "busy" (429
concurrent_limit_exceeded with Retry-After, current body), "creator" (403 only_for_creator+),
"limit" (400 max_character_limit_exceeded, legacy body), "html" (200 with an HTML page).
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any
from urllib.parse import parse_qs

from hatchery.offline import sound
from tests.fake_upstreams import Answer, FakeServer, Request, first_problem, json_answer

ELEVENLABS_KEY = "sk_test_elevenlabs"
FORMATS = frozenset(
    {"mp3_22050_32", "mp3_24000_48", "mp3_44100_32", "mp3_44100_64", "mp3_44100_96"}
    | {"mp3_44100_128", "mp3_44100_192"}
)  # the MP3 ones: this fake answers MP3 only
SPEECH_LIMITS = {
    "eleven_v3": 5_000,
    "eleven_flash_v2_5": 40_000,
    "eleven_turbo_v2_5": 40_000,
    "eleven_flash_v2": 30_000,
    "eleven_turbo_v2": 30_000,
    "eleven_multilingual_v2": 10_000,
    "eleven_multilingual_v1": 10_000,
}
LANGUAGE_MODELS = frozenset({"eleven_v3", "eleven_flash_v2_5", "eleven_turbo_v2_5"})
SPEECH_FIELDS = frozenset(
    {"text", "model_id", "language_code", "voice_settings", "pronunciation_dictionary_locators"}
    | {"seed", "previous_text", "next_text", "previous_request_ids", "next_request_ids"}
    | {"use_pvc_as_ivc", "apply_text_normalization", "apply_language_text_normalization"}
)
VOICE_SETTINGS = frozenset({"stability", "similarity_boost", "style", "use_speaker_boost", "speed"})
SOUND_FIELDS = frozenset({"text", "duration_seconds", "prompt_influence", "loop", "model_id"})
SOUND_MODELS = frozenset({"eleven_text_to_sound_v2"})
VOICE_QUERY = frozenset(
    {"next_page_token", "page_size", "search", "sort", "sort_direction", "voice_type"}
    | {"category", "fine_tuning_state", "collection_id", "include_total_count", "voice_ids"}
)
VOICE_ERRORS = {
    "quota": (401, "quota_exceeded", "This request exceeds your quota of 10000.", False),
    "badkey": (401, "invalid_api_key", "Invalid API key", False),
    "voice": (400, "voice_not_found", "A voice with the voice_id given was not found.", True),
    "busy": (429, "concurrent_limit_exceeded", "Too many concurrent requests.", True),
    "creator": (403, "only_for_creator+", "This voice is only for Creator tier and up.", True),
    "limit": (400, "max_character_limit_exceeded", "The text is too long.", False),
}


def voice_entry(voice_id: str, name: str, **extra: Any) -> dict[str, Any]:
    """A ``Voice`` as ``GET /v2/voices`` lists it (EL-SDK ``types/voice.py``)."""
    return {
        "voice_id": voice_id,
        "name": name,
        "category": "premade",
        "labels": {"accent": "american", "gender": "female", "age": "young"},
        "description": None,
        "preview_url": f"https://storage.example/{voice_id}.mp3",
        "verified_languages": [],
        "is_legacy": False,
        **extra,
    }


@cache
def mp3_bytes(seconds: float = 1.0) -> bytes:
    return sound.sound_effect("fake elevenlabs", seconds=seconds).data


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _between(value: Any, low: float, high: float) -> bool:
    return _number(value) and low <= value <= high


class FakeElevenLabs(FakeServer):
    def __init__(self, key: str = ELEVENLABS_KEY, voices: list[dict[str, Any]] | None = None):
        self.key = key
        self.voices: list[dict[str, Any]] = list(voices or [])
        super().__init__()

    def error(self, status: int, code: str, message: str) -> Answer:
        """ElevenLabs' current error body (EL-DOCS errors page)."""
        code = code.lower()
        return json_answer(
            status,
            {
                "detail": {
                    "type": "validation_error" if status in (400, 422) else "error",
                    "code": code,
                    "message": message,
                    "status": code,
                    "request_id": self.new_id().replace("-", ""),
                    "param": None,
                }
            },
        )

    def legacy(self, status: int, code: str, message: str) -> Answer:
        return json_answer(status, {"detail": {"status": code, "message": message}})

    def answer(self, request: Request) -> Answer:
        if request.headers.get("xi-api-key") != self.key:
            return self.legacy(401, "invalid_api_key", "Invalid API key")
        if request.method == "POST" and request.path.startswith("/v1/text-to-speech/"):
            return self._speech(request, request.path.removeprefix("/v1/text-to-speech/"))
        if request.method == "POST" and request.path == "/v1/sound-generation":
            return self._sound(request)
        if request.method == "GET" and request.path == "/v2/voices":
            return self._voices(request)
        return self.refuse(f"unexpected {request.method} {request.path}")

    # -- text to speech and sound effects ----------------------------------------------------

    def _vendor(self, mode: str) -> Answer | None:
        """The answer a scripted mode gives instead of the audio."""
        common = self.common(mode)
        if common or mode == "ok":
            return common
        if mode == "invalid":
            problem = {"loc": ["body", "text"], "msg": "field required", "type": "missing"}
            return json_answer(422, {"detail": [problem]})
        if mode == "html":
            return 200, {"Content-Type": "text/html"}, b"<html><body>maintenance</body></html>"
        status, code, message, current = VOICE_ERRORS[mode]
        answer = (self.error if current else self.legacy)(status, code, message)
        if mode == "busy":
            return answer[0], {**answer[1], "Retry-After": "2"}, answer[2]
        return answer

    def _posted(self, request: Request) -> tuple[Any, str | None]:
        """The JSON body and the first problem with the request's form."""
        query = parse_qs(request.query)
        problem = first_problem(
            (set(query) != {"output_format"}, f"the query must be output_format only: {query}"),
            (
                query.get("output_format", [""])[0] not in FORMATS,
                f"output_format {query.get('output_format')} is not an MP3 format",
            ),
            (
                request.headers.get("content-type") != "application/json",
                "the body must be application/json",
            ),
        )
        try:
            body = request.json()
        except ValueError:
            return None, "the body is not JSON"
        if not isinstance(body, dict):
            return None, "the body must be a JSON object"
        return body, problem

    def _speech(self, request: Request, voice_id: str) -> Answer:
        vendor = self._vendor(self.mode("speech"))
        if vendor:
            return vendor
        body, problem = self._posted(request)
        problem = problem or self._check_speech(body)
        if problem:
            return self.refuse(problem)
        model = body.get("model_id", "eleven_multilingual_v2")
        if len(body["text"]) > SPEECH_LIMITS[model]:
            self.violations.append(f"{len(body['text'])} characters sent to {model}")
            return self.legacy(400, "max_character_limit_exceeded", "The text is too long.")
        if self.voices and voice_id not in {v["voice_id"] for v in self.voices}:
            return self.error(400, "voice_not_found", f"A voice with voice_id {voice_id} not found")
        return self._audio(1.0, len(body["text"]))

    def _check_speech(self, body: Any) -> str | None:
        model = body.get("model_id", "eleven_multilingual_v2")
        settings = body.get("voice_settings")
        normalize = body.get("apply_text_normalization", "auto")
        return first_problem(
            (not isinstance(body.get("text"), str) or not body["text"], "text is required"),
            (bool(set(body) - SPEECH_FIELDS), f"unknown fields {set(body) - SPEECH_FIELDS}"),
            (model not in SPEECH_LIMITS, f"unknown model_id {model!r}"),
            (
                "language_code" in body and model not in LANGUAGE_MODELS,
                f"language_code is not supported by {model}",
            ),
            (
                "language_code" in body and not isinstance(body["language_code"], str),
                "language_code must be a string",
            ),
            (settings is not None and not isinstance(settings, dict), "voice_settings: object"),
            (
                isinstance(settings, dict) and bool(set(settings) - VOICE_SETTINGS),
                f"unknown voice_settings {settings}",
            ),
            (
                isinstance(settings, dict)
                and "speed" in settings
                and not _between(settings["speed"], 0.7, 1.2),
                f"voice_settings.speed {settings and settings.get('speed')} is not 0.7-1.2",
            ),
            (normalize not in ("auto", "on", "off"), f"apply_text_normalization {normalize!r}"),
            (
                normalize == "on" and model in ("eleven_flash_v2_5", "eleven_turbo_v2_5"),
                f"apply_text_normalization on needs an Enterprise plan with {model}",
            ),
        )

    def _sound(self, request: Request) -> Answer:
        vendor = self._vendor(self.mode("sound"))
        if vendor:
            return vendor
        body, problem = self._posted(request)
        problem = problem or self._check_sound(body)
        if problem:
            return self.refuse(problem)
        seconds = body.get("duration_seconds") or 2.0
        return self._audio(float(seconds), math.ceil(seconds * 20))  # the fake's own price

    def _check_sound(self, body: Any) -> str | None:
        duration, influence = body.get("duration_seconds"), body.get("prompt_influence")
        model = body.get("model_id", "eleven_text_to_sound_v2")
        return first_problem(
            (not isinstance(body.get("text"), str) or not body["text"], "text is required"),
            (bool(set(body) - SOUND_FIELDS), f"unknown fields {set(body) - SOUND_FIELDS}"),
            (model not in SOUND_MODELS, f"unknown model_id {model!r}"),
            (
                duration is not None and not _between(duration, 0.5, 30),
                f"duration_seconds {duration!r} is not 0.5-30",
            ),
            (
                influence is not None and not _between(influence, 0, 1),
                f"prompt_influence {influence!r} is not 0-1",
            ),
            ("loop" in body and not isinstance(body["loop"], bool), "loop must be a boolean"),
        )

    def _audio(self, seconds: float, cost: int) -> Answer:
        headers = {
            "Content-Type": "audio/mpeg",
            "request-id": self.new_id().replace("-", ""),
            "character-cost": str(cost),
        }
        return 200, headers, mp3_bytes(seconds)

    # -- voices ------------------------------------------------------------------------------

    def _voices(self, request: Request) -> Answer:
        vendor = self._vendor(self.mode("voices"))
        if vendor:
            return vendor
        query = {k: v[-1] for k, v in parse_qs(request.query).items()}
        size = query.get("page_size", "10")
        token = query.get("next_page_token", "page-0")
        problem = first_problem(
            (bool(set(query) - VOICE_QUERY), f"unknown query {set(query) - VOICE_QUERY}"),
            (not size.isdigit() or not 1 <= int(size) <= 100, f"page_size {size} is not 1-100"),
            (not token.startswith("page-"), f"next_page_token {token!r} was not given out"),
        )
        if problem:
            return self.refuse(problem)
        start = int(token.removeprefix("page-"))
        end = start + int(size)
        more = end < len(self.voices)
        return json_answer(
            200,
            {
                "voices": self.voices[start:end],
                "has_more": more,
                "total_count": len(self.voices),
                "next_page_token": f"page-{end}" if more else None,
            },
        )
