"""Offline text to speech with eSpeak NG, the classical formant synthesizer.

This is not an AI model and not an AI voice: eSpeak NG (https://github.com/espeak-ng/espeak-ng)
turns text into phonemes with per-language pronunciation rules and dictionaries, then
synthesizes them with a formant (source-filter) model. It is intelligible in about a hundred
languages and sounds clearly robotic. The library and its data come from the
``espeakng-loader`` wheel (``libespeak-ng.so`` plus ``espeak-ng-data``); it is driven through
ctypes in-process (no system package, no subprocess), initialised lazily on first use, and
guarded by one global lock because it is neither re-entrant nor thread-safe.

The voices are a curated list (:func:`voices`): for each of 18 languages a female and a male
voice, i.e. an eSpeak NG language plus one of its voice variants ("+f3", "+m3", ...), each
under a stable id (``vg_voic_`` and 11 base-36 characters of sha256("<language>+<variant>")).
One extra, deprecated voice keeps the old Klatt synthesizer.

:func:`speak` limits:

* text: at most :data:`MAX_TEXT_CHARS` characters, before and after the replacements;
* speed: a multiplier of the normal rate of 175 words per minute, clamped to
  :data:`MIN_SPEED`-:data:`MAX_SPEED` (87-700 wpm);
* output: a mono MP3, :data:`SAMPLE_RATE` Hz, 64 kbps (see :mod:`hatchery.offline.audio`),
  trimmed to 0.1 s of silence at both ends. It is not byte-for-byte reproducible: eSpeak NG
  carries a little generator state from one utterance to the next (a few samples' difference).
"""

from __future__ import annotations

import ctypes
import hashlib
import math
import re
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import espeakng_loader  # type: ignore[import-untyped]
import numpy as np

from hatchery.domain.voices import replace_word
from hatchery.offline import spelling
from hatchery.offline.audio import FloatSamples, encode_mp3
from hatchery.providers.base import Artifact

__all__ = [
    "MAX_SPEED",
    "MAX_TEXT_CHARS",
    "MIN_SPEED",
    "SAMPLE_RATE",
    "Voice",
    "default_voice",
    "speak",
    "speaks",
    "voice",
    "voices",
]

MAX_TEXT_CHARS = 10_000
"""The longest text :func:`speak` accepts (about ten minutes of speech at the normal rate)."""

MIN_SPEED = 0.5
MAX_SPEED = 4.0
"""The range ``speed`` is clamped to (eSpeak NG speaks from 80 words per minute up)."""

SAMPLE_RATE = 22050
"""eSpeak NG's output rate, kept for the MP3."""

_NORMAL_WPM = 175
_PITCH_STEPS = (0, 2, -2, 4, -4, 1, -1, 3, -3)  # espeakPITCH offsets (of 0-100) by result
_RANGE_STEPS = (0, 4, -4, 8, -8)  # espeakRANGE offsets once the pitch steps have cycled

# speak_lib.h
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_ENDPAUSE = 0x1000
_RATE, _PITCH, _RANGE = 1, 3, 4
_MAX_DATA_PATH = 160  # espeak-ng keeps its data path in a fixed-size buffer

_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


# ---------------------------------------------------------------------------- voices


@dataclass(frozen=True)
class Voice:
    """One speaking voice: an eSpeak NG language with one of its voice variants."""

    voice_id: str
    espeak_name: str  # the eSpeak NG language voice, e.g. "en-us"
    variant: str  # the eSpeak NG voice variant, e.g. "f3"
    language_code: str  # locale tag, e.g. "en-US"
    display_name: str  # e.g. "Ava (English, US)"
    gender: str  # "MALE" or "FEMALE"
    accent: str | None
    description: str
    supports_direct_tool_execution: bool = True
    supports_all_languages: bool = False
    is_deprecated: bool = False

    @property
    def name(self) -> str:
        """The short name of the voice, e.g. "Ava"."""
        return self.display_name.split(" (")[0]


@dataclass(frozen=True)
class _Language:
    espeak_name: str
    language_code: str
    label: str
    accent: str | None
    female: tuple[str, str]  # (name, eSpeak variant)
    male: tuple[str, str]


_LANGUAGES = (
    _Language("en-us", "en-US", "English, US", "american", ("Ava", "f3"), ("Ethan", "m3")),
    _Language("en", "en-GB", "English, UK", "british", ("Olivia", "f2"), ("Oliver", "m2")),
    _Language("es", "es-ES", "Spanish, Spain", "castilian", ("Lucía", "f4"), ("Mateo", "m1")),
    _Language(
        "es-419",
        "es-419",
        "Spanish, Latin America",
        "latin american",
        ("Valentina", "f3"),
        ("Santiago", "m3"),
    ),
    _Language("fr", "fr-FR", "French", "parisian", ("Camille", "f2"), ("Louis", "m3")),
    _Language("de", "de-DE", "German", None, ("Mia", "f4"), ("Lukas", "m2")),
    _Language("it", "it-IT", "Italian", None, ("Giulia", "f3"), ("Marco", "m1")),
    _Language("pt-br", "pt-BR", "Portuguese, Brazil", "brazilian", ("Ana", "f2"), ("Pedro", "m3")),
    _Language("nl", "nl-NL", "Dutch", None, ("Emma", "f4"), ("Daan", "m2")),
    _Language("pl", "pl-PL", "Polish", None, ("Zofia", "f3"), ("Jakub", "m1")),
    _Language("ru", "ru-RU", "Russian", None, ("Anna", "f2"), ("Dmitri", "m3")),
    _Language("sv", "sv-SE", "Swedish", None, ("Elsa", "f4"), ("Erik", "m2")),
    _Language("tr", "tr-TR", "Turkish", None, ("Zeynep", "f3"), ("Emre", "m1")),
    _Language("hi", "hi-IN", "Hindi", None, ("Priya", "f2"), ("Arjun", "m3")),
    _Language("ja", "ja-JP", "Japanese", None, ("Yui", "f4"), ("Haruto", "m2")),
    _Language("cmn", "zh-CN", "Chinese, Mandarin", None, ("Mei", "f3"), ("Wei", "m1")),
    _Language("ko", "ko-KR", "Korean", None, ("Ji-woo", "f2"), ("Min-jun", "m3")),
    _Language("vi", "vi-VN", "Vietnamese", None, ("Linh", "f4"), ("Minh", "m2")),
)
_DEPRECATED = ("en-us", "klatt", "en-US", "Classic (English, US)", "MALE", "american")


def _voice_id(espeak_name: str, variant: str) -> str:
    number = int.from_bytes(hashlib.sha256(f"{espeak_name}+{variant}".encode()).digest(), "big")
    digits = []
    for _ in range(11):
        number, digit = divmod(number, 36)
        digits.append("0123456789abcdefghijklmnopqrstuvwxyz"[digit])
    return "vg_voic_" + "".join(digits)


def _description(language: str, variant: str, synthesizer: str) -> str:
    return (
        f"eSpeak NG {synthesizer} speech synthesis ({language}, variant {variant}): a classical "
        "rule-based synthesizer made by Hatchery's local provider, not an AI voice."
    )


def _make_voice(language: _Language, gender: str) -> Voice:
    name, variant = language.female if gender == "FEMALE" else language.male
    return Voice(
        voice_id=_voice_id(language.espeak_name, variant),
        espeak_name=language.espeak_name,
        variant=variant,
        language_code=language.language_code,
        display_name=f"{name} ({language.label})",
        gender=gender,
        accent=language.accent,
        description=_description(language.label, variant, "formant"),
    )


def _deprecated_voice() -> Voice:
    espeak_name, variant, code, display_name, gender, accent = _DEPRECATED
    return Voice(
        voice_id=_voice_id(espeak_name, variant),
        espeak_name=espeak_name,
        variant=variant,
        language_code=code,
        display_name=display_name,
        gender=gender,
        accent=accent,
        description=_description("English, US", variant, "Klatt formant")
        + " Deprecated: kept for old requests, use Ethan (English, US) instead.",
        is_deprecated=True,
    )


@cache
def _data_path() -> Path:
    return Path(espeakng_loader.get_data_path())


@cache
def _available() -> frozenset[str]:
    """The eSpeak NG language voices and variants in the bundled data (lower-case)."""
    data = _data_path()
    languages = {path.name.lower() for path in (data / "lang").rglob("*") if path.is_file()}
    variants = {path.name.lower() for path in (data / "voices" / "!v").glob("*")}
    return frozenset(languages | {f"+{variant}" for variant in variants})


def _has(espeak_name: str, variant: str | None = None) -> bool:
    present = _available()
    return espeak_name in present and (variant is None or f"+{variant}" in present)


@cache
def voices() -> tuple[Voice, ...]:
    """The built-in voices, in a stable order (those whose data eSpeak NG has)."""
    made = [
        _make_voice(language, gender)
        for language in _LANGUAGES
        for gender in ("FEMALE", "MALE")
        if _has(language.espeak_name)
    ]
    made.append(_deprecated_voice())
    return tuple(v for v in made if _has(v.espeak_name, v.variant))


@cache
def _by_id() -> dict[str, Voice]:
    return {v.voice_id: v for v in voices()}


def voice(voice_id: str) -> Voice | None:
    """The voice with this id, or None."""
    return _by_id().get(voice_id)


def _primary(code: str) -> str:
    return code.replace("_", "-").split("-")[0].lower()


def default_voice(language: str | None = None) -> Voice:
    """The first current voice of ``language`` (ISO 639-1, or a locale such as "pt-BR").

    A locale picks its own variety when there is one ("en-GB" → Olivia (English, UK)), else the
    first voice of its language; anything unknown gets Ava (English, US).
    """
    current = [v for v in voices() if not v.is_deprecated]
    if language:
        wanted = language.replace("_", "-").lower()
        for matches in (
            lambda v: v.language_code.lower() == wanted,
            lambda v: _primary(v.language_code) == _primary(wanted),
        ):
            found = next((v for v in current if matches(v)), None)
            if found is not None:
                return found
    return current[0]


def _espeak_language(language: str, speaker: Voice) -> str | None:
    """The eSpeak NG language voice to speak ``language`` with, or None if it has none."""
    wanted = language.replace("_", "-").lower()
    if _primary(wanted) == _primary(speaker.language_code) and "-" not in wanted:
        return speaker.espeak_name
    chosen = default_voice(language)
    if _primary(chosen.language_code) == _primary(wanted):
        return chosen.espeak_name
    for candidate in (wanted, _primary(wanted)):
        if re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]{2,8})*", candidate) and _has(candidate):
            return candidate
    return None


def speaks(language: str) -> bool:
    """Whether :func:`speak` can speak ``language`` (ISO 639-1 or a locale tag)."""
    return _espeak_language(language, default_voice()) is not None


# ---------------------------------------------------------------------------- the engine


class _Engine:
    """libespeak-ng, loaded and initialised on first use; every call holds ``lock``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._lib: ctypes.CDLL | None = None
        self._chunks: list[bytes] = []
        self._callback = _SynthCallback(self._collect)

    def _collect(
        self, wav: ctypes._Pointer[ctypes.c_short], count: int, _events: int | None
    ) -> int:
        if count > 0 and wav:
            self._chunks.append(ctypes.string_at(wav, count * 2))
        return 0  # carry on

    def _load(self) -> ctypes.CDLL:
        data = str(_data_path()).encode()
        if len(data) >= _MAX_DATA_PATH:
            raise RuntimeError(f"the eSpeak NG data path is too long for the library: {data!r}")
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, _INITIALIZE_DONT_EXIT)
        if rate != SAMPLE_RATE:
            raise RuntimeError(f"eSpeak NG failed to initialise (it answered {rate})")
        lib.espeak_SetSynthCallback(self._callback)
        return lib

    def synthesize(self, text: str, name: str, rate: int, pitch: int, spread: int) -> bytes:
        """16-bit PCM of ``text`` spoken by the eSpeak NG voice ``name`` ("en-us+f3")."""
        with self.lock:
            if self._lib is None:
                self._lib = self._load()
            lib = self._lib
            if lib.espeak_SetVoiceByName(name.encode()) != 0:
                raise ValueError(f"eSpeak NG has no voice {name!r}")
            for parameter, value in ((_RATE, rate), (_PITCH, pitch), (_RANGE, spread)):
                lib.espeak_SetParameter(parameter, value, 0)
            encoded = text.encode() + b"\0"
            self._chunks = []
            flags = _CHARS_UTF8 | _ENDPAUSE
            status = lib.espeak_Synth(
                encoded, len(encoded), 0, _POS_CHARACTER, 0, flags, None, None
            )
            pcm, self._chunks = b"".join(self._chunks), []
        if status != 0:
            raise RuntimeError(f"eSpeak NG could not synthesize the text (error {status})")
        return pcm


_ENGINE = _Engine()


# ---------------------------------------------------------------------------- speak


def _replace(text: str, replacements: Sequence[tuple[str, str]]) -> str:
    """The replacements applied in order, the text checked after each: replacements that feed
    each other could otherwise grow it a hundredfold a step."""
    for original, replacement in replacements:
        text = replace_word(text, original, replacement)
        _check_length(text, "after replacements ")
    return text


def _check_length(text: str, when: str = "") -> None:
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"the text {when}is longer than {MAX_TEXT_CHARS} characters")


def _clean(text: str) -> str:
    """Control characters (NUL ends an eSpeak NG text) become spaces."""
    return "".join(" " if unicodedata.category(c) in ("Cc", "Cs") else c for c in text).strip()


def _checked_text(text: str, replacements: Sequence[tuple[str, str]]) -> str:
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"the text is {len(text)} characters long; the limit is {MAX_TEXT_CHARS}")
    spoken = _clean(_replace(text, replacements))
    if len(spoken) > MAX_TEXT_CHARS:
        raise ValueError(f"the text after replacements is longer than {MAX_TEXT_CHARS} characters")
    if not spoken:
        raise ValueError("there is no text to speak (it is empty after the replacements)")
    return spoken


def _rate(speed: float | None) -> int:
    if speed is None:
        return _NORMAL_WPM
    if not math.isfinite(speed) or speed <= 0:
        raise ValueError(f"the speed must be a positive number, got {speed}")
    return round(_NORMAL_WPM * min(max(speed, MIN_SPEED), MAX_SPEED))


def _samples(pcm: bytes) -> FloatSamples:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    loud = np.flatnonzero(np.abs(samples) > 1e-3)
    if loud.size == 0:
        raise ValueError("the text has nothing eSpeak NG can pronounce")
    pad = SAMPLE_RATE // 10  # keep 0.1 s of silence before and after the speech
    return samples[max(int(loud[0]) - pad, 0) : int(loud[-1]) + pad]


def speak(
    text: str,
    *,
    voice: Voice,
    language: str | None = None,
    speed: float | None = None,
    replacements: Sequence[tuple[str, str]] = (),
    auto_expand: bool = False,
    index: int = 0,
) -> Artifact:
    """Speak ``text`` with ``voice``: a mono MP3 artifact whose ``seconds`` is its duration.

    ``language`` (ISO 639-1 or a locale) speaks with that language's pronunciation, keeping the
    voice's variant; ``ValueError`` if eSpeak NG has no such language (see :func:`speaks`).
    ``speed`` multiplies the normal rate (175 words per minute), clamped to 0.5-4.0.
    ``replacements`` (original, replacement) are applied first, in order, to whole words,
    case-sensitively. ``auto_expand`` writes numbers, money, symbols and acronyms out as words
    (:func:`hatchery.offline.spelling.expand`). ``index`` (the result's number) shifts the pitch
    very slightly so that several results differ. ``ValueError`` for an empty text (after the
    replacements) or one longer than :data:`MAX_TEXT_CHARS` characters.
    """
    spoken = _checked_text(text, replacements)
    code = language or voice.language_code
    espeak_name = _espeak_language(language, voice) if language else voice.espeak_name
    if espeak_name is None:
        raise ValueError(f"eSpeak NG cannot speak the language {language!r}")
    if auto_expand:
        spoken = spelling.expand(spoken, code)
        _check_length(spoken, "with its numbers and symbols spelled out ")
    pitch = 50 + _PITCH_STEPS[index % len(_PITCH_STEPS)]
    spread = 50 + _RANGE_STEPS[(index // len(_PITCH_STEPS)) % len(_RANGE_STEPS)]
    pcm = _ENGINE.synthesize(spoken, f"{espeak_name}+{voice.variant}", _rate(speed), pitch, spread)
    samples = _samples(pcm)
    return Artifact(
        data=encode_mp3(samples, SAMPLE_RATE),
        extension="mp3",
        width=None,
        height=None,
        seconds=samples.size / SAMPLE_RATE,
        description=(
            f"Spoken by eSpeak NG (formant speech synthesis) with the voice {voice.name}; "
            "made by Hatchery's local provider, not an AI model."
        ),
    )
