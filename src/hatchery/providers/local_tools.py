"""The ``local`` provider's tools: each VideoGen tool made offline by the classical algorithms of
``hatchery.offline`` (a renderer, eSpeak NG speech, procedural sound, a drawn presenter, vtracer,
GrabCut, resampling). None of them is an AI model, and each output's description says what made
it.

:func:`make` makes one output of a job from the bytes of its input files; the provider calls it
in a thread, once per output, several at a time. Bad input found only now (bytes that do not
decode, a video too long) is a :class:`~hatchery.providers.base.TerminalError` naming the input.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import cv2

from hatchery.offline import avatar, cutout, motion, reference, sound, speech, upscale, vector
from hatchery.providers.base import Artifact, Job, TerminalError
from hatchery.providers.tool_inputs import tool_aspect


@dataclass(frozen=True)
class Inputs:
    """The bytes of a job's input files, by role, in order."""

    files: Mapping[str, list[bytes]]

    def one(self, role: str) -> bytes:
        found = self.files.get(role) or []
        if not found:
            raise TerminalError(f"the {role} file this tool needs is missing")
        return found[0]

    def all(self, role: str) -> list[bytes]:
        return list(self.files.get(role) or [])


Maker = Callable[[Job, Inputs, int], Artifact]
log = logging.getLogger("hatchery.providers")


def _image(job: Job, inputs: Inputs, index: int) -> Artifact:
    images = inputs.all("image")
    if images:
        return reference.transform_images(job.prompt, images, aspect=tool_aspect(job), index=index)
    return reference.render_image(job.prompt, aspect=tool_aspect(job), index=index)


def _soundtrack(job: Job, index: int) -> bytes | None:
    if not job.options.get("generate_audio"):
        return None
    prompt = job.prompt or "ambient soundtrack"
    return sound.sound_effect(prompt, seconds=float(job.duration), index=index).data


def _clip(job: Job, inputs: Inputs, index: int) -> Artifact:
    audio, aspect, seconds = _soundtrack(job, index), tool_aspect(job), float(job.duration)
    videos, images = inputs.all("video"), inputs.all("image")
    if videos:
        return motion.transform_video(
            job.prompt, videos[0], aspect=aspect, index=index, audio=audio, max_seconds=seconds
        )
    if images:
        return motion.animate_images(
            job.prompt, images, aspect=aspect, seconds=seconds, index=index, audio=audio
        )
    prompt = job.prompt if index == 0 else f"{job.prompt} #{index + 1}"  # the renderer's seed
    return motion.render_clip(prompt, aspect=aspect, seconds=seconds, index=index, audio=audio)


def _speech(job: Job, inputs: Inputs, index: int) -> Artifact:
    options = job.options
    language = options.get("language")
    voice = speech.voice(options["voice_id"]) if options.get("voice_id") else None
    return speech.speak(
        job.prompt,
        voice=voice or speech.default_voice(language),
        language=language,
        speed=options.get("speed"),
        replacements=[(str(o), str(r)) for o, r in options.get("replacements", ())],
        auto_expand=bool(options.get("auto_expand")),
        index=index,
    )


def _sound(job: Job, inputs: Inputs, index: int) -> Artifact:
    return sound.sound_effect(
        job.prompt,
        seconds=float(job.options.get("seconds") or job.duration),
        influence=job.options.get("influence"),
        index=index,
    )


def _avatar(job: Job, inputs: Inputs, index: int) -> Artifact:
    presenter = avatar.presenter(str(job.options.get("presenter_id")))
    if presenter is None:
        raise TerminalError(f"no avatar presenter {job.options.get('presenter_id')}")
    return avatar.talking_video(
        presenter, inputs.one("audio"), index=index, max_seconds=_billed(job)
    )


def _billed(job: Job) -> float:
    """The seconds the job was priced for: the input may be no longer (whatever its header
    said at submit), so the work never outgrows the charge."""
    return float(max(job.duration, 1))


MAKERS: dict[str, Maker] = {
    "generate-image": _image,
    "generate-video-clip": _clip,
    "text-to-speech": _speech,
    "generate-sound-effect": _sound,
    "generate-avatar": _avatar,
    "vectorize-image": lambda job, inputs, i: vector.vectorize(inputs.one("image")),
    "remove-image-background": lambda job, inputs, i: cutout.remove_image_background(
        inputs.one("image")
    ),
    "remove-video-background": lambda job, inputs, i: cutout.remove_video_background(
        inputs.one("video"), max_seconds=_billed(job)
    ),
    "upscale-image": lambda job, inputs, i: upscale.upscale_image(
        inputs.one("image"), factor=int(job.options.get("factor", 2))
    ),
    "upscale-video": lambda job, inputs, i: upscale.upscale_video(
        inputs.one("video"), factor=int(job.options.get("factor", 2)), max_seconds=_billed(job)
    ),
}


def make(job: Job, inputs: Inputs, index: int) -> Artifact:
    """Output number ``index`` of the job; TerminalError when its input cannot be used."""
    assert job.tool is not None
    try:
        return MAKERS[job.tool](job, inputs, index)
    except ValueError as exc:  # the algorithms' word for input they cannot use
        raise TerminalError(f"{job.tool}: {exc}") from exc
    except (OSError, RuntimeError, cv2.error) as exc:  # a library refusing what it was given
        log.warning("%s: %s failed: %r", job.task_id, job.tool, exc)
        raise TerminalError(f"{job.tool}: the input could not be processed") from exc
