"""Whose a text-to-speech voice is, read from its id, and the pronunciation replacements every
speaking provider applies the same way. Pure.

The VideoGen API names every voice ``vg_voic_…``. The ``local`` provider's eSpeak NG voices have
11 base-36 characters after the prefix (``offline.speech``); an ElevenLabs voice is its own
``voice_id`` behind ``vg_voic_el_`` (``vg_voic_el_21m00Tcm4TlvDq8ikWAM``), so the id alone says
which provider can speak it and what to send that provider.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

VOICE_PREFIX = "vg_voic_"
ELEVENLABS_PREFIX = VOICE_PREFIX + "el_"
_ELEVENLABS_ID = re.compile(r"[A-Za-z0-9]{1,64}")
ELEVENLABS_SPEEDS = (0.7, 1.2)  # the voice_settings.speed its models take (ours is wider)


def elevenlabs_voice(voice_id: str | None) -> str | None:
    """The ElevenLabs ``voice_id`` behind one of our voice ids, or None if it is not one."""
    if not voice_id or not voice_id.startswith(ELEVENLABS_PREFIX):
        return None
    vendor_id = voice_id.removeprefix(ELEVENLABS_PREFIX)
    return vendor_id if _ELEVENLABS_ID.fullmatch(vendor_id) else None


def from_elevenlabs(vendor_id: str) -> str:
    """Our id for an ElevenLabs voice."""
    return ELEVENLABS_PREFIX + vendor_id


def elevenlabs_speed(speed: float) -> float:
    """A speed multiplier as ElevenLabs' models take it (directly or through fal): clamped."""
    low, high = ELEVENLABS_SPEEDS
    return min(max(float(speed), low), high)


def replace_word(text: str, original: str, replacement: str) -> str:
    """``original`` replaced wherever it stands as whole words (case-sensitive)."""
    if not original:
        return text
    pattern = r"(?<!\w)" + re.escape(original) + r"(?!\w)"
    return re.sub(pattern, replacement.replace("\\", "\\\\"), text)


def replace_words(
    text: str, replacements: Iterable[Sequence[str]], limit: int | None = None
) -> str:
    """Each (original, replacement) in order, on whole words: what every provider sends or
    speaks, so one request says the same words on any of them. Past ``limit`` characters it
    stops (the text will be refused for its length anyway)."""
    for original, replacement in replacements:
        if limit is not None and len(text) > limit:
            break
        text = replace_word(text, str(original), str(replacement))
    return text
